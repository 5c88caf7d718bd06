//! The critical path of a request: what the request was waiting for at every moment of its
//! server span, following wake-up edges into the goroutines it waited for.
//!
//! The walk covers the span's interval on its handler goroutine, state by state (the
//! states tile a goroutine's life, so the segments tile the request):
//!
//! | handler state | category |
//! |---|---|
//! | running | `on_cpu` (`off_cpu` while its thread was descheduled) |
//! | runnable | `runnable` (`gc` during a stop-the-world pause) |
//! | syscall | `syscall` |
//! | blocked | by wait reason: `mutex`, `chan`, `network`, `sleep`, `gc`, `other` |
//! | inside a client or SQL span it started | `downstream` |
//!
//! Following the Go execution tracer's critical-path idea (walk back along unblock edges,
//! following the unblocking goroutine only while the original one is blocked): a blocked
//! interval woken by goroutine W (a mutex, channel or other hand-off; not timers, the
//! network poller or the GC) is replaced by W's own states over that interval, recursively
//! (depth limit, cycle guard). Those segments keep the request-side category and location
//! (`mutex` at `main.(*store).get (main.go:38)`) and name W as the blocker; what W did is
//! the segment's `activity` (`sleep` at `main.(*store).refresh (main.go:52)`). A goroutine
//! that belongs to the same request (a fan-out helper) is treated as the request itself.
//! Time inside a client span is `downstream` with the call ("GET host/path", or the SQL
//! verb and query) as blocker; when the called service's server span is in the set (joined
//! by trace context) the walk descends into it for the activity.

use rustc_hash::FxHashMap as HashMap;
use std::cell::RefCell;

use gcap_format::{SpanKind, StackId};

use crate::analysis::Analysis;
use crate::capture_set::{is_std_frame, CaptureSet, Ns};
use crate::category::{Category, StackFacts, Waker};
use crate::goroutine::{Cause, Goroutine, GoroutineKey, State, StateKind, LOST, UNCOVERED};

/// Where the program called into a client library: the first frame of the program's own
/// code outside database/sql and the standard library.
fn caller_of_client(frames: &[crate::capture_set::Frame]) -> Option<String> {
    let from = frames
        .iter()
        .rposition(|f| f.function.starts_with("database/sql."))
        .map_or(0, |i| i + 1);
    frames[from..]
        .iter()
        .find(|f| !is_std_frame(&f.function))
        .map(|f| f.site())
}

/// What the walker needs to know about a stack.
#[derive(Clone, Debug)]
struct StackInfo {
    where_: String,
    /// What its frames say about a wait there.
    facts: StackFacts,
    client_caller: Option<String>,
    /// For goroutines seen only through their stacks: (start function, creation site).
    origin: Option<(String, Option<String>)>,
}

/// The request-side view a followed goroutine's time is attributed to.
#[derive(Clone, Debug, PartialEq)]
struct Top {
    category: Category,
    where_: String,
    /// Fixed blocker (a downstream call); None: the goroutine whose state it is.
    blocker: Option<String>,
}

/// One piece of a request's critical path.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Segment {
    pub start: Ns,
    pub end: Ns,
    /// The goroutine whose state this is (the handler, or one it waited for).
    pub goroutine: GoroutineKey,
    /// The request-side category and code location.
    pub category: Category,
    pub where_: String,
    /// What held the request up (None: its own time).
    pub blocker: Option<String>,
    /// What `goroutine` was doing, and where.
    pub activity: Category,
    pub activity_where: String,
    /// 0: the request's own goroutines; n: n wake-up or call edges away.
    pub depth: u8,
}

impl Segment {
    pub(crate) fn duration(&self) -> u64 {
        (self.end - self.start).max(0) as u64
    }

    /// Why its goroutine's state is unknown here, if it is: time the capture did not cover,
    /// or events of the goroutine were lost.
    pub(crate) fn gap(&self) -> Option<Gap> {
        match (self.activity, self.activity_where.as_str()) {
            (Category::Other, UNCOVERED) => Some(Gap::Uncovered),
            (Category::Other, LOST) => Some(Gap::Lost),
            _ => None,
        }
    }
}

