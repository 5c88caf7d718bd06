//! The Parquet export: tables `goroutines`, `states`, `spans` and `samples` per captured
//! process, hive-partitioned for fleet queries.

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::{owned_states, Names};
use crate::analysis::Analysis;
use crate::capture_set::CaptureSet;
use crate::error::{AnalyzeError, Result};
use crate::goroutine::{reason_name, Cause, Goroutine, StateKind};
use crate::table::{GoroutineRow, SpanRow};

fn cause_name(c: Cause) -> Option<String> {
    match c {
        Cause::Created => Some("created".into()),
        Cause::Woken(_) => Some("woken".into()),
        Cause::Preempted => Some("preempted".into()),
        Cause::Yielded => Some("yielded".into()),
        Cause::Snapshot => Some("snapshot".into()),
        Cause::Lost => Some("lost".into()),
        Cause::Unknown => None,
    }
}

fn polars_err(what: &str) -> impl Fn(PolarsError) -> AnalyzeError + '_ {
    move |e| AnalyzeError::Export {
        what: what.to_string(),
        message: e.to_string(),
    }
}

fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<()> {
    let file = File::create(path)
        .map_err(|e| AnalyzeError::io(format!("creating {}", path.display()), e))?;
    ParquetWriter::new(file)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(df)
        .map_err(polars_err(&path.display().to_string()))?;
    Ok(())
}

fn frame(columns: Vec<Column>, what: &str) -> Result<DataFrame> {
    let height = columns.first().map_or(0, |c| c.len());
    DataFrame::new(height, columns).map_err(polars_err(what))
}

fn col<T, P: ?Sized>(name: &str, v: T) -> Column
where
    Series: NamedFrom<T, P>,
{
    Series::new(name.into(), v).into_column()
}

