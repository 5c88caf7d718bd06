//! `ganalyze verify`: is the capture exactly what gcap wrote? Exit 0 when every file is
//! intact, 1 (and where each problem is) when any is not.

use std::path::PathBuf;
use std::process::ExitCode;

pub(crate) fn run(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let mut all_ok = true;
    for f in files {
        let cap = match gcap_format::Capture::open(f) {
            Ok(c) => c,
            Err(e) => {
                println!("{}: DAMAGED: {e}", f.display());
                all_ok = false;
                continue;
            }
        };
        let r = cap.verify();
        if r.intact {
            println!(
                "{}: intact, {} blocks, digest {}",
                f.display(),
                r.blocks,
                r.digest
            );
        } else {
            all_ok = false;
            println!("{}: DAMAGED ({} readable blocks)", f.display(), r.blocks);
            for p in &r.problems {
                println!("  - {p}");
            }
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