/// Why the capture cannot explain a request (see [`Walker::gap`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gap {
    /// Part of it lies outside its process' lifecycle windows.
    Uncovered,
    /// Its critical path crosses time whose events were lost.
    Lost,
}

/// Walks critical paths over one analysis (reuses symbolization across requests).
pub(crate) struct Walker<'a> {
    pub set: &'a CaptureSet,
    pub a: &'a Analysis,
    /// Follow wake-ups and calls at most this deep.
    pub max_depth: u8,
    clients: HashMap<GoroutineKey, Vec<ClientSpan>>,
    stw: HashMap<(u32, u32), Vec<(Ns, Ns)>>,
    stacks: RefCell<HashMap<(u32, u32, StackId), StackInfo>>,
    names: RefCell<HashMap<GoroutineKey, String>>,
    gc_sites: RefCell<HashMap<(String, u32, u32), Option<String>>>,
    running: std::cell::OnceCell<RunningIndex>,
}

/// The running intervals of every goroutine, to find who ran during an interval. Per (file,
/// target), each interval is listed under every 10 ms bucket it touches, sorted by bucket
/// (only buckets something ran in take room, however long the capture); an interval
/// touching more than [`RunningIndex::SPREAD`] buckets is listed once, among the long ones
/// every query looks at. Memory is proportional to the intervals, never to the time span.
#[derive(Default)]
struct RunningIndex {
    targets: HashMap<(u32, u32), Running>,
}

#[derive(Default)]
struct Running {
    /// (bucket, goid, start, end), sorted.
    short: Vec<(i64, u64, Ns, Ns)>,
    /// (goid, start, end) of the intervals longer than `SPREAD` buckets.
    long: Vec<(u64, Ns, Ns)>,
}

impl RunningIndex {
    /// At most this many buckets per interval.
    const SPREAD: i64 = 64;

    fn build(gs: &[Goroutine]) -> RunningIndex {
        let mut idx = RunningIndex::default();
        for g in gs {
            let t = idx.targets.entry((g.key.file, g.key.target)).or_default();
            for (a, b) in g.states.intervals(StateKind::Running) {
                let (ba, bb) = (a.div_euclid(BUCKET), b.div_euclid(BUCKET));
                if bb - ba >= Self::SPREAD {
                    t.long.push((g.key.goid, a, b));
                } else {
                    t.short.extend((ba..=bb).map(|bk| (bk, g.key.goid, a, b)));
                }
            }
        }
        for t in idx.targets.values_mut() {
            t.short.sort_unstable();
        }
        idx
    }

    /// (goid, start, end) of the intervals of one target that may overlap [a, b]: each
    /// short one once per bucket it shares with [a, b].
    fn around(
        &self,
        file: u32,
        target: u32,
        a: Ns,
        b: Ns,
    ) -> impl Iterator<Item = (u64, Ns, Ns)> + '_ {
        let t = self.targets.get(&(file, target));
        let short = t.map_or(&[][..], |t| {
            let (ba, bb) = (a.div_euclid(BUCKET), b.div_euclid(BUCKET));
            let lo = t.short.partition_point(|x| x.0 < ba);
            let hi = t.short.partition_point(|x| x.0 <= bb);
            &t.short[lo..hi.max(lo)]
        });
        let long = t.map_or(&[][..], |t| &t.long[..]);
        short
            .iter()
            .map(|&(_, g, s, e)| (g, s, e))
            .chain(long.iter().copied())
    }
}

/// A client or SQL span of a goroutine, in the goroutine's list sorted by start.
#[derive(Clone, Copy, Debug)]
struct ClientSpan {
    start: Ns,
    /// The latest end of this span and of every one before it in the list, so that the
    /// spans overlapping an interval are found by two binary searches (a keep-alive
    /// connection's goroutine has one span per call of every request it served).
    ends_by: Ns,
    span: usize,
}

const BUCKET: i64 = 10_000_000;
/// The location of stop-the-world pauses.
pub(crate) const STW: &str = "runtime (stop-the-world pause)";
/// The activity of on-CPU time inferred to be GC assists.
pub(crate) const ASSIST: &str =
    "running while the GC was marking (assists; inferred, no CPU samples)";

