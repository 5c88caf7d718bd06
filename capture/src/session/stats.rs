//! The capture's stats block, written once at the end: why it stopped, probe hits and
//! lost records per target binary, span counters and the exit status of a program gcap
//! started.

use std::process::ExitStatus;

use gcap_format::{KeyValue, ProbeStat, Stats};

use super::drain::Capture;
use super::process::first_target;

/// The stats of `cap`, ended at `end_ns`, and the total of lost records.
pub(crate) fn collect(
    cap: &Capture,
    end_ns: u64,
    stop_reason: &str,
    exit_status: Option<ExitStatus>,
) -> (Stats, u64) {
    let mut stats = Stats {
        end_mono_ns: end_ns,
        stop_reason: stop_reason.to_string(),
        ..Stats::default()
    };
    let mut lost_total = 0;
    for (gi, g) in cap.groups.iter().enumerate() {
        let first = first_target(&cap.procs, gi);
        for (probe, hits) in g.probes.hit_counts().unwrap_or_default() {
            stats.probes.push(ProbeStat {
                target: first,
                name: format!("{probe:?}"),
                hits,
            });
        }
        let lost = g.probes.lost_per_cpu().unwrap_or_default();
        if stats.lost_per_cpu.len() < lost.len() {
            stats.lost_per_cpu.resize(lost.len(), 0);
        }
        for (i, n) in lost.iter().enumerate() {
            stats.lost_per_cpu[i] += n;
            lost_total += n;
        }
        stats.extra.push(KeyValue {
            key: format!("target{first}.stacks_lost"),
            value: g.probes.stacks_lost().unwrap_or(0).to_string(),
        });
        stats.extra.push(KeyValue {
            key: format!("target{first}.unblocks_lost"),
            value: g.probes.unblocks_lost().unwrap_or(0).to_string(),
        });
    }
    stats.extra.extend(cap.translator.span_stats());
    stats.extra.extend(cap.steer.stats());
    if let Some(s) = exit_status {
        stats.extra.push(KeyValue {
            key: "program_exit_status".into(),
            value: s.to_string(),
        });
    }
    (stats, lost_total)
}
