//! The evidence digest can be recomputed without gcap or ganalyze: `scripts/gcap-digest.py`
//! (Python's standard library only, following docs/FORMAT.md §3.1) must print the digest
//! `ganalyze info` prints, for every corpus capture and for damaged copies of one.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.gcap` under `dir`, recursively.
fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            captures(&p, out);
        } else if p.extension().is_some_and(|x| x == "gcap") {
            out.push(p);
        }
    }
}

fn info_digests(files: &[PathBuf]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_ganalyze"))
        .args(["info", "--format", "json"])
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let all = match v {
        Value::Array(a) => a,
        one => vec![one],
    };
    all.iter()
        .map(|f| f["digest"].as_str().unwrap().to_string())
        .collect()
}

fn script_digests(files: &[PathBuf]) -> Vec<String> {
    // Debian's python3 (install-deps installs it), not whichever is first on PATH.
    let out = Command::new("/usr/bin/python3")
        .arg(repo().join("scripts/gcap-digest.py"))
        .args(files)
        .output()
        .expect("/usr/bin/python3 runs scripts/gcap-digest.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn the_python_script_agrees_with_info_on_every_corpus_capture() {
    let mut files = Vec::new();
    captures(&repo().join("corpus"), &mut files);
    files.sort();
    assert!(files.len() >= 20, "corpus captures: {files:?}");
    let info = info_digests(&files);
    let script = script_digests(&files);
    for ((f, a), b) in files.iter().zip(&info).zip(&script) {
        assert_eq!(a, b, "{}", f.display());
    }
    assert_eq!(info.len(), files.len());
    assert_eq!(script.len(), files.len());
}

#[test]
fn the_python_script_agrees_with_info_on_damaged_files() {
    let src = std::fs::read(repo().join("corpus/captures/lifecycle.gcap")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut put = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        files.push(p);
    };
    put("cut.gcap", &src[..src.len() - 100]);
    put("no-trailer.gcap", &src[..src.len() - 68]);
    let mut flipped = src.clone();
    flipped[2000] ^= 0x10;
    put("flipped.gcap", &flipped);
    let mut appended = src.clone();
    appended.extend_from_slice(b"tail");
    put("appended.gcap", &appended);
    let info = info_digests(&files);
    assert_eq!(info, script_digests(&files));
    // Each differs from the intact file's digest and from the others.
    let mut all = info.clone();
    all.push(info_digests(&[repo().join("corpus/captures/lifecycle.gcap")])[0].clone());
    all.sort();
    all.dedup();
    assert_eq!(all.len(), files.len() + 1);
}