impl<'a> Walker<'a> {
    pub(crate) fn new(set: &'a CaptureSet, a: &'a Analysis) -> Self {
        // Spans are sorted by start, so each goroutine's list is too.
        let mut clients: HashMap<GoroutineKey, Vec<ClientSpan>> = HashMap::default();
        for (i, s) in a.spans.iter().enumerate() {
            if s.kind != SpanKind::HttpServer {
                let end = s.end_or(set.files[s.key.file as usize].end);
                let v = clients.entry(s.key).or_default();
                let ends_by = v.last().map_or(end, |c| c.ends_by.max(end));
                v.push(ClientSpan {
                    start: s.start,
                    ends_by,
                    span: i,
                });
            }
        }
        let mut stw: HashMap<(u32, u32), Vec<(Ns, Ns)>> = HashMap::default();
        for p in a.pauses.iter().filter(|p| p.stw && p.end > p.start) {
            stw.entry((p.file, p.target))
                .or_default()
                .push((p.start, p.end));
        }
        for v in stw.values_mut() {
            v.sort_unstable();
        }
        Walker {
            set,
            a,
            max_depth: 8,
            clients,
            stw,
            stacks: RefCell::default(),
            names: RefCell::default(),
            gc_sites: RefCell::default(),
            running: std::cell::OnceCell::new(),
        }
    }

    fn span_end(&self, i: usize) -> Ns {
        let s = &self.a.spans[i];
        s.end_or(self.set.files[s.key.file as usize].end)
    }

    fn stack(&self, key: GoroutineKey, stack: StackId) -> StackInfo {
        let k = (key.file, key.target, stack);
        if let Some(s) = self.stacks.borrow().get(&k) {
            return s.clone();
        }
        let f = &self.set.files[key.file as usize];
        let frames = f.frames(key.target, stack);
        let facts = StackFacts::of(frames.iter().map(|fr| fr.function.as_str()));
        // The go statement's wrapper (`main.main.gowrap1`, at the go statement's line) sits
        // just below runtime.goexit; the frame above it is the start function.
        let mut origin = None;
        if let Some(exit) = frames.iter().position(|fr| fr.function == "runtime.goexit") {
            if exit >= 1 {
                let outer = &frames[exit - 1];
                match outer.function.rfind(".gowrap") {
                    Some(p) if exit >= 2 => {
                        let site = crate::capture_set::Frame {
                            function: outer.function[..p].to_string(),
                            ..outer.clone()
                        };
                        origin = Some((frames[exit - 2].function.clone(), Some(site.site())));
                    }
                    _ => origin = Some((outer.function.clone(), None)),
                }
            }
        }
        let info = StackInfo {
            where_: f.where_(key.target, stack),
            facts,
            client_caller: caller_of_client(&frames),
            origin,
        };
        self.stacks.borrow_mut().insert(k, info.clone());
        info
    }

    /// "main.(*store).refresh created at main.main (main.go:93)": a goroutine's start
    /// function and creation site, from its creation event or, for goroutines created before
    /// the capture, from the bottom of its stacks.
    pub(crate) fn describe(&self, key: GoroutineKey) -> String {
        if let Some(s) = self.names.borrow().get(&key) {
            return s.clone();
        }
        let g = self.a.goroutine(key);
        let s = match g {
            Some(g) if g.start_function != "unknown" && g.creation_site != "unknown" => {
                format!("{} created at {}", g.start_function, g.creation_site)
            }
            Some(g) => {
                let origin = g
                    .states
                    .iter()
                    .filter(|s| s.stack != 0)
                    .find_map(|s| self.stack(key, s.stack).origin);
                match origin {
                    Some((f, Some(site))) => format!("{f} created at {site}"),
                    Some((f, None)) => {
                        format!("{f} (goroutine {}, created before the capture)", key.goid)
                    }
                    None => format!(
                        "goroutine {} (created before the capture; no stack recorded)",
                        key.goid
                    ),
                }
            }
            None => format!("goroutine {} (not seen in the capture)", key.goid),
        };
        self.names.borrow_mut().insert(key, s.clone());
        s
    }

