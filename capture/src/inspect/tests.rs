//! Tests of target inspection on REAL Go binaries built by several toolchains.
//!
//! `testbin()` builds `testdata/gotarget/main.go` (goroutines, chan, mutex, sleep, an
//! net/http server and client) with a given toolchain and flavor into
//! `target/inspect-testbins/`, rebuilding only when the source is newer. A missing
//! toolchain fails the test with the command that installs it; nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use super::symbols::FuncSource;
use super::*;

const SOURCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/src/inspect/testdata/gotarget/main.go"
);
/// Toolchains with the full matrix (normal, stripped, PIE).
const MATRIX: &[&str] = &["1.19", "1.21.13", "1.27.3"];
const PROBED: &[&str] = &[
    "runtime.newproc1",
    "runtime.casgstatus",
    "runtime.gopark",
    "net/http.serverHandler.ServeHTTP",
];

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Flavor {
    Normal,
    Stripped,
    Pie,
}

fn go_tool(ver: &str) -> PathBuf {
    gcap_testenv::go_toolchain(ver)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("inspect-testbins")
}

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// Builds (or reuses) the test target with toolchain `ver` in `flavor`.
pub(crate) fn testbin(ver: &str, flavor: Flavor) -> PathBuf {
    let go = go_tool(ver);
    let dir = target_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("gotarget-{ver}-{flavor:?}").to_lowercase());
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let fresh = |p: &Path| -> bool {
        let (Ok(b), Ok(s)) = (std::fs::metadata(p), std::fs::metadata(SOURCE)) else {
            return false;
        };
        b.modified().unwrap() >= s.modified().unwrap()
    };
    if fresh(&out) {
        return out;
    }
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let mut cmd = Command::new(&go);
    cmd.arg("build").arg("-o").arg(&tmp);
    match flavor {
        Flavor::Normal => {}
        Flavor::Stripped => {
            cmd.arg("-ldflags=-s -w");
        }
        Flavor::Pie => {
            cmd.arg("-buildmode=pie");
        }
    }
    cmd.arg(SOURCE)
        .env("GO111MODULE", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "")
        .env("CGO_ENABLED", "0");
    let res = cmd.output().expect("run go build");
    assert!(
        res.status.success(),
        "{} build failed: {}",
        go.display(),
        String::from_utf8_lossy(&res.stderr)
    );
    std::fs::rename(&tmp, &out).unwrap();
    out
}

fn open(ver: &str, flavor: Flavor) -> GoBinary {
    let p = testbin(ver, flavor);
    GoBinary::open(&p).unwrap_or_else(|e| panic!("open {}: {e}", p.display()))
}

/// Every toolchain's normal build, and the stripped and PIE builds of the [`MATRIX`] ones.
fn every_build() -> Vec<(&'static str, Flavor)> {
    let mut out = Vec::new();
    for ver in gcap_testenv::go_versions() {
        out.push((ver, Flavor::Normal));
        if MATRIX.contains(&ver) {
            out.extend([(ver, Flavor::Stripped), (ver, Flavor::Pie)]);
        }
    }
    out
}

fn minor(ver: &str) -> u32 {
    ver.split('.').nth(1).unwrap().parse().unwrap()
}