/// Writes Parquet tables `goroutines`, `states`, `spans` (and `samples` when the capture has
/// CPU samples) for each captured process, hive-partitioned:
/// `OUT/service=<exe name>/capture=<file stem>/<table>.parquet`. Returns the files written.
pub fn parquet(set: &CaptureSet, a: &Analysis, out: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut names = Names::default();
    for (fi, f) in set.files.iter().enumerate() {
        let fi = fi as u32;
        let mut targets: Vec<u32> = f.cap.targets().iter().map(|t| t.id).collect();
        for g in a.goroutines.iter().filter(|g| g.key.file == fi) {
            if !targets.contains(&g.key.target) {
                targets.push(g.key.target);
            }
        }
        let digest = f.cap.digest().to_string();
        for target in targets {
            let dir = out
                .join(format!("service={}", hive_value(&f.service(target))))
                .join(format!("capture={}", hive_value(&f.stem)));
            std::fs::create_dir_all(&dir)
                .map_err(|e| AnalyzeError::io(format!("creating {}", dir.display()), e))?;
            let gs: Vec<&Goroutine> = a
                .goroutines
                .iter()
                .filter(|g| g.key.file == fi && g.key.target == target)
                .collect();
            let pid = f.pid(target);

            // goroutines
            let rows: Vec<_> = gs.iter().map(|g| GoroutineRow::new(g, set)).collect();
            let mut df = frame(
                vec![
                    col("pid", rows.iter().map(|r| r.pid).collect::<Vec<u32>>()),
                    col("goid", rows.iter().map(|r| r.goid).collect::<Vec<u64>>()),
                    col(
                        "parent_goid",
                        rows.iter().map(|r| r.parent_goid).collect::<Vec<_>>(),
                    ),
                    col(
                        "start_function",
                        rows.iter().map(|r| r.start_function).collect::<Vec<_>>(),
                    ),
                    col(
                        "creation_site",
                        rows.iter().map(|r| r.creation_site).collect::<Vec<_>>(),
                    ),
                    col(
                        "created_ns",
                        rows.iter().map(|r| r.created_ns).collect::<Vec<_>>(),
                    ),
                    col(
                        "exited_ns",
                        rows.iter().map(|r| r.exited_ns).collect::<Vec<_>>(),
                    ),
                    col("end_ns", rows.iter().map(|r| r.end_ns).collect::<Vec<_>>()),
                    col(
                        "running_ns",
                        rows.iter().map(|r| r.running_ns).collect::<Vec<_>>(),
                    ),
                    col(
                        "runnable_ns",
                        rows.iter().map(|r| r.runnable_ns).collect::<Vec<_>>(),
                    ),
                    col(
                        "syscall_ns",
                        rows.iter().map(|r| r.syscall_ns).collect::<Vec<_>>(),
                    ),
                    col(
                        "off_cpu_ns",
                        rows.iter().map(|r| r.off_cpu_ns).collect::<Vec<_>>(),
                    ),
                    col(
                        "blocked_total_ns",
                        rows.iter().map(|r| r.blocked_total_ns).collect::<Vec<_>>(),
                    ),
                    col(
                        "blocked_ns_json",
                        rows.iter()
                            .map(|r| serde_json::to_string(&r.blocked_ns).unwrap_or_default())
                            .collect::<Vec<_>>(),
                    ),
                    col(
                        "wakeups_by_json",
                        rows.iter()
                            .map(|r| serde_json::to_string(&r.wakeups_by).unwrap_or_default())
                            .collect::<Vec<_>>(),
                    ),
                    col(
                        "state_at_end",
                        rows.iter()
                            .map(|r| r.state_at_end.clone())
                            .collect::<Vec<_>>(),
                    ),
                    col("capture_digest", vec![digest.clone(); rows.len()]),
                ],
                "the goroutines table",
            )?;
            let p = dir.join("goroutines.parquet");
            write_parquet(&mut df, &p)?;
            written.push(p);

            // states
            let n: usize = gs.iter().map(|g| g.states.len()).sum();
            let (mut goid, mut start, mut dur) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            let (mut state, mut reason, mut where_) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            let (mut tid, mut cause, mut woken_by, mut span) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for g in &gs {
                for (s, owner, _) in owned_states(&a.span_index, g) {
                    goid.push(g.key.goid);
                    start.push(set.rel(s.start));
                    dur.push(s.duration());
                    state.push(s.kind.name());
                    reason.push(match s.kind {
                        StateKind::Blocked => Some(reason_name(f, target, s.reason).to_string()),
                        _ => None,
                    });
                    where_.push(match s.kind {
                        StateKind::Blocked | StateKind::Syscall if s.stack != 0 => {
                            Some(names.where_(f, fi, target, s.stack).to_string())
                        }
                        _ => None,
                    });
                    tid.push((s.tid != 0).then_some(s.tid));
                    cause.push(if s.kind == StateKind::Runnable {
                        cause_name(s.cause)
                    } else {
                        None
                    });
                    woken_by.push(match (s.kind, s.cause) {
                        (StateKind::Runnable, Cause::Woken(w)) => Some(w),
                        _ => None,
                    });
                    span.push(owner.map(|i| a.spans[i].span_id.clone()));
                }
            }
            let mut df = frame(
                vec![
                    col("pid", vec![pid; goid.len()]),
                    col("goid", goid),
                    col("start_ns", start),
                    col("duration_ns", dur),
                    col("state", state),
                    col("reason", reason),
                    col("where", where_),
                    col("tid", tid),
                    col("cause", cause),
                    col("woken_by", woken_by),
                    col("span_id", span),
                ],
                "the states table",
            )?;
            let p = dir.join("states.parquet");
            write_parquet(&mut df, &p)?;
            written.push(p);

            // spans
            let rows: Vec<_> = a
                .spans
                .iter()
                .filter(|s| s.key.file == fi && s.key.target == target)
                .map(|s| SpanRow::new(s, set, &a.spans))
                .collect();
            let mut df = frame(
                vec![
                    col(
                        "span_id",
                        rows.iter().map(|r| r.span_id).collect::<Vec<_>>(),
                    ),
                    col("pid", rows.iter().map(|r| r.pid).collect::<Vec<_>>()),
                    col("kind", rows.iter().map(|r| r.kind).collect::<Vec<&str>>()),
                    col("name", rows.iter().map(|r| r.name).collect::<Vec<_>>()),
                    col(
                        "start_ns",
                        rows.iter().map(|r| r.start_ns).collect::<Vec<_>>(),
                    ),
                    col(
                        "duration_ns",
                        rows.iter().map(|r| r.duration_ns).collect::<Vec<_>>(),
                    ),
                    col("status", rows.iter().map(|r| r.status).collect::<Vec<_>>()),
                    col("error", rows.iter().map(|r| r.error).collect::<Vec<_>>()),
                    col(
                        "goroutine",
                        rows.iter().map(|r| r.goroutine).collect::<Vec<_>>(),
                    ),
                    col(
                        "parent_span",
                        rows.iter().map(|r| r.parent_span).collect::<Vec<_>>(),
                    ),
                    col(
                        "trace_id",
                        rows.iter()
                            .map(|r| r.trace_id.map(|t| t.to_string()))
                            .collect::<Vec<_>>(),
                    ),
                    col(
                        "complete",
                        rows.iter().map(|r| r.complete).collect::<Vec<_>>(),
                    ),
                    col("method", rows.iter().map(|r| r.method).collect::<Vec<_>>()),
                    col("host", rows.iter().map(|r| r.host).collect::<Vec<_>>()),
                    col("target", rows.iter().map(|r| r.target).collect::<Vec<_>>()),
                    col(
                        "goroutines",
                        rows.iter().map(|r| r.goroutines).collect::<Vec<_>>(),
                    ),
                ],
                "the spans table",
            )?;
            let p = dir.join("spans.parquet");
            write_parquet(&mut df, &p)?;
            written.push(p);

            // samples
            let ns: usize = gs.iter().map(|g| g.samples.len()).sum();
            if ns > 0 {
                let (mut goid, mut at, mut tid, mut leaf, mut stack) = (
                    Vec::with_capacity(ns),
                    Vec::with_capacity(ns),
                    Vec::with_capacity(ns),
                    Vec::with_capacity(ns),
                    Vec::with_capacity(ns),
                );
                for g in &gs {
                    for &(t, th, st) in &g.samples {
                        goid.push(g.key.goid);
                        at.push(set.rel(t));
                        tid.push(th);
                        leaf.push(f.site(target, st));
                        stack.push(names.folded(f, fi, target, st).to_string());
                    }
                }
                let mut df = frame(
                    vec![
                        col("pid", vec![pid; goid.len()]),
                        col("goid", goid),
                        col("at_ns", at),
                        col("tid", tid),
                        col("leaf", leaf),
                        col("stack", stack),
                    ],
                    "the samples table",
                )?;
                let p = dir.join("samples.parquet");
                write_parquet(&mut df, &p)?;
                written.push(p);
            }
        }
    }
    Ok(written)
}

