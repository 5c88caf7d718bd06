//! insta snapshots of `info`, `goroutines` and `spans` over real corpus captures, so any
//! change in what ganalyze reports about them is seen in review.

use std::path::PathBuf;
use std::process::Command;

fn run(args: &[&str]) -> String {
    // Run from the captures directory so paths in the output do not depend on the checkout.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus/captures");
    let out = Command::new(env!("CARGO_BIN_EXE_ganalyze"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn corpus_info() {
    for case in ["lock_convoy", "slow_downstream", "lifecycle"] {
        let file = format!("{case}.gcap");
        insta::assert_snapshot!(format!("info_{case}"), run(&["info", &file]));
    }
}

#[test]
fn corpus_goroutines() {
    for case in ["lock_convoy", "lifecycle"] {
        let file = format!("{case}.gcap");
        insta::assert_snapshot!(
            format!("goroutines_{case}"),
            run(&["goroutines", "--limit", "25", &file])
        );
    }
}

#[test]
fn corpus_spans() {
    for case in ["slow_downstream", "slow_sql"] {
        let file = format!("{case}.gcap");
        insta::assert_snapshot!(
            format!("spans_{case}"),
            run(&["spans", "--limit", "20", &file])
        );
    }
}