#[test]
fn recognises_every_flavor() {
    for &ver in MATRIX {
        let normal = open(ver, Flavor::Normal);
        let stripped = open(ver, Flavor::Stripped);
        let pie = open(ver, Flavor::Pie);
        for (b, flavor) in [
            (&normal, Flavor::Normal),
            (&stripped, Flavor::Stripped),
            (&pie, Flavor::Pie),
        ] {
            let v = b.version();
            assert_eq!((v.major, v.minor), (1, minor(ver)), "{ver} {flavor:?}");
            assert!(
                b.build_info.go_version.starts_with(&format!("go{ver}")),
                "{}",
                b.build_info.go_version
            );
            assert_eq!(b.is_pie(), flavor == Flavor::Pie, "{ver} {flavor:?}");
            assert_eq!(b.has_symtab(), flavor != Flavor::Stripped);
            assert_eq!(b.has_dwarf(), flavor != Flavor::Stripped);
            assert!(
                b.go_build_id().is_some_and(|id| id.contains('/')),
                "{ver} {flavor:?}"
            );
            assert_eq!(b.build_info.path.as_deref(), Some("command-line-arguments"));
            assert_eq!(b.build_info.setting("CGO_ENABLED"), Some("0"));
            assert!(b.version_warning().is_none());
            let expect = if flavor == Flavor::Stripped {
                FuncSource::Pclntab
            } else {
                FuncSource::Symtab
            };
            assert_eq!(b.functions().source, expect);
        }
        assert_eq!(stripped.build_info.setting("-ldflags"), Some("-s -w"));
        if minor(ver) >= 21 {
            // go1.19 does not record -buildmode in the build info.
            assert_eq!(pie.build_info.setting("-buildmode"), Some("pie"));
        }
        if minor(ver) >= 24 {
            assert!(normal.gnu_build_id().is_some_and(|id| id.len() >= 32));
        }
        // Text base from the header (or runtime.text / moduledata on 1.26+) agrees with
        // the symbol table.
        for b in [&normal, &pie] {
            assert_eq!(
                b.elf().symbols["runtime.text"].addr,
                b.pclntab().layout().text_start,
                "{ver}"
            );
        }
        assert!(
            stripped.pclntab().layout().moduledata.is_some(),
            "{ver}: moduledata not found in stripped build"
        );
        assert!(
            stripped.pclntab().layout().gofunc.is_some(),
            "{ver}: go:func.* not found in stripped build"
        );
        for b in [&normal, &pie] {
            let md = b.pclntab().layout().moduledata.expect("moduledata");
            assert_eq!(
                symbols::gofunc_from_moduledata(b.elf(), md, minor(ver)),
                b.pclntab().layout().gofunc,
                "{ver}: moduledata.gofunc differs from the go:func.* symbol"
            );
            assert_eq!(b.elf().symbols["runtime.firstmoduledata"].addr, md, "{ver}");
        }
        for name in PROBED {
            let a = normal.function(name).unwrap();
            let b = stripped.function(name).unwrap();
            assert_eq!(
                (a.entry, a.file_offset),
                (b.entry, b.file_offset),
                "{ver} {name}"
            );
            assert!(b.end > b.entry && a.end <= b.end, "{ver} {name}");
            let p = pie.function(name).unwrap();
            assert!(p.end > p.entry);
            // The file offset really holds the function: same code bytes as in the map.
            let code = pie.code(p).unwrap();
            let off = p.file_offset as usize;
            assert_eq!(&pie.elf().bytes()[off..off + 16], &code[..16]);
        }
    }
}

#[test]
fn symtab_and_pclntab_agree() {
    for &ver in MATRIX {
        for flavor in [Flavor::Normal, Flavor::Pie] {
            let b = open(ver, flavor);
            let tab = b.pclntab();
            let (mut same, mut total) = (0, 0);
            for f in b.functions().iter() {
                let Some(i) = tab.find(f.entry) else { continue };
                total += 1;
                let name = f.name.strip_suffix(".abi0").unwrap_or(&f.name);
                // pclntab abbreviates array types in generated names: "[5]T" -> "[...]T".
                let same_name = tab.func_name(i).as_deref() == Some(name) || name.contains(']');
                if tab.func_range(i).map(|r| r.0) == Some(f.entry) && same_name {
                    same += 1;
                }
            }
            if same * 100 < total * 99 {
                for f in b.functions().iter().take(3000) {
                    let Some(i) = tab.find(f.entry) else { continue };
                    if tab.func_name(i).as_deref() != Some(&f.name)
                        || tab.func_range(i).map(|r| r.0) != Some(f.entry)
                    {
                        eprintln!(
                            "{} {:#x}-{:#x} vs {:?} {:x?}",
                            f.name,
                            f.entry,
                            f.end,
                            tab.func_name(i),
                            tab.func_range(i)
                        );
                    }
                }
            }
            assert!(
                total > 1000 && same * 100 >= total * 99,
                "{ver} {flavor:?}: {same}/{total} agree"
            );
        }
    }
}

