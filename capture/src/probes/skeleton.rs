//! The compiled BPF objects: the libbpf-rs skeleton of `bpf/gcap.bpf.c` (built by build.rs;
//! its [`types`] module holds the Rust definitions of `bpf/gcap.h`, generated from the
//! object's BTF), and [`PROGRAMS`], the one table of which BPF program implements each probe;
//! and the skeleton of `bpf/calibrate.bpf.c` (`calibration.rs` loads it).

use libbpf_rs::{Object, OpenObject, OpenProgramMut, ProgramMut};

use super::plan::ProbeId;

mod generated {
    #![allow(
        clippy::all,
        clippy::pedantic,
        unused_imports,
        non_camel_case_types,
        dead_code
    )]
    include!(concat!(env!("OUT_DIR"), "/gcap.skel.rs"));

    pub(crate) mod calibrate {
        include!(concat!(env!("OUT_DIR"), "/calibrate.skel.rs"));
    }
}
pub(crate) use generated::calibrate::CalibrateSkelBuilder;
pub(crate) use generated::{types, GcapSkel, GcapSkelBuilder};

use types::gcap_probe;

/// Every probe's `enum gcap_probe` id (its hit counter and `gcap_hdr.probe`) and the name of
/// its BPF program, in [`ProbeId`] order.
#[rustfmt::skip]
const PROGRAMS: [(ProbeId, gcap_probe, &str); ProbeId::ALL.len()] = [
    (ProbeId::Newproc1Ret,       gcap_probe::GCAP_P_NEWPROC1_RET,        "newproc1_ret"),
    (ProbeId::Execute,           gcap_probe::GCAP_P_EXECUTE,             "execute"),
    (ProbeId::Gopark,            gcap_probe::GCAP_P_GOPARK,              "gopark"),
    (ProbeId::Ready,             gcap_probe::GCAP_P_READY,               "ready"),
    (ProbeId::Injectglist,       gcap_probe::GCAP_P_INJECTGLIST,         "injectglist"),
    (ProbeId::Gosched,           gcap_probe::GCAP_P_GOSCHED,             "gosched"),
    (ProbeId::Goyield,           gcap_probe::GCAP_P_GOYIELD,             "goyield"),
    (ProbeId::Reentersyscall,    gcap_probe::GCAP_P_REENTERSYSCALL,      "reentersyscall"),
    (ProbeId::Entersyscallblock, gcap_probe::GCAP_P_ENTERSYSCALLBLOCK,   "entersyscallblock"),
    (ProbeId::Exitsyscall,       gcap_probe::GCAP_P_EXITSYSCALL,         "exitsyscall"),
    (ProbeId::Goexit1,           gcap_probe::GCAP_P_GOEXIT1,             "goexit1"),
    (ProbeId::GcStart,           gcap_probe::GCAP_P_GC_START,            "gc_start"),
    (ProbeId::GcMarkTermination, gcap_probe::GCAP_P_GC_MARK_TERMINATION, "gc_mark_termination"),
    (ProbeId::StopTheWorld,      gcap_probe::GCAP_P_STOP_THE_WORLD,      "stop_the_world"),
    (ProbeId::StartTheWorld,     gcap_probe::GCAP_P_START_THE_WORLD,     "start_the_world"),
    (ProbeId::SchedSwitch,       gcap_probe::GCAP_P_SCHED_SWITCH,        "sched_switch"),
    (ProbeId::ProcessExit,       gcap_probe::GCAP_P_PROCESS_EXIT,        "sched_process_exit"),
    (ProbeId::HttpServe,         gcap_probe::GCAP_P_HTTP_SERVE,          "http_serve"),
    (ProbeId::HttpServeRet,      gcap_probe::GCAP_P_HTTP_SERVE_RET,      "http_serve_ret"),
    (ProbeId::HttpWriteHeader,   gcap_probe::GCAP_P_HTTP_WRITE_HEADER,   "http_write_header"),
    (ProbeId::Http2WriteHeader,  gcap_probe::GCAP_P_HTTP2_WRITE_HEADER,  "http2_write_header"),
    (ProbeId::HttpRoundTrip,     gcap_probe::GCAP_P_HTTP_ROUND_TRIP,     "http_round_trip"),
    (ProbeId::HttpRoundTripRet,  gcap_probe::GCAP_P_HTTP_ROUND_TRIP_RET, "http_round_trip_ret"),
    (ProbeId::SqlQuery,          gcap_probe::GCAP_P_SQL_QUERY,           "sql_query"),
    (ProbeId::SqlQueryRet,       gcap_probe::GCAP_P_SQL_QUERY_RET,       "sql_query_ret"),
    (ProbeId::SqlExec,           gcap_probe::GCAP_P_SQL_EXEC,            "sql_exec"),
    (ProbeId::SqlExecRet,        gcap_probe::GCAP_P_SQL_EXEC_RET,        "sql_exec_ret"),
    (ProbeId::CpuSample,         gcap_probe::GCAP_P_CPU_SAMPLE,          "cpu_sample"),
    (ProbeId::HttpServeDone,     gcap_probe::GCAP_P_HTTP_SERVE_DONE,     "http_serve_done"),
    (ProbeId::Http2HandlerDone,  gcap_probe::GCAP_P_HTTP2_HANDLER_DONE,  "http2_handler_done"),
];

