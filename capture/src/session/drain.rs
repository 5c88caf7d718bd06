//! The capture loop: every [`DRAIN_INTERVAL`] (less often while a budgeted capture has only
//! spans attached) it drains each target's ring buffer (records are submitted without
//! wakeups) into the translator, steers the budget, writes everything pending
//! every `flush_interval`, watches the targets, and stops on a signal, after the duration,
//! when every target has exited, or on an error. Then it takes the last records and
//! detaches.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Result;
use gcap_format::{Event, EventData, Writer};

use super::attach::{detach_all, Group};
use super::host::monotonic_ns;
use super::launch::Launched;
use super::process::{first_target, Proc};
use super::steer::Steer;
use super::Options;
use crate::probes::{Record, DRAIN_INTERVAL};
use crate::snapshot;
use crate::translate::symbols::Placement;
use crate::translate::Translator;

/// The capture's moving parts while it runs.
pub(crate) struct Capture {
    pub(crate) w: Writer<File>,
    pub(crate) groups: Vec<Group>,
    pub(crate) procs: Vec<Proc>,
    pub(crate) translator: Translator,
    /// The budget: cost, windows, triggers.
    pub(crate) steer: Steer,
    /// Snapshots taken so far after the first (number 0, at the start).
    snapshots: u32,
    /// Lost-record counts already written, by (group, cpu).
    lost_seen: BTreeMap<(usize, usize), u64>,
}

impl Capture {
    pub(crate) fn new(
        w: Writer<File>,
        groups: Vec<Group>,
        procs: Vec<Proc>,
        keep_query: bool,
        steer: Steer,
    ) -> Capture {
        let mut translator = Translator::new(procs.iter().map(|p| (p.id, p.pid)), keep_query);
        if steer.wants_requests() {
            translator.spans().track_requests();
        }
        Capture {
            w,
            groups,
            procs,
            translator,
            steer,
            snapshots: 0,
            lost_seen: BTreeMap::new(),
        }
    }

    /// Runs until a stop condition: returns why, and the error that ended it, if one did.
    pub(crate) fn run_until_stop(
        &mut self,
        opts: &Options,
        stop: &AtomicBool,
        began: Instant,
        program: &mut Option<Launched>,
        warnings: &mut Vec<String>,
    ) -> (String, Option<String>) {
        let mut last_flush = Instant::now();
        loop {
            std::thread::sleep(self.steer.drain_interval());
            let step = self.drain_all().and_then(|_| {
                let opened = self.steer.step(
                    &mut self.w,
                    &mut self.groups,
                    &self.procs,
                    &mut self.translator,
                    warnings,
                )?;
                if opened {
                    self.snapshot_window(warnings);
                }
                if last_flush.elapsed() >= opts.flush_interval {
                    last_flush = Instant::now();
                    self.flush()
                } else {
                    Ok(())
                }
            });
            // A write error (disk full) or a probe error ends the loop; the file is then
            // finished as well as it can be, never left with a partial block.
            if let Err(e) = step {
                return ("error".to_string(), Some(format!("{e:#}")));
            }
            if program.as_mut().is_some_and(Launched::poll) {
                if let Some(p) = self.procs.last_mut() {
                    p.exited = true;
                }
            }
            for p in &mut self.procs {
                let g = &self.groups[p.group];
                p.refresh(&g.prepared.binary, g.file_id, warnings);
            }
            if stop.load(Ordering::Relaxed) {
                return ("signal".to_string(), None);
            }
            if opts.duration.is_some_and(|d| began.elapsed() >= d) {
                return ("duration".to_string(), None);
            }
            if self.procs.iter().all(|p| p.exited) {
                return ("targets exited".to_string(), None);
            }
        }
    }