#[test]
fn probe_sites_and_rets() {
    for &ver in MATRIX {
        for flavor in [Flavor::Normal, Flavor::Stripped, Flavor::Pie] {
            let b = open(ver, flavor);
            for name in PROBED {
                let f = b.function(name).unwrap();
                let p = b.prologue(name).unwrap();
                assert!(!p.rets.is_empty(), "{ver} {flavor:?} {name}: no RET");
                let code = b.code(f).unwrap();
                for &r in &p.rets {
                    assert_eq!(code[r as usize], 0xc3, "{ver} {name} RET at +{r:#x}");
                }
                if minor(ver) >= 21 {
                    let off = p
                        .push_rbp
                        .unwrap_or_else(|| panic!("{ver} {flavor:?} {name}: no PUSH RBP: {p:?}"));
                    assert_eq!(code[off as usize], 0x55);
                    // In the file too, at the offset a uprobe would use.
                    assert_eq!(b.elf().bytes()[(f.file_offset + off) as usize], 0x55);
                    if *name != "runtime.casgstatus" {
                        // Go prologue: [LEA R12,[RSP-n]] CMP RSP|R12,[R14+16] ; JBE ; PUSH RBP
                        assert_eq!(p.after_stack_check, Some(off), "{ver} {name}");
                    }
                } else {
                    // go1.19 frames are built with SUB RSP, no PUSH RBP.
                    assert_eq!(p.push_rbp, None, "{ver} {name}");
                }
                if *name == "runtime.gopark" || *name == "runtime.newproc1" {
                    // CMP RSP,[R14+16] (4 bytes) ; JBE rel32 (6 bytes)
                    assert_eq!(p.after_stack_check, Some(10), "{ver} {name}");
                }
                if *name == "runtime.casgstatus" && minor(ver) >= 21 {
                    // nosplit: no stack check, the frame starts at the entry.
                    assert_eq!((p.push_rbp, p.after_stack_check), (Some(0), None), "{ver}");
                }
                assert!(p.entry_probe_offset() < 16);
            }
            if ver == "1.27.3" {
                // RET counts measured in go-runtime-probe-map.md §6 / §4.
                let rets = |n: &str| b.prologue(n).unwrap().rets.len();
                assert_eq!(rets("runtime.casgstatus"), 2);
                assert_eq!(rets("runtime.newproc1"), 1);
                assert_eq!(rets("net/http.serverHandler.ServeHTTP"), 1);
                assert_eq!(rets("net/http.(*Transport).roundTrip"), 16);
            }
        }
    }
}

/// Server spans end at emulated sites on every toolchain and flavor: the HTTP/1 site is a
/// `CALL (*conn).hijacked` (E8 rel32) in `(*conn).serve`, the HTTP/2 one `handlerDone`'s
/// probe site (called, not inlined, by a `runHandler` closure in default builds).
#[test]
fn server_span_end_sites() {
    use crate::probes::ProbeId;
    let vaddr = |b: &GoBinary, off: u64| {
        b.elf()
            .segments
            .iter()
            .find(|s| s.executable && off >= s.offset && off < s.offset + s.filesz)
            .map(|s| off - s.offset + s.vaddr)
            .unwrap()
    };
    for (ver, flavor) in every_build() {
        let b = open(ver, flavor);
        let sites = crate::target::sites::server_done_sites(&b)
            .unwrap_or_else(|e| panic!("{ver} {flavor:?}: {e}"));
        assert_eq!(sites.len(), 2, "{ver} {flavor:?}: {sites:?}");
        let (h1, h2) = (&sites[0], &sites[1]);
        assert_eq!(h1.probe, ProbeId::HttpServeDone);
        assert_eq!(h1.cookie(), 0);
        let [off] = h1.file_offsets[..] else {
            panic!("{ver} {flavor:?}: {h1:?}")
        };
        let bytes = &b.elf().bytes()[off as usize..off as usize + 5];
        assert_eq!(bytes[0], 0xe8, "{ver} {flavor:?}: not a CALL rel32");
        let rel = i32::from_le_bytes(bytes[1..5].try_into().unwrap());
        let target = (vaddr(&b, off) + 5).wrapping_add_signed(i64::from(rel));
        assert_eq!(
            b.functions().containing(target).map(|f| f.name.as_str()),
            Some("net/http.(*conn).hijacked"),
            "{ver} {flavor:?}"
        );
        let serve = b.functions().containing(vaddr(&b, off)).unwrap();
        assert_eq!(serve.name, "net/http.(*conn).serve");

        assert_eq!(h2.probe, ProbeId::Http2HandlerDone);
        assert!(!h2.panic_check, "{ver} {flavor:?}: handlerDone inlined?");
        let f = b
            .functions()
            .containing(vaddr(&b, h2.file_offsets[0]))
            .unwrap();
        let want = if minor(ver) >= 27 {
            "net/http/internal/http2.(*responseWriter).handlerDone"
        } else {
            "net/http.(*http2responseWriter).handlerDone"
        };
        assert_eq!(f.name, want, "{ver} {flavor:?}");
        let pro = b.prologue(want).unwrap();
        let at = h2.file_offsets[0] - f.file_offset;
        if minor(ver) >= 21 {
            assert_eq!((Some(at), h2.at_jbe), (pro.push_rbp, false), "{ver}");
        } else {
            assert_eq!((Some(at), h2.at_jbe), (pro.stack_check_jump, true), "{ver}");
        }
    }
}

