//! The corpus (`corpus/` in the repository): where its captures are, and the lines its Go
//! programs mark with `// MARK:name` (so that tests name lines, not numbers).

use std::path::PathBuf;

/// The repository's `corpus/` directory.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus")
}

/// The committed capture of a case (`corpus/captures/<name>.gcap`).
pub fn capture(name: &str) -> PathBuf {
    dir().join(format!("captures/{name}.gcap"))
}

/// The line of `// MARK:name` in `corpus/<case>/main.go` (a code line, not a comment).
pub fn mark(case: &str, name: &str) -> u32 {
    let src = std::fs::read_to_string(dir().join(format!("{case}/main.go")))
        .unwrap_or_else(|e| panic!("corpus case {case}: {e}"));
    let tag = format!("MARK:{name}");
    let i = src
        .lines()
        .position(|l| {
            l.split("//").nth(1).is_some_and(|c| {
                c.trim_start().starts_with(&tag)
                    && c.trim_start()[tag.len()..]
                        .chars()
                        .next()
                        .is_none_or(|ch| ch == ' ' || ch == '.')
            }) && !l.trim_start().starts_with("//")
        })
        .unwrap_or_else(|| panic!("no {tag} in {case}"));
    i as u32 + 1
}
