//! Symbolized names (creation sites, start functions, span strings) shared by everything that
//! has them, and the symbolization of every goroutine's origin.

use std::sync::Arc;

use gcap_format::StackId;
use rustc_hash::FxHashMap;
use serde::Serialize;

use super::Goroutine;
use crate::capture_set::CaptureSet;

/// A symbolized name shared by every goroutine that has it: one allocation per distinct
/// name instead of one per goroutine, and "unknown" without any. Reads as a `&str`.
#[derive(Clone, Default)]
pub(crate) struct Name(Option<Arc<Box<str>>>);

impl Name {
    /// "unknown".
    pub(crate) const UNKNOWN: Name = Name(None);

    pub(crate) fn new(s: &str) -> Name {
        if s == "unknown" {
            Name(None)
        } else {
            // A thin pointer (8 bytes, not a 16-byte `Arc<str>`): two per goroutine and four
            // per span, read once per row.
            Name(Some(Arc::new(s.into())))
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        self.0.as_deref().map_or("unknown", |s| s)
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for Name {
    fn eq(&self, o: &Name) -> bool {
        self.as_str() == o.as_str()
    }
}

impl Eq for Name {}

impl PartialEq<str> for Name {
    fn eq(&self, o: &str) -> bool {
        self.as_str() == o
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, o: &&str) -> bool {
        self.as_str() == *o
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, o: &Name) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Name {
    fn cmp(&self, o: &Name) -> std::cmp::Ordering {
        self.as_str().cmp(o.as_str())
    }
}

impl std::hash::Hash for Name {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Symbolizes every goroutine's creation site and start function, each distinct stack once;
/// goroutines with the same one share it ([`Name`]).
pub(crate) fn symbolize(set: &CaptureSet, goroutines: &mut [Goroutine]) {
    let mut names: FxHashMap<(u32, u32, StackId, bool), Name> = FxHashMap::default();
    // Goroutines created during the capture, and those created before it whose origin gcap
    // read when it first saw them run (go_info: a start stack but no creation time).
    let known = |g: &Goroutine| g.created().is_some() || g.start_stack != 0;
    // One pass, on one thread: the work per goroutine is a hash lookup and a reference-count
    // increment, and two threads incrementing the same few counts would fight over them.
    type Origin = (u32, u32, StackId, StackId);
    let mut last: Option<(Origin, (Name, Name))> = None;
    for g in goroutines.iter_mut().filter(|g| known(g)) {
        let (file, t) = (g.key.file, g.key.target);
        let k = (file, t, g.creation_stack, g.start_stack);
        if let Some((lk, (site, func))) = &last {
            if *lk == k {
                g.creation_site = site.clone();
                g.start_function = func.clone();
                continue;
            }
        }
        let f = &set.files[file as usize];
        let site = names
            .entry((file, t, g.creation_stack, true))
            .or_insert_with(|| Name::new(&f.site(t, g.creation_stack)))
            .clone();
        let func = names
            .entry((file, t, g.start_stack, false))
            .or_insert_with(|| Name::new(&f.function(t, g.start_stack)))
            .clone();
        g.creation_site = site.clone();
        g.start_function = func.clone();
        last = Some((k, (site, func)));
    }
}