#[test]
fn dwarf_offsets_equal_embedded_table() {
    for &ver in &gcap_testenv::go_versions() {
        let b = open(ver, Flavor::Normal);
        let dwarf = b.offsets().unwrap();
        assert_eq!(dwarf.source, OffsetsSource::Dwarf);
        let mut table = GoOffsets::from_table(&b.version()).unwrap();
        assert_eq!(table.source, OffsetsSource::Table);
        table.source = OffsetsSource::Dwarf;
        assert_eq!(
            dwarf, table,
            "go{ver}: DWARF and offsets_table.json differ; rerun scripts/gen-offsets.sh"
        );
    }
    for &ver in MATRIX {
        let s = open(ver, Flavor::Stripped).offsets().unwrap();
        assert_eq!(s.source, OffsetsSource::Table);
        // PIE: waitReasonStrings pointers are filled by R_X86_64_RELATIVE relocations.
        let p = open(ver, Flavor::Pie).offsets().unwrap();
        assert_eq!(p.source, OffsetsSource::Dwarf);
        assert_eq!(p.wait_reasons, s.wait_reasons, "{ver} PIE");
        assert_eq!(p.g, s.g);
    }
}

/// Values measured live in /work/shared/reference/go-runtime-probe-map.md.
#[test]
fn offsets_match_probe_map() {
    let o = |v: &str| open(v, Flavor::Normal).offsets().unwrap();
    let v127 = o("1.27.3");
    assert_eq!(
        (
            v127.g.goid,
            v127.g.atomicstatus,
            v127.g.waitreason,
            v127.g.parent_goid
        ),
        (152, 144, 176, Some(280))
    );
    assert_eq!(
        (
            v127.g.gopc,
            v127.g.startpc,
            v127.g.m,
            v127.g.sched_sp,
            v127.g.sched_pc
        ),
        (288, 304, 48, 56, 64)
    );
    assert_eq!((v127.g.syscallsp, v127.g.syscallpc), (104, 112));
    assert_eq!(
        (v127.m.procid, v127.m.curg, v127.m.id, v127.hchan.lock),
        (64, 184, 232, 104)
    );
    let h = v127.http;
    assert_eq!(
        (
            h.request_method,
            h.request_url,
            h.request_header,
            h.request_content_length,
            h.request_host,
            h.request_ctx
        ),
        (Some(0), Some(16), Some(56), Some(88), Some(128), Some(248))
    );
    assert_eq!(
        (h.url_host, h.url_path, h.url_raw_query),
        (Some(40), Some(56), Some(88))
    );
    assert_eq!(h.response_status_code, Some(16));
    assert_eq!(
        (
            h.server_response_req,
            h.server_response_wrote_header,
            h.server_response_status
        ),
        (Some(8), Some(32), Some(128))
    );
    assert_eq!(v127.wait_reason_text(22), Some("sync.Mutex.Lock"));
    assert_eq!(v127.wait_reason_text(19), Some("chan receive"));
    assert_eq!(v127.wait_reason_value("SyncMutexLock"), Some(22));
    assert_eq!(v127.g_status_value("_Gleaked"), Some(10));
    assert_eq!(v127.g_status_value("waiting"), Some(4));
    assert_eq!(v127.g_status_value("_Gscan"), Some(0x1000));

    let v123 = o("1.23.9");
    assert_eq!(
        (
            v123.g.goid,
            v123.g.atomicstatus,
            v123.g.waitreason,
            v123.g.parent_goid
        ),
        (160, 152, 184, Some(280))
    );
    assert_eq!(v123.hchan.lock, 96);
    assert_eq!(v123.wait_reason_text(21), Some("sync.Mutex.Lock"));
    assert_eq!(v123.wait_reason_text(14), Some("chan receive"));

    let v125 = o("1.25.5");
    assert_eq!((v125.m.procid, v125.m.curg, v125.m.id), (64, 184, 224));
    assert_eq!(v125.wait_reason_text(22), Some("sync.Mutex.Lock"));

    let v119 = o("1.19");
    assert_eq!(
        (v119.g.goid, v119.g.parent_goid, v119.g.gopc, v119.g.startpc),
        (152, None, 296, 312)
    );
    assert_eq!(
        (
            v119.g.syscallsp,
            v119.m.procid,
            v119.m.curg,
            v119.hchan.lock
        ),
        (112, 72, 192, 88)
    );
    assert_eq!(v119.wait_reason_text(18), Some("semacquire"));
    assert_eq!(v119.wait_reason_text(14), Some("chan receive"));
    assert_eq!(v119.g_status_value("_Gdead"), Some(6));
    assert_eq!(v119.http.request_ctx, Some(232));
}

