//! Compiles ../bpf/gcap.bpf.c (which includes the other files of ../bpf) with clang
//! (-target bpf) and generates the libbpf-rs skeleton `gcap.skel.rs` in OUT_DIR, included by
//! src/probes/skeleton.rs. The skeleton's `types` module holds the Rust definitions of the
//! records and ids of bpf/gcap.h, generated from the object's BTF.
use std::env;
use std::ffi::OsString;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let bpf_dir = manifest.join("../bpf");
    let src = bpf_dir.join("gcap.bpf.c");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR")).join("gcap.skel.rs");

    SkeletonBuilder::new()
        .source(&src)
        .clang_args([
            OsString::from("-I"),
            bpf_dir.clone().into_os_string(),
            // Go targets are amd64 only (contract); pt_regs in mini.h is the x86-64 one.
            OsString::from("-D__TARGET_ARCH_x86"),
            OsString::from("-Wall"),
        ])
        .build_and_generate(&out)
        .unwrap_or_else(|e| panic!("building {}: {e:#}", src.display()));

    // Cargo scans a directory for any modified file: every part of the object is covered.
    println!("cargo:rerun-if-changed={}", bpf_dir.display());
}
