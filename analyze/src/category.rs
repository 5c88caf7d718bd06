//! The root-cause categories: what held a request up. Everything a category is lives here:
//! its name in the contract, its colour in charts and legends, the Go wait reasons it
//! stands for, and how the reports word it. A new category is a change to this file only.

use serde::{Serialize, Serializer};

/// The contract's root-cause categories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    OnCpu,
    Runnable,
    Mutex,
    Chan,
    Network,
    Downstream,
    Syscall,
    Sleep,
    Gc,
    OffCpu,
    Other,
}

/// What a blocked goroutine's stack says about its wait (see [`Category::of_wait`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StackFacts {
    /// The runtime's allocator or collector is on it (a semaphore in mallocgc is GC).
    pub gc: bool,
    /// It waits in `sync.(*WaitGroup).Wait`.
    pub wait_group: bool,
}

impl StackFacts {
    /// The facts of a stack, from its functions (innermost first).
    pub(crate) fn of<'f>(functions: impl IntoIterator<Item = &'f str>) -> StackFacts {
        let mut f = StackFacts::default();
        for n in functions {
            f.gc |= n.starts_with("runtime.mallocgc")
                || n.starts_with("runtime.gcAssist")
                || n.starts_with("runtime.gcStart")
                || n == "runtime.GC"
                || n.starts_with("runtime.deductAssistCredit");
            f.wait_group |= n == "sync.(*WaitGroup).Wait";
        }
        f
    }
}

/// Who ended a wait, as far as its category is concerned (see [`Category::of_ended_wait`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waker {
    /// The runtime, with no goroutine to blame: a timer, the network poller, the GC.
    Runtime,
    /// A goroutine a timer started (`time.AfterFunc`: context deadlines, timeouts).
    Timer,
    /// Any other goroutine.
    Goroutine,
}

impl Waker {
    /// A goroutine created at `creation_site` ("pkg.Func (file.go:LINE)").
    pub(crate) fn of_goroutine(creation_site: &str) -> Waker {
        if creation_site.starts_with("time.goFunc") {
            Waker::Timer
        } else {
            Waker::Goroutine
        }
    }
}

/// The words of one root cause's sentence, already written (see [`Category::sentence`]).
pub(crate) struct CauseWords<'a> {
    /// Its share: "62% of the excess".
    pub share: &'a str,
    /// The endpoint: "GET /api/orders".
    pub endpoint: &'a str,
    /// " in main.f (main.go:3)", or nothing when the place is unknown.
    pub at: &'a str,
    /// Who held the requests up, when known.
    pub blocker: Option<&'a str>,
    /// What the blocker did: ", which sleeps at ... (80% of that time)", or nothing.
    pub doing: &'a str,
    /// The time it took: "3.00ms per slow request vs 1.00ms in requests that met the SLO".
    pub per: &'a str,
    /// Whether the capture holds CPU samples: advice never asks for what it already has.
    pub cpu_samples: bool,
}

impl Category {
    /// Every category, in the order of the legends.
    pub const ALL: [Category; 11] = [
        Category::OnCpu,
        Category::Runnable,
        Category::Mutex,
        Category::Chan,
        Category::Network,
        Category::Downstream,
        Category::Syscall,
        Category::Sleep,
        Category::Gc,
        Category::OffCpu,
        Category::Other,
    ];