/// A hive partition value: no '/', '=' or control characters.
fn hive_value(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '/' || c == '=' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{analysed, scenario};

    #[test]
    fn parquet_tables_read_back() {
        let (set, a) = analysed("orders-1.gcap", scenario::lifecycle(false));
        let dir = tempfile::tempdir().unwrap();
        let files = parquet(&set, &a, dir.path()).unwrap();
        let base = dir.path().join("service=orders").join("capture=orders-1");
        assert!(
            files.contains(&base.join("goroutines.parquet")),
            "{files:?}"
        );
        let g = ParquetReader::new(File::open(base.join("goroutines.parquet")).unwrap())
            .finish()
            .unwrap();
        assert_eq!(g.height(), 3);
        let running: Vec<Option<u64>> = g
            .column("running_ns")
            .unwrap()
            .u64()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(running, vec![Some(380), Some(210), Some(170)]);
        let s = ParquetReader::new(File::open(base.join("states.parquet")).unwrap())
            .finish()
            .unwrap();
        let total: u64 = a.goroutines.iter().map(|g| g.states.len() as u64).sum();
        assert_eq!(s.height() as u64, total);
        let states = s.column("state").unwrap().str().unwrap();
        assert!(states.iter().any(|x| x == Some("off_cpu")));
        let wh = s.column("where").unwrap().str().unwrap();
        assert!(wh.iter().any(|x| x == Some("main.worker (main.go:25)")));
    }
}