/// The name of `probe`'s BPF program (its function in bpf/).
pub(crate) fn program_name(probe: ProbeId) -> &'static str {
    PROGRAMS[probe as usize].2
}

/// `probe`'s program in the loaded object.
pub(crate) fn program(object: &Object, probe: ProbeId) -> ProgramMut<'_> {
    let name = program_name(probe);
    object
        .progs_mut()
        .find(|p| p.name() == name)
        .unwrap_or_else(|| panic!("the BPF object has no program {name}"))
}

/// `probe`'s program in the opened (not yet loaded) object.
pub(crate) fn open_program(object: &mut OpenObject, probe: ProbeId) -> OpenProgramMut<'_> {
    let name = program_name(probe);
    object
        .progs_mut()
        .find(|p| p.name() == name)
        .unwrap_or_else(|| panic!("the BPF object has no program {name}"))
}

#[cfg(test)]
mod tests {
    use std::mem::MaybeUninit;

    use libbpf_rs::skel::{OpenSkel, SkelBuilder};

    use super::*;

    /// The table follows `enum gcap_probe` (and so the hit counters), and names exactly the
    /// programs the object has.
    #[test]
    fn programs_match_the_object() {
        for (i, (probe, id, _)) in PROGRAMS.iter().enumerate() {
            assert_eq!(*probe as usize, i, "{probe:?}");
            assert_eq!(id.0 as usize, i, "{probe:?}");
        }
        assert_eq!(
            PROGRAMS.len(),
            gcap_probe::GCAP_P_COUNT.0 as usize,
            "one program per enum gcap_probe id"
        );
        let mut storage = MaybeUninit::uninit();
        let open = GcapSkelBuilder::default().open(&mut storage).unwrap();
        let mut in_object: Vec<String> = open
            .open_object()
            .progs()
            .map(|p| p.name().to_string_lossy().into_owned())
            .collect();
        in_object.sort();
        let mut in_table: Vec<String> = PROGRAMS.iter().map(|p| p.2.to_string()).collect();
        in_table.sort();
        assert_eq!(in_object, in_table);
    }

    /// The configuration userspace writes into `.rodata` before loading.
    #[test]
    fn config_layout() {
        use std::mem::{offset_of, size_of};
        use types::gcap_config;
        assert_eq!(size_of::<gcap_config>(), 152);
        assert_eq!(offset_of!(gcap_config, m_curg), 48);
        assert_eq!(offset_of!(gcap_config, go_minor), 56);
        assert_eq!(offset_of!(gcap_config, m_procid), 72);
        assert_eq!(offset_of!(gcap_config, keep_query), 144);
    }
}