    /// Why the capture does not explain request `req` (None: it does): the request must lie
    /// wholly inside a lifecycle window of its process, and its critical path must touch no
    /// time the capture did not cover, nor time whose events were lost.
    pub(crate) fn gap(&self, req: usize) -> Option<Gap> {
        let s = &self.a.spans[req];
        let covered = self.a.coverage[s.key.file as usize].lifecycle_covers(
            s.key.target,
            s.start,
            self.span_end(req),
        );
        if !covered {
            return Some(Gap::Uncovered);
        }
        // Losses first: they are what a fuller capture would not fix.
        let gaps = self.path(req).into_iter().filter_map(|s| s.gap());
        gaps.max_by_key(|g| *g == Gap::Lost)
    }

    /// The critical path of server span `req`, in time order.
    pub(crate) fn path(&self, req: usize) -> Vec<Segment> {
        let s = &self.a.spans[req];
        let mut out = Vec::new();
        let mut chain = vec![s.key];
        self.walk(
            s.key,
            s.start,
            self.span_end(req),
            req,
            None,
            0,
            &mut chain,
            &mut out,
            true,
        );
        out.sort_by_key(|x| (x.start, x.depth));
        self.infer_assists(req, out)
    }

    /// Without CPU samples, GC assists are invisible while they run. When the request itself,
    /// or another request of its endpoint, blocked in the collector's allocator paths (an
    /// assist wait, a semaphore in mallocgc: the handler allocates enough to be charged
    /// assists), its own on-CPU time while the collector was marking is attributed to `gc` at
    /// that allocation site, and so are the stop-the-world pauses it sat through.
    fn infer_assists(&self, req: usize, segs: Vec<Segment>) -> Vec<Segment> {
        let key = self.a.spans[req].key;
        let Some(site) = segs
            .iter()
            .find(|s| s.category == Category::Gc && s.depth == 0 && s.where_ != STW)
            .map(|s| s.where_.clone())
            .or_else(|| self.endpoint_gc_site(req))
        else {
            return segs;
        };
        let marks: Vec<(Ns, Ns)> = self
            .a
            .pauses
            .iter()
            .filter(|p| !p.stw && p.file == key.file && p.target == key.target)
            .map(|p| (p.start, p.end))
            .collect();
        let mut out = Vec::with_capacity(segs.len());
        for s in segs {
            if s.category == Category::Gc && s.where_ == STW {
                out.push(Segment {
                    where_: site.clone(),
                    ..s
                });
                continue;
            }
            if !(s.category == Category::OnCpu && s.activity == Category::OnCpu && s.depth == 0) {
                out.push(s);
                continue;
            }
            let mut at = s.start;
            for &(x, y) in &marks {
                let (x, y) = (x.max(at), y.min(s.end));
                if y <= x {
                    continue;
                }
                if x > at {
                    out.push(Segment {
                        start: at,
                        end: x,
                        ..s.clone()
                    });
                }
                out.push(Segment {
                    start: x,
                    end: y,
                    category: Category::Gc,
                    where_: site.clone(),
                    activity_where: ASSIST.into(),
                    ..s.clone()
                });
                at = y;
            }
            if at < s.end {
                out.push(Segment { start: at, ..s });
            }
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        key: GoroutineKey,
        from: Ns,
        to: Ns,
        req: usize,
        top: Option<&Top>,
        depth: u8,
        chain: &mut Vec<GoroutineKey>,
        out: &mut Vec<Segment>,
        split_clients: bool,
    ) {
        if to <= from {
            return;
        }
        // Client spans of this goroutine cut the interval.
        if split_clients {
            if let Some(cs) = self.clients.get(&key) {
                let lo = cs.partition_point(|c| c.ends_by <= from);
                let hi = cs.partition_point(|c| c.start < to);
                let mut at = from;
                for c in cs[lo..hi.max(lo)].iter().map(|c| c.span) {
                    let (cs0, ce0) = (self.a.spans[c].start, self.span_end(c));
                    let (a, b) = (cs0.max(at), ce0.min(to));
                    if b <= a {
                        continue;
                    }
                    self.walk(key, at, a, req, top, depth, chain, out, false);
                    self.downstream(key, c, a, b, req, top, depth, chain, out);
                    at = b;
                }
                self.walk(key, at, to, req, top, depth, chain, out, false);
                return;
            }
        }
        // Time no state of the goroutine covers: `other`, saying why.
        let uncovered = |out: &mut Vec<Segment>, a: Ns, b: Ns, why: &str| {
            self.emit(
                out,
                key,
                a,
                b,
                top,
                depth,
                Category::Other,
                why.into(),
                None,
            )
        };
        let Some(g) = self.a.goroutine(key) else {
            uncovered(out, from, to, "unknown");
            return;
        };
        if from < g.first_seen {
            uncovered(out, from, g.first_seen.min(to), "goroutine not yet seen");
        }
        let i0 = g.states.partition_point(|s| s.end <= from);
        for i in i0..g.states.len() {
            let s = &g.states.at(i);
            if s.start >= to {
                break;
            }
            let (a, b) = (s.start.max(from), s.end.min(to));
            if b <= a {
                continue;
            }
            self.state(g, i, s, a, b, req, top, depth, chain, out);
        }
        if let Some(last) = g.states.last() {
            if last.end < to {
                uncovered(out, last.end.max(from), to, "goroutine gone");
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn state(
        &self,
        g: &Goroutine,
        i: usize,
        s: &State,
        a: Ns,
        b: Ns,
        req: usize,
        top: Option<&Top>,
        depth: u8,
        chain: &mut Vec<GoroutineKey>,
        out: &mut Vec<Segment>,
    ) {
        let key = g.key;
        let f = &self.set.files[key.file as usize];
        let (cat, where_) = match s.kind {
            StateKind::Running => (Category::OnCpu, self.sample_where(g, a, b)),
            StateKind::OffCpu => (Category::OffCpu, self.sample_where(g, a, b)),
            StateKind::Runnable => (Category::Runnable, self.sample_where(g, a, b)),
            StateKind::Syscall => (Category::Syscall, self.stack(key, s.stack).where_),
            StateKind::Unknown => (Category::Other, s.unknown_why().into()),
            StateKind::Blocked => {
                let info = self.stack(key, s.stack);
                let reason = s.reason.map_or("unknown", |r| f.wait_reason(key.target, r));
                (Category::of_wait(reason, info.facts), info.where_)
            }
        };
        // Who ended the wait: the runtime (0), or a goroutine.
        let waker = match g.states.get(i + 1) {
            Some(n) if s.kind == StateKind::Blocked && n.start == s.end => match n.cause {
                Cause::Woken(w) => Some(w),
                _ => None,
            },
            _ => None,
        };
        let woken_by = waker.map(|w| GoroutineKey { goid: w, ..key });
        let waker_g = woken_by
            .filter(|wk| wk.goid != 0)
            .and_then(|wk| self.a.goroutine(wk));
        // A waker created during the wait did not hold it up all along (the goroutine a
        // timer starts, say): it is never followed.
        let created_inside = waker_g
            .and_then(|w| w.created())
            .is_some_and(|c| c > s.start);
        let cat = match (waker, waker_g) {
            (Some(0), _) => cat.of_ended_wait(Waker::Runtime),
            (Some(_), Some(w)) => cat.of_ended_wait(Waker::of_goroutine(&w.creation_site)),
            _ => cat,
        };
        if s.kind == StateKind::Blocked
            && matches!(cat, Category::Mutex | Category::Chan | Category::Other)
            && depth < self.max_depth
            && !created_inside
        {
            if let (Some(wk), Some(_)) = (woken_by, waker_g) {
                if !chain.contains(&wk) {
                    let same_request = self.a.span_index.owner_at(wk, b) == Some(req);
                    let new_top;
                    let t = match top {
                        Some(t) => Some(t),
                        None if same_request => None,
                        None => {
                            new_top = Top {
                                category: cat,
                                where_: where_.clone(),
                                blocker: None,
                            };
                            Some(&new_top)
                        }
                    };
                    chain.push(wk);
                    self.walk(wk, a, b, req, t, depth + 1, chain, out, true);
                    chain.pop();
                    return;
                }
            }
        }
        self.emit(out, key, a, b, top, depth, cat, where_, None);
    }

    #[allow(clippy::too_many_arguments)]
    fn downstream(
        &self,
        key: GoroutineKey,
        c: usize,
        a: Ns,
        b: Ns,
        req: usize,
        top: Option<&Top>,
        depth: u8,
        chain: &mut Vec<GoroutineKey>,
        out: &mut Vec<Segment>,
    ) {
        let span = &self.a.spans[c];
        let own;
        let t = match top {
            Some(t) => t,
            None => {
                own = Top {
                    category: Category::Downstream,
                    where_: self.call_site(c),
                    blocker: Some(call_name(span)),
                };
                &own
            }
        };
        let remote: Vec<usize> = span
            .children
            .iter()
            .copied()
            .filter(|&i| self.a.spans[i].kind == SpanKind::HttpServer)
            .collect();
        if remote.is_empty() || depth >= self.max_depth {
            // The call's own goroutine: an in-process driver, or the client waiting.
            self.walk(key, a, b, req, Some(t), depth, chain, out, false);
            return;
        }
        // The call's time outside the called service's span.
        let between = |out: &mut Vec<Segment>, x: Ns, y: Ns| {
            let what = "between the services".into();
            self.emit(
                out,
                key,
                x,
                y,
                Some(t),
                depth + 1,
                Category::Network,
                what,
                None,
            )
        };
        let mut at = a;
        for r in remote {
            let rs = &self.a.spans[r];
            let (x, y) = (rs.start.max(at), self.span_end(r).min(b));
            if y <= x {
                continue;
            }
            if x > at {
                between(out, at, x);
            }
            let mut ch = vec![rs.key];
            self.walk(rs.key, x, y, r, Some(t), depth + 1, &mut ch, out, true);
            at = y;
        }
        if at < b {
            between(out, at, b);
        }
    }

    /// Where requests of the same endpoint (and process) as `req` are charged by the
    /// collector: the most common location of their handlers' GC waits (an assist wait, a
    /// semaphore in mallocgc), if any of the first 2,000 requests had one.
    fn endpoint_gc_site(&self, req: usize) -> Option<String> {
        let s = &self.a.spans[req];
        let k = (s.name.to_string(), s.key.file, s.key.target);
        if let Some(v) = self.gc_sites.borrow().get(&k) {
            return v.clone();
        }
        let mut count: HashMap<String, usize> = HashMap::default();
        let same = self
            .a
            .spans
            .iter()
            .enumerate()
            .filter(|(_, x)| {
                x.kind == SpanKind::HttpServer
                    && x.name == s.name
                    && (x.key.file, x.key.target) == (k.1, k.2)
            })
            .take(2000);
        for (i, x) in same {
            let Some(g) = self.a.goroutine(x.key) else {
                continue;
            };
            let end = self.span_end(i);
            let i0 = g.states.partition_point(|st| st.end <= x.start);
            for st in g.states.iter_from(i0).take_while(|st| st.start < end) {
                if st.kind == StateKind::Blocked && st.stack != 0 {
                    let info = self.stack(x.key, st.stack);
                    if info.facts.gc {
                        *count.entry(info.where_).or_default() += 1;
                    }
                }
            }
        }
        let best = count
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|x| x.0);
        self.gc_sites.borrow_mut().insert(k, best.clone());
        best
    }

    /// Where the program made the call of client span `c`: from the longest block of its
    /// goroutine inside the span.
    pub(crate) fn call_site(&self, c: usize) -> String {
        let span = &self.a.spans[c];
        let end = self.span_end(c);
        let Some(g) = self.a.goroutine(span.key) else {
            return "unknown".into();
        };
        let i0 = g.states.partition_point(|s| s.end <= span.start);
        let best = g
            .states
            .iter_from(i0)
            .take_while(|s| s.start < end)
            .filter(|s| matches!(s.kind, StateKind::Blocked | StateKind::Syscall) && s.stack != 0)
            .max_by_key(|s| s.end.min(end) - s.start.max(span.start));
        best.and_then(|s| self.stack(span.key, s.stack).client_caller)
            .unwrap_or_else(|| "unknown".into())
    }

    /// CPU samples of the goroutine in (or just before) the interval, if the capture has any.
    fn sample_where(&self, g: &Goroutine, a: Ns, b: Ns) -> String {
        if g.samples.is_empty() {
            return "unknown".into();
        }
        let i = g.samples.partition_point(|x| x.0 < a - 20_000_000);
        match g.samples[i..].iter().take_while(|x| x.0 <= b).last() {
            Some(&(_, _, st)) => self.stack(g.key, st).where_,
            None => "unknown".into(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &self,
        out: &mut Vec<Segment>,
        key: GoroutineKey,
        a: Ns,
        b: Ns,
        top: Option<&Top>,
        depth: u8,
        activity: Category,
        activity_where: String,
        blocker: Option<String>,
    ) {
        if b <= a {
            return;
        }
        let make = |a: Ns, b: Ns, activity: Category, activity_where: String| {
            let (category, where_, blocker) = match top {
                Some(t) => (
                    t.category,
                    t.where_.clone(),
                    t.blocker
                        .clone()
                        .or_else(|| Some(self.blocker_name(key, b))),
                ),
                None => (activity, activity_where.clone(), blocker.clone()),
            };
            Segment {
                start: a,
                end: b,
                goroutine: key,
                category,
                where_,
                blocker,
                activity,
                activity_where,
                depth,
            }
        };
        // Stop-the-world pauses stop whatever would have run.
        let pauses = match activity {
            Category::OnCpu | Category::Runnable | Category::OffCpu => {
                self.stw.get(&(key.file, key.target))
            }
            _ => None,
        };
        let Some(p) = pauses else {
            out.push(make(a, b, activity, activity_where));
            return;
        };
        let mut at = a;
        let i0 = p.partition_point(|x| x.1 <= a);
        for &(x, y) in &p[i0..] {
            if x >= b {
                break;
            }
            let (x, y) = (x.max(at), y.min(b));
            if y <= x {
                continue;
            }
            if x > at {
                out.push(make(at, x, activity, activity_where.clone()));
            }
            out.push(make(x, y, Category::Gc, STW.into()));
            at = y;
        }
        if at < b {
            out.push(make(at, b, activity, activity_where));
        }
    }

    /// How a goroutine holding a request up is named: other requests by their endpoint.
    fn blocker_name(&self, key: GoroutineKey, t: Ns) -> String {
        match self.a.span_index.owner_at(key, t) {
            Some(s) => format!("other {} requests", self.a.spans[s].name),
            None => self.describe(key),
        }
    }

    /// Goroutines of the same process that were running during [a, b), with the time each
    /// ran in it, most first (who held the CPUs while a request was runnable).
    pub(crate) fn cpu_holders(&self, key: GoroutineKey, a: Ns, b: Ns) -> Vec<(GoroutineKey, u64)> {
        let idx = self
            .running
            .get_or_init(|| RunningIndex::build(&self.a.goroutines));
        let mut per: HashMap<GoroutineKey, u64> = HashMap::default();
        let mut seen: rustc_hash::FxHashSet<(u64, Ns)> = Default::default();
        for (goid, s, e) in idx.around(key.file, key.target, a, b) {
            if goid != key.goid && seen.insert((goid, s)) {
                let o = e.min(b) - s.max(a);
                if o > 0 {
                    *per.entry(GoroutineKey { goid, ..key }).or_default() += o as u64;
                }
            }
        }
        let mut v: Vec<_> = per.into_iter().collect();
        v.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        v
    }
}

/// The blocker name of a client span: "GET host/path", or `SELECT "query text"` for SQL.
pub(crate) fn call_name(s: &crate::span::Span) -> String {
    match s.kind {
        SpanKind::Sql if !s.target.is_empty() => format!("{} {:?}", s.name, s.target),
        _ => s.name.to_string(),
    }
}

#[cfg(test)]
mod tests;
