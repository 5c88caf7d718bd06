//! Compiles the BPF objects of ../bpf with clang (-target bpf) and generates a libbpf-rs
//! skeleton for each in OUT_DIR: `gcap.skel.rs` from gcap.bpf.c (which includes the other
//! parts of ../bpf), included by src/probes/skeleton.rs, whose `types` module holds the
//! Rust definitions of the records and ids of bpf/gcap.h, generated from the object's BTF;
//! and `calibrate.skel.rs` from calibrate.bpf.c, included by src/probes/calibration.rs.
use std::env;
use std::ffi::OsString;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let bpf_dir = manifest.join("../bpf");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));

    for name in ["gcap", "calibrate"] {
        let src = bpf_dir.join(format!("{name}.bpf.c"));
        SkeletonBuilder::new()
            .source(&src)
            .clang_args([
                OsString::from("-I"),
                bpf_dir.clone().into_os_string(),
                // Go targets are amd64 only (contract); pt_regs in mini.h is the x86-64 one.
                OsString::from("-D__TARGET_ARCH_x86"),
                OsString::from("-Wall"),
            ])
            .build_and_generate(out_dir.join(format!("{name}.skel.rs")))
            .unwrap_or_else(|e| panic!("building {}: {e:#}", src.display()));
    }

    // Cargo scans a directory for any modified file: every part of the objects is covered.
    println!("cargo:rerun-if-changed={}", bpf_dir.display());
}