    /// Ends the capture at `end_ns`: takes the records that landed before it (unless the
    /// loop ended in `failure`), detaches, and cuts off a partial block a failed write left.
    pub(crate) fn end(
        &mut self,
        end_ns: u64,
        failure: &mut Option<String>,
        warnings: &mut Vec<String>,
    ) {
        // Detaching takes a while (each uprobe is unregistered in turn), and records from
        // probes still attached meanwhile would describe a half-observed program (wake-ups
        // without the runs that follow them): drop everything after the end.
        self.translator.cut_off(end_ns);
        if failure.is_none() {
            // Let in-flight records land, then take the last of them.
            std::thread::sleep(DRAIN_INTERVAL);
            let last = self.drain_all().and_then(|_| {
                detach_all(&mut self.groups);
                self.drain_all()?;
                self.steer
                    .end(&mut self.w, &self.groups, &self.procs, end_ns)?;
                self.flush()
            });
            if let Err(e) = last {
                *failure = Some(format!("{e:#}"));
            }
        }
        detach_all(&mut self.groups);
        if failure.is_some() {
            // What was written stays readable.
            if let Ok(n) = self.w.recover_from_write_error() {
                if n > 0 {
                    warnings.push(format!("{n} buffered events could not be written"));
                }
            }
        }
    }

    /// Writes snapshot `number` of the goroutines of process `pi` ([`crate::snapshot`]);
    /// nothing while its executable is not mapped yet.
    pub(crate) fn snapshot(&mut self, pi: usize, number: u32) -> Result<()> {
        let p = &self.procs[pi];
        let Some(bias) = p.bias else {
            return Ok(());
        };
        let prepared = &self.groups[p.group].prepared;
        let snap = snapshot::take(p.pid, bias, &prepared.binary, prepared.snapshot_layout()?)?;
        self.translator.snapshot(&mut self.w, pi, number, &snap)
    }

    /// A lifecycle window opened: a snapshot of every live target's goroutines, so the
    /// window starts from each goroutine's state (its lifecycle events follow).
    fn snapshot_window(&mut self, warnings: &mut Vec<String>) {
        self.snapshots += 1;
        for pi in 0..self.procs.len() {
            if self.procs[pi].exited {
                continue;
            }
            if let Err(e) = self.snapshot(pi, self.snapshots) {
                let msg = format!(
                    "no goroutine snapshot of pid {} at a window: {e:#}",
                    self.procs[pi].pid
                );
                if !warnings.contains(&msg) {
                    warnings.push(msg);
                }
            }
        }
    }

    /// Translates every record waiting in the ring buffers, and writes the records lost
    /// since the last drain as events, so the analysis knows when the gaps were.
    fn drain_all(&mut self) -> Result<()> {
        /// Records read and translated at a time: ~2 MB of records at most.
        const DRAIN_BATCH: usize = 32 * 1024;
        let mut recs: Vec<Record> = Vec::new();
        for (gi, g) in self.groups.iter_mut().enumerate() {
            // Batches bound gcap's memory when the targets produce as fast as it reads.
            loop {
                recs.clear();
                let got = g.probes.drain(DRAIN_BATCH, |r| recs.push(r))?;
                for r in &recs {
                    if !self.steer.windows.covers(r.probe, r.ts_ns) {
                        self.steer.outside += 1;
                        continue;
                    }
                    let procs = &mut self.procs;
                    self.translator.translate(
                        &mut self.w,
                        &mut g.probes,
                        &g.prepared.offsets.g,
                        r,
                        |pi| procs[pi].exited = true,
                    )?;
                }
                if got < DRAIN_BATCH {
                    break;
                }
            }
            if let Ok(lost) = g.probes.lost_per_cpu() {
                for (cpu, n) in lost.into_iter().enumerate() {
                    let seen = self.lost_seen.entry((gi, cpu)).or_insert(0);
                    if n > *seen {
                        let count = n - *seen;
                        *seen = n;
                        self.w.push(
                            first_target(&self.procs, gi),
                            Event {
                                ts: monotonic_ns(),
                                goid: 0,
                                data: EventData::Lost {
                                    cpu: cpu as u32,
                                    count,
                                },
                            },
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Symbolizes pending PCs (of processes whose load bias is known), writes everything
    /// buffered and waits for it to reach the disk (a host crash loses at most one flush
    /// interval, as a killed gcap does).
    fn flush(&mut self) -> Result<()> {
        let (procs, groups) = (&self.procs, &self.groups);
        self.translator.symbolize(&mut self.w, |pi| {
            let p = &procs[pi];
            Placement {
                target: p.id,
                group: p.group,
                binary: &groups[p.group].prepared.binary,
                bias: p.bias,
            }
        });
        self.w.flush_durably()?;
        Ok(())
    }
}