fn line_of(needle: &str) -> u32 {
    let src = std::fs::read_to_string(SOURCE).unwrap();
    src.lines().position(|l| l.starts_with(needle)).unwrap() as u32 + 1
}

#[test]
fn symbolizes_pcs() {
    let main_line = line_of("func main() {");
    let worker_line = line_of("func worker(");
    for &ver in MATRIX {
        for flavor in [Flavor::Normal, Flavor::Stripped, Flavor::Pie] {
            let b = open(ver, flavor);
            let mut sym = b.symbolizer();
            let entry = b.function("main.main").unwrap().entry;
            let frames = sym.symbolize(entry).unwrap().to_vec();
            let top = frames.last().unwrap();
            assert_eq!(top.function, "main.main", "{ver} {flavor:?}");
            assert!(top.file.ends_with("gotarget/main.go"), "{}", top.file);
            assert_eq!(top.line, main_line, "{ver} {flavor:?}");
            assert_eq!(top.location(), format!("main.main (main.go:{main_line})"));
            let w = b.function("main.worker").unwrap();
            assert_eq!(sym.symbolize(w.entry).unwrap()[0].line, worker_line);
            assert!(sym.symbolize(0x10).is_none());

            // mu.Lock() is inlined into main.worker: some PC must show the inlined frame
            // with main.worker as its caller on a line inside worker.
            let mut found = false;
            for pc in w.entry..w.end {
                let fr = sym.symbolize(pc).unwrap();
                if fr.len() >= 2 && fr[0].inlined && fr[0].function == "sync.(*Mutex).Lock" {
                    let caller = fr.last().unwrap();
                    assert_eq!(caller.function, "main.worker");
                    assert!(caller.line > worker_line && caller.line < worker_line + 10);
                    assert!(fr[0].file.ends_with("sync/mutex.go"), "{}", fr[0].file);
                    found = true;
                    break;
                }
            }
            assert!(
                found,
                "{ver} {flavor:?}: no inlined sync.(*Mutex).Lock frame in main.worker"
            );
        }
    }
}

#[test]
fn rejects_non_go_and_garbage() {
    let err = GoBinary::open("/bin/ls").unwrap_err().to_string();
    assert!(
        err.contains("is not a Go program: no .go.buildinfo or .gopclntab section"),
        "{err}"
    );
    assert!(err.starts_with("/bin/ls"), "{err}");

    let dir = target_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join(format!("garbage-{}", std::process::id()));
    let bytes: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&garbage, &bytes).unwrap();
    let err = GoBinary::open(&garbage).unwrap_err();
    assert!(matches!(err, InspectError::NotElf { .. }), "{err}");
    assert!(
        err.to_string().contains("is not an ELF executable"),
        "{err}"
    );

    std::fs::write(&garbage, b"").unwrap();
    assert!(matches!(
        GoBinary::open(&garbage),
        Err(InspectError::NotElf { .. })
    ));

    // An ELF header with garbage after it, and a truncated Go binary: errors, no panic.
    let go = std::fs::read(testbin("1.27.3", Flavor::Normal)).unwrap();
    for cut in [64, 4096, go.len() / 2] {
        std::fs::write(&garbage, &go[..cut]).unwrap();
        assert!(GoBinary::open(&garbage).is_err(), "cut at {cut}");
    }
    let mut corrupt = go.clone();
    for b in corrupt[64..].iter_mut().step_by(7) {
        *b ^= 0x5a;
    }
    std::fs::write(&garbage, &corrupt).unwrap();
    let _ = GoBinary::open(&garbage); // must not panic
    std::fs::remove_file(&garbage).unwrap();

    let err = GoBinary::open("/nonexistent/x").unwrap_err().to_string();
    assert!(err.starts_with("cannot read /nonexistent/x"), "{err}");
}