    /// The name in the contract's JSON and in every report and legend.
    pub const fn name(self) -> &'static str {
        match self {
            Category::OnCpu => "on_cpu",
            Category::Runnable => "runnable",
            Category::Mutex => "mutex",
            Category::Chan => "chan",
            Category::Network => "network",
            Category::Downstream => "downstream",
            Category::Syscall => "syscall",
            Category::Sleep => "sleep",
            Category::Gc => "gc",
            Category::OffCpu => "off_cpu",
            Category::Other => "other",
        }
    }

    /// Its colour in charts and legends.
    pub(crate) const fn color(self) -> &'static str {
        match self {
            Category::OnCpu => "#4e79a7",
            Category::Runnable => "#f28e2b",
            Category::Mutex => "#e15759",
            Category::Chan => "#76b7b2",
            Category::Network => "#59a14f",
            Category::Downstream => "#edc948",
            Category::Syscall => "#b07aa1",
            Category::Sleep => "#ff9da7",
            Category::Gc => "#9c755f",
            Category::OffCpu => "#bab0ac",
            Category::Other => "#7f7f7f",
        }
    }

    /// The category of a blocked goroutine's wait: its reason (Go's own string), corrected
    /// by what its stack shows. A semaphore taken in the allocator or the collector is
    /// `gc`; `sync.WaitGroup.Wait` parks as `semacquire` before Go 1.24, and waiting for
    /// goroutines to finish is not a lock: `other`, whatever the version says.
    pub(crate) fn of_wait(reason: &str, stack: StackFacts) -> Category {
        let cat = Category::of_wait_reason(reason);
        if stack.wait_group && cat == Category::Mutex {
            Category::Other
        } else if stack.gc && cat != Category::Chan && cat != Category::Network {
            Category::Gc
        } else {
            cat
        }
    }

    /// The category of a wait given who ended it. A channel operation or `select` that a
    /// timer completed (woken by the runtime, with no goroutine to blame, or by the goroutine
    /// `time.AfterFunc` starts, as a `context` deadline does) waited for time to pass:
    /// `sleep`, not `chan`.
    pub(crate) fn of_ended_wait(self, waker: Waker) -> Category {
        match (self, waker) {
            (Category::Chan, Waker::Runtime | Waker::Timer) => Category::Sleep,
            (c, _) => c,
        }
    }

    /// The category of a wait reason (Go's own strings), before looking at the stack.
    pub(crate) fn of_wait_reason(r: &str) -> Category {
        if r.contains("GC") || r.contains("garbage collection") || r == "stopping the world" {
            Category::Gc
        } else if r.starts_with("sync.Mutex") || r.starts_with("sync.RWMutex") || r == "semacquire"
        {
            Category::Mutex
        } else if r.starts_with("chan ") || r.starts_with("select") {
            Category::Chan
        } else if r == "IO wait" {
            Category::Network
        } else if r == "sleep" || r.starts_with("timer") {
            Category::Sleep
        } else {
            Category::Other
        }
    }

    /// What a goroutine spending its time in this category does, `at` a place (" at
    /// main.f (main.go:3)", or nothing): "sleeps at main.f (main.go:3)".
    pub(crate) fn doing(self, at: &str) -> String {
        match self {
            Category::Sleep => format!("sleeps{at}"),
            Category::OnCpu => format!("is running on CPU{at}"),
            Category::Runnable => "waits for a CPU".to_string(),
            Category::Mutex => format!("waits on a lock{at}"),
            Category::Chan => format!("waits on a channel{at}"),
            Category::Network => format!("waits on the network{at}"),
            Category::Downstream => format!("waits on a downstream call{at}"),
            Category::Syscall => format!("is in a system call{at}"),
            Category::Gc => format!("is held up by the garbage collector{at}"),
            Category::OffCpu => "is descheduled by the kernel".to_string(),
            Category::Other => format!("waits{at}"),
        }
    }

    /// A root cause of this category in one sentence a person can act on: what happens,
    /// what it costs, and what to do about it.
    pub(crate) fn sentence(self, w: &CauseWords) -> String {
        let mut s = format!("{}: {}; {}.", w.share, self.situation(w), w.per);
        if let Some(advice) = self.advice(w.cpu_samples, !w.at.is_empty()) {
            s.push(' ');
            s.push_str(advice);
        }
        s
    }

    /// What happens to the requests: "GET /x handlers wait on a lock in main.f, held by ...".
    fn situation(self, w: &CauseWords) -> String {
        let CauseWords {
            endpoint,
            at,
            blocker,
            doing,
            ..
        } = *w;
        let by = blocker.unwrap_or("another goroutine");
        match self {
            Category::Mutex => {
                format!("{endpoint} handlers wait on a lock{at}, held by {by}{doing}")
            }
            Category::Chan => format!("{endpoint} handlers wait on a channel{at} for {by}{doing}"),
            Category::Downstream => format!("{endpoint} waits for the call {by}{at}{doing}"),
            Category::Gc => format!(
                "{endpoint} is held up by garbage collection (assists, waits and stop-the-world pauses){at}"
            ),
            Category::Runnable => format!(
                "{endpoint} handlers were runnable but waited for a CPU{}",
                blocker.map(|b| format!(" ({b})")).unwrap_or_default()
            ),
            Category::OnCpu => format!(
                "{endpoint} handlers run longer on CPU{at}{}",
                blocker.map(|b| format!(" (in {b})")).unwrap_or_default()
            ),
            Category::OffCpu => format!(
                "the OS threads running {endpoint} handlers were descheduled by the kernel"
            ),
            Category::Network => {
                format!("{endpoint} handlers wait on the network{at} outside any client call")
            }
            Category::Sleep => format!("{endpoint} handlers sleep{at} (time.Sleep or a timer)"),
            Category::Syscall => format!("{endpoint} handlers are in system calls{at}"),
            Category::Other => format!(
                "{endpoint} handlers wait{at}{}{doing}",
                blocker.map(|b| format!(" for {b}")).unwrap_or_default()
            ),
        }
    }

    /// What to do about a root cause of this category, when there is a general answer;
    /// `cpu_samples`: the capture holds CPU samples, `placed`: the cause has a code location.
    /// Only what the capture lacks is asked for.
    const fn advice(self, cpu_samples: bool, placed: bool) -> Option<&'static str> {
        match self {
            Category::Mutex => Some("Do not hold the lock across slow work."),
            Category::Chan => Some("Add capacity where the work is done, or bound the queue."),
            Category::Downstream => {
                Some("Look at the called service, add a timeout or cache the result.")
            }
            Category::Gc => Some("Allocate less there, or raise GOGC/GOMEMLIMIT."),
            Category::Runnable => Some(
                "The process is CPU-starved: check GOMAXPROCS, CPU limits and busy goroutines.",
            ),
            Category::OnCpu => match (cpu_samples, placed) {
                (false, _) => Some("Profile the handler (capture with CPU samples)."),
                (true, true) => Some("Make that code cheaper, or run it less often."),
                (true, false) => Some(
                    "The capture's CPU samples name no function there: capture longer for more samples.",
                ),
            },
            Category::OffCpu => {
                Some("Look for CPU limits (cgroup throttling) or noisy neighbours.")
            }
            Category::Network => Some("Check the peer and the connection."),
            Category::Syscall => Some("Check file and disk I/O there."),
            Category::Sleep | Category::Other => None,
        }
    }
}

impl Serialize for Category {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On-CPU advice asks for CPU samples only when the capture has none.
    #[test]
    fn advice_asks_only_for_what_the_capture_lacks() {
        let words = |at, cpu_samples| CauseWords {
            share: "90% of the excess",
            endpoint: "GET /hash",
            at,
            blocker: None,
            doing: "",
            per: "9.0ms per slow request vs 1.0ms in requests that met the SLO",
            cpu_samples,
        };
        let ask = "capture with CPU samples";
        let without = Category::OnCpu.sentence(&words("", false));
        assert!(
            without.ends_with("Profile the handler (capture with CPU samples)."),
            "{without}"
        );
        let with = Category::OnCpu.sentence(&words(" in main.hash (main.go:12)", true));
        assert!(!with.contains(ask), "{with}");
        assert!(
            with.ends_with("Make that code cheaper, or run it less often."),
            "{with}"
        );
        let unplaced = Category::OnCpu.sentence(&words("", true));
        assert!(!unplaced.contains(ask), "{unplaced}");
        assert!(
            unplaced.contains("capture longer for more samples"),
            "{unplaced}"
        );
        // Other advice does not depend on it.
        assert_eq!(
            Category::Mutex.sentence(&words("", true)),
            Category::Mutex.sentence(&words("", false))
        );
    }

    #[test]
    fn wait_reasons_map_to_categories() {
        for (r, c) in [
            ("sync.Mutex.Lock", Category::Mutex),
            ("sync.RWMutex.RLock", Category::Mutex),
            ("semacquire", Category::Mutex),
            ("chan receive", Category::Chan),
            ("chan send (nil chan)", Category::Chan),
            ("select", Category::Chan),
            ("IO wait", Category::Network),
            ("sleep", Category::Sleep),
            ("GC assist wait", Category::Gc),
            ("GC assist marking", Category::Gc),
            ("garbage collection scan", Category::Gc),
            ("sync.WaitGroup.Wait", Category::Other),
            ("sync.Cond.Wait", Category::Other),
        ] {
            assert_eq!(Category::of_wait_reason(r), c, "{r}");
        }
    }

    #[test]
    fn stacks_and_wakers_correct_the_reason() {
        let wg = StackFacts::of([
            "runtime.gopark",
            "sync.runtime_Semacquire",
            "sync.(*WaitGroup).Wait",
            "main.handler",
        ]);
        // Go 1.21 parks a WaitGroup waiter as `semacquire`: not a lock.
        assert_eq!(Category::of_wait("semacquire", wg), Category::Other);
        assert_eq!(
            Category::of_wait("sync.WaitGroup.Wait", wg),
            Category::Other
        );
        let lock = StackFacts::of(["sync.runtime_SemacquireMutex", "sync.(*Mutex).Lock"]);
        assert_eq!(Category::of_wait("semacquire", lock), Category::Mutex);
        let alloc = StackFacts::of(["runtime.mallocgc", "main.churn"]);
        assert_eq!(Category::of_wait("semacquire", alloc), Category::Gc);
        assert_eq!(Category::of_wait("chan receive", alloc), Category::Chan);
        // A timer ends a select: sleep; a goroutine: still a channel.
        assert_eq!(
            Category::Chan.of_ended_wait(Waker::Runtime),
            Category::Sleep
        );
        assert_eq!(
            Category::Chan.of_ended_wait(Waker::of_goroutine("time.goFunc (sleep.go:177)")),
            Category::Sleep
        );
        assert_eq!(
            Category::Chan.of_ended_wait(Waker::of_goroutine("main.main (main.go:9)")),
            Category::Chan
        );
        assert_eq!(
            Category::Mutex.of_ended_wait(Waker::Runtime),
            Category::Mutex
        );
    }

    /// The contract's names are snake_case, serialised as the name, and distinct.
    #[test]
    fn names_are_the_contract() {
        let mut seen = std::collections::HashSet::new();
        for c in Category::ALL {
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.name())
            );
            assert!(c
                .name()
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch == '_'));
            assert!(seen.insert(c.name()), "{c} twice");
        }
    }
}