/// Garbage inside `.gopclntab` / `.go.buildinfo` of an otherwise valid ELF: every API
/// returns errors or None, never panics.
#[test]
fn corrupt_go_sections_do_not_panic() {
    for ver in ["1.19", "1.27.3"] {
        let path = testbin(ver, Flavor::Stripped);
        let good = GoBinary::open(&path).unwrap();
        let pcln = good.elf().section(".gopclntab").unwrap().clone();
        let bi = good.elf().section(".go.buildinfo").unwrap().clone();
        let orig = std::fs::read(&path).unwrap();
        let out = target_dir().join(format!("corrupt-{ver}-{}", std::process::id()));
        for seed in 1u32..=6 {
            let mut bytes = orig.clone();
            let (start, len) = if seed % 3 == 0 {
                (bi.offset as usize, bi.size as usize)
            } else {
                (pcln.offset as usize, pcln.size as usize)
            };
            // Keep the pclntab header intact in some rounds so the tables get parsed.
            let skip = if seed % 2 == 0 { 72 } else { 0 };
            let mut x = seed.wrapping_mul(0x9e37_79b9);
            for b in bytes[start + skip..start + len]
                .iter_mut()
                .step_by(seed as usize + 2)
            {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            std::fs::write(&out, &bytes).unwrap();
            let Ok(b) = GoBinary::open(&out) else {
                continue;
            };
            let mut sym = b.symbolizer();
            let funcs: Vec<Func> = b.functions().iter().step_by(97).cloned().collect();
            for f in &funcs {
                let _ = b.prologue(&f.name);
                let _ = sym.symbolize(f.entry);
                let _ = sym.symbolize(f.entry + 5);
            }
            let _ = b.offsets();
        }
        let _ = std::fs::remove_file(&out);
    }
}

#[test]
fn target_info_summary() {
    let b = open("1.27.3", Flavor::Stripped);
    let o = b.offsets().unwrap();
    let info = b.target_info(Some(42), Some(o.source));
    assert_eq!(info.pid, Some(42));
    assert_eq!(info.go_version, "go1.27.3");
    assert_eq!(info.offsets_source, Some(OffsetsSource::Table));
    assert!(!info.pie && !info.has_symtab && !info.has_dwarf);
    let json = serde_json::to_string(&info).unwrap();
    let back: TargetInfo = serde_json::from_str(&json).unwrap();
    assert_eq!(back, info);
}

/// The pclntab marks compiler-generated wrappers with `FuncIDWrapper`, whose value moves
/// between versions (`internal/abi/symtab.go`); gcap reads it off `runtime.deferreturn`.
#[test]
fn wrapper_func_id_is_gos() {
    for &ver in &gcap_testenv::go_versions() {
        let want = match minor(ver) {
            0..=21 => 21,
            22..=24 => 22,
            _ => 23,
        };
        assert_eq!(
            open(ver, Flavor::Normal).wrapper_func_id,
            Some(want),
            "{ver}"
        );
    }
}

/// The go wrappers of `go http.Serve(ln, nil)` and `go worker(...)` start the functions Go's
/// traceback names, whether the wrapper calls them or has them inlined (Go 1.22+ inlines
/// http.Serve), in every flavor; main.main and real closures are not wrappers.
#[test]
fn go_wrappers_start_their_target() {
    for (ver, flavor) in every_build() {
        let b = open(ver, flavor);
        let mut started: Vec<String> = b
            .functions()
            .iter()
            .filter(|f| f.name.starts_with("main.main."))
            .filter_map(|f| b.start_function(f.entry))
            .map(|f| f.function)
            .collect();
        started.sort();
        assert_eq!(
            started,
            ["main.worker", "net/http.Serve"],
            "{ver} {flavor:?}"
        );
        let main = b.function("main.main").unwrap();
        assert_eq!(b.start_function(main.entry), None, "{ver} {flavor:?}");
    }
}

/// `runtime.allgadd`'s code names the same variables as `.symtab`, in every build that has
/// one (PIE too); stripped builds find them from that code alone.
#[test]
fn allgs_from_code_equal_symtab() {
    for (ver, flavor) in every_build() {
        let b = open(ver, flavor);
        let found = allgs::locate(&b).unwrap_or_else(|e| panic!("go{ver} {flavor:?}: {e}"));
        let Some(sym) = allgs::from_symtab(&b) else {
            assert_eq!(flavor, Flavor::Stripped);
            assert_eq!(found.source, allgs::AllgSource::Code);
            continue;
        };
        assert_eq!(found, sym);
        let code = allgs::from_code(&b).unwrap_or_else(|e| panic!("go{ver} {flavor:?}: {e}"));
        assert_eq!(
            (code.allgs, code.allglen, code.allgptr),
            (sym.allgs, sym.allglen, sym.allgptr),
            "go{ver} {flavor:?}"
        );
    }
}
