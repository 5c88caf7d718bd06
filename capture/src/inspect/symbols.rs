//! Function table and PC symbolization for Go binaries.
//!
//! gcap needs (1) the address range and file offset of each function it probes, in
//! binaries with or without `.symtab`, and (2) PC -> (function, file, line) for stack PCs,
//! goroutine creation sites (`g.gopc`) and start functions (`g.startpc`), which it stores
//! in the capture's symbol table so analysis never needs the binary.
//!
//! Functions come from `.symtab` when present (unstripped builds), otherwise from
//! `.gopclntab`, which the Go linker never removes. Symbolization always uses `.gopclntab`
//! (Go 1.18+ layout, magic 0xfffffff0 / 0xfffffff1; Go's `src/runtime/symtab.go`,
//! `src/internal/abi/symtab.go`): binary search on the functab, then the pcfile/pcln
//! pc-value tables. Inlined frames are expanded from FUNCDATA_InlTree and
//! PCDATA_InlTreeIndex when the `go:func.*` base can be found (symtab or moduledata).
//!
//! From Go 1.26 the pclntab header's textStart is 0; the text base then comes from the
//! `runtime.text` symbol or from `moduledata.text` (+0xb0 in `.go.module`).

use std::collections::HashMap;

use super::elf::ElfImage;
use super::InspectError;

const MAGIC_118: u32 = 0xffff_fff0;
const MAGIC_120: u32 = 0xffff_fff1;
const PCDATA_INL_TREE_INDEX: usize = 2;
const FUNCDATA_INL_TREE: usize = 3;
/// Offset of `moduledata.text` (same in every supported version).
const MODULEDATA_TEXT: u64 = 0xb0;

/// Where a [`FuncTable`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FuncSource {
    Symtab,
    Pclntab,
}

/// A function of the target: `[entry, end)` in link-time virtual addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Func {
    pub(crate) name: String,
    pub entry: u64,
    pub end: u64,
    /// File offset of `entry` (what a uprobe is attached at). Add the offset of any
    /// instruction inside the function to probe it.
    pub(crate) file_offset: u64,
}

/// All functions of the binary, searchable by name and by address.
#[derive(Debug, Clone)]
pub(crate) struct FuncTable {
    #[cfg_attr(not(test), allow(dead_code))] // read by tests only
    pub(crate) source: FuncSource,
    funcs: Vec<Func>,
    by_name: HashMap<String, usize>,
}

impl FuncTable {
    pub(crate) fn build(elf: &ElfImage, pcln: &Pclntab<'_>) -> FuncTable {
        let exec = |a: u64| {
            elf.segments
                .iter()
                .any(|s| s.executable && a >= s.vaddr && a < s.vaddr.saturating_add(s.filesz))
        };
        let mut funcs: Vec<Func> = Vec::new();
        let mut source = FuncSource::Pclntab;
        if !elf.symbols.is_empty() {
            source = FuncSource::Symtab;
            for (name, s) in &elf.symbols {
                if s.is_func && s.size > 0 && exec(s.addr) {
                    if let Some(off) = elf.vaddr_to_offset(s.addr) {
                        funcs.push(Func {
                            name: name.clone(),
                            entry: s.addr,
                            end: s.addr.saturating_add(s.size),
                            file_offset: off,
                        });
                    }
                }
            }
        }
        if funcs.is_empty() {
            source = FuncSource::Pclntab;
            for i in 0..pcln.nfunc() {
                let (Some((entry, end)), Some(name)) = (pcln.func_range(i), pcln.func_name(i))
                else {
                    continue;
                };
                if end <= entry {
                    continue;
                }
                if let Some(off) = elf.vaddr_to_offset(entry) {
                    funcs.push(Func {
                        name,
                        entry,
                        end,
                        file_offset: off,
                    });
                }
            }
        }
        funcs.sort_by(|a, b| a.entry.cmp(&b.entry).then_with(|| a.name.cmp(&b.name)));
        let mut by_name = HashMap::with_capacity(funcs.len());
        for (i, f) in funcs.iter().enumerate() {
            by_name.entry(f.name.clone()).or_insert(i);
        }
        // `.symtab` of go1.19 names assembly functions "runtime.gogo.abi0" where
        // `.gopclntab` says "runtime.gogo": answer to both names.
        for (i, f) in funcs.iter().enumerate() {
            if let Some(base) = f.name.strip_suffix(".abi0") {
                by_name.entry(base.to_string()).or_insert(i);
            }
        }
        FuncTable {
            source,
            funcs,
            by_name,
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Func> {
        self.by_name.get(name).map(|&i| &self.funcs[i])
    }

    /// The function whose `[entry, end)` contains `pc`.
    pub(crate) fn containing(&self, pc: u64) -> Option<&Func> {
        let i = self
            .funcs
            .partition_point(|f| f.entry <= pc)
            .checked_sub(1)?;
        let f = &self.funcs[i];
        (pc < f.end).then_some(f)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Func> {
        self.funcs.iter()
    }
}

/// Parsed `.gopclntab` header plus the bases needed to use it. Plain data; see [`Pclntab`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct PclnLayout {
    pub(crate) magic: u32,
    pub(crate) nfunc: usize,
    /// Text base that functab entry offsets are relative to.
    pub(crate) text_start: u64,
    /// Address of `go:func.*` (base of funcdata offsets), when found.
    pub(crate) gofunc: Option<u64>,
    /// Address of `runtime.firstmoduledata`, when found.
    #[cfg_attr(not(test), allow(dead_code))] // read by tests only
    pub(crate) moduledata: Option<u64>,
    funcname: usize,
    cu: usize,
    filetab: usize,
    pctab: usize,
    functab: usize,
}

impl PclnLayout {
    /// Reads the pcHeader of `.gopclntab` and resolves the text and funcdata bases.
    pub(crate) fn parse(elf: &ElfImage, minor: u32) -> Result<PclnLayout, InspectError> {
        let sec = elf
            .section(".gopclntab")
            .ok_or_else(|| InspectError::Malformed {
                what: "the binary has no .gopclntab section".into(),
            })?;
        let data = elf.section_bytes(".gopclntab").unwrap_or(&[]);
        let bad = |what: String| InspectError::Malformed {
            what: format!(".gopclntab {what}"),
        };
        if data.len() < 72 {
            return Err(bad(format!("is too short ({} bytes)", data.len())));
        }
        let magic = u32::from_le_bytes(data[0..4].try_into().unwrap_or_default());
        if magic != MAGIC_118 && magic != MAGIC_120 {
            return Err(InspectError::UnsupportedBuildInfo {
                reason: format!(
                    "its .gopclntab has magic {magic:#x}, which belongs to Go 1.17 or older; gcap supports Go 1.19 and newer"
                ),
            });
        }
        if data[6] != 1 || data[7] != 8 {
            return Err(bad(format!(
                "header says minLC={} ptrSize={}; expected 1 and 8 for amd64",
                data[6], data[7]
            )));
        }
        let word = |i: usize| {
            u64::from_le_bytes(data[8 + i * 8..16 + i * 8].try_into().unwrap_or_default())
        };
        let off = |i: usize| -> Result<usize, InspectError> {
            let v = word(i);
            usize::try_from(v)
                .ok()
                .filter(|&v| v < data.len())
                .ok_or_else(|| {
                    bad(format!(
                        "header field {i} ({v:#x}) points outside the section"
                    ))
                })
        };
        let nfunc = usize::try_from(word(0)).map_err(|_| bad("nfunc is absurd".into()))?;
        let functab = off(7)?;
        let functab_end = nfunc
            .checked_add(1)
            .and_then(|n| n.checked_mul(8))
            .and_then(|n| n.checked_add(functab));
        if functab_end.is_none_or(|end| end > data.len()) {
            return Err(bad(format!(
                "functab of {nfunc} functions does not fit the section"
            )));
        }
        let moduledata = find_moduledata(elf, sec.addr, word(3));
        let mut text_start = elf.read_ptr(sec.addr.wrapping_add(24)).unwrap_or(0);
        if text_start == 0 {
            text_start = elf
                .symbols
                .get("runtime.text")
                .map(|s| s.addr)
                .or_else(|| moduledata.and_then(|md| elf.read_ptr(md.wrapping_add(MODULEDATA_TEXT))))
                .filter(|&t| t != 0)
                .ok_or_else(|| bad("has textStart 0 (Go 1.26+) and neither runtime.text nor moduledata.text was found".into()))?;
        }
        let gofunc = ["go:func.*", "go.func.*"]
            .iter()
            .find_map(|n| elf.symbols.get(*n).map(|s| s.addr))
            .or_else(|| gofunc_from_moduledata(elf, moduledata?, minor));
        Ok(PclnLayout {
            magic,
            nfunc,
            text_start,
            gofunc,
            moduledata,
            funcname: off(3)?,
            cu: off(4)?,
            filetab: off(5)?,
            pctab: off(6)?,
            functab,
        })
    }
}

/// `moduledata.gofunc` (the `go:func.*` base of funcdata offsets): the field sits at
/// 0x130 in go1.19, 0x140 in 1.20-1.26 (covctrs added) and 0x158 from 1.27
/// (typedesclen, itaboffset, itabsize added); `runtime/symtab.go`.
pub(crate) fn gofunc_from_moduledata(elf: &ElfImage, moduledata: u64, minor: u32) -> Option<u64> {
    let field = match minor {
        0..=19 => 0x130,
        20..=26 => 0x140,
        _ => 0x158,
    };
    elf.read_ptr(moduledata.wrapping_add(field))
        .filter(|&a| elf.read(a, 1).is_some())
}

/// Finds `runtime.firstmoduledata`: `.go.module` (1.26+), the symbol, or a scan of
/// `.noptrdata`/`.data` for the word pointing at the pcHeader whose next word is
/// `funcnametab.ptr` (pcHeader + funcnameOffset).
fn find_moduledata(elf: &ElfImage, pcln: u64, funcname_off: u64) -> Option<u64> {
    let check = |md: u64| {
        elf.read_ptr(md) == Some(pcln)
            && elf.read_ptr(md.wrapping_add(8)) == Some(pcln.wrapping_add(funcname_off))
    };
    if let Some(s) = elf.section(".go.module") {
        if check(s.addr) {
            return Some(s.addr);
        }
    }
    if let Some(s) = elf.symbols.get("runtime.firstmoduledata") {
        if check(s.addr) {
            return Some(s.addr);
        }
    }
    for name in [".noptrdata", ".data", ".data.rel.ro"] {
        let Some(s) = elf.section(name) else { continue };
        if elf.pie {
            let mut cands: Vec<u64> = elf
                .relative_relocs
                .iter()
                .filter(|(&place, &v)| {
                    v == pcln && place >= s.addr && place < s.addr.saturating_add(s.size)
                })
                .map(|(&p, _)| p)
                .collect();
            cands.sort_unstable();
            if let Some(md) = cands.into_iter().find(|&c| check(c)) {
                return Some(md);
            }
        }
        let bytes = elf.section_bytes(name)?;
        let needle = pcln.to_le_bytes();
        for (i, w) in bytes.chunks_exact(8).enumerate() {
            if w == needle && check(s.addr.wrapping_add(i as u64 * 8)) {
                return Some(s.addr.wrapping_add(i as u64 * 8));
            }
        }
    }
    None
}

/// One frame of a symbolized PC. For an inlined call, several frames share one PC:
/// the innermost (inlined) first, the physical function last.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Frame {
    pub function: String,
    pub file: String,
    pub line: u32,
    /// Entry of the physical function containing the PC.
    pub entry: u64,
    pub inlined: bool,
    /// The function's `funcID` (see `Pclntab::func_id`).
    pub(crate) func_id: u8,
}

impl Frame {
    #[cfg(test)]
    /// `pkg.Func (file.go:LINE)`, the form the capture contract uses for locations.
    pub(crate) fn location(&self) -> String {
        let base = self.file.rsplit('/').next().unwrap_or(&self.file);
        format!("{} ({}:{})", self.function, base, self.line)
    }
}

/// A view of `.gopclntab` inside a mapped binary.
#[derive(Clone, Copy)]
pub(crate) struct Pclntab<'a> {
    elf: &'a ElfImage,
    data: &'a [u8],
    l: PclnLayout,
}

impl<'a> Pclntab<'a> {
    pub(crate) fn new(elf: &'a ElfImage, l: PclnLayout) -> Pclntab<'a> {
        Pclntab {
            elf,
            data: elf.section_bytes(".gopclntab").unwrap_or(&[]),
            l,
        }
    }

    #[cfg(test)]
    pub(crate) fn layout(&self) -> &PclnLayout {
        &self.l
    }

    pub(crate) fn nfunc(&self) -> usize {
        self.l.nfunc
    }

    fn u32_at(&self, off: usize) -> Option<u32> {
        Some(u32::from_le_bytes(
            self.data.get(off..off + 4)?.try_into().ok()?,
        ))
    }

    fn cstr(&self, off: usize) -> Option<&'a str> {
        let b = self.data.get(off..)?;
        let end = b.iter().position(|&c| c == 0)?;
        std::str::from_utf8(&b[..end]).ok()
    }

    /// `[entry, end)` of function `i` of the functab.
    pub(crate) fn func_range(&self, i: usize) -> Option<(u64, u64)> {
        if i >= self.l.nfunc {
            return None;
        }
        let e = self.u32_at(self.l.functab + i * 8)?;
        let n = self.u32_at(self.l.functab + (i + 1) * 8)?;
        Some((
            self.l.text_start.checked_add(u64::from(e))?,
            self.l.text_start.checked_add(u64::from(n))?,
        ))
    }

    /// Byte offset of function `i`'s `_func` struct in the section.
    fn func_struct(&self, i: usize) -> Option<usize> {
        let off = self.u32_at(self.l.functab + i * 8 + 4)? as usize;
        let f = self.l.functab.checked_add(off)?;
        (f + 44 <= self.data.len()).then_some(f)
    }

    pub(crate) fn func_name(&self, i: usize) -> Option<String> {
        let f = self.func_struct(i)?;
        let name_off = self.u32_at(f + 4)? as usize;
        self.cstr(self.l.funcname + name_off).map(str::to_string)
    }

    /// Index of the function containing `pc` (binary search on the functab).
    pub(crate) fn find(&self, pc: u64) -> Option<usize> {
        let rel = pc.checked_sub(self.l.text_start)?;
        let rel = u32::try_from(rel).ok()?;
        let (mut lo, mut hi) = (0usize, self.l.nfunc);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.u32_at(self.l.functab + mid * 8)? <= rel {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let i = lo.checked_sub(1)?;
        let (_, end) = self.func_range(i)?;
        (pc < end).then_some(i)
    }

    fn func_struct_size(&self) -> usize {
        if self.l.magic == MAGIC_118 {
            40
        } else {
            44
        }
    }

    /// Evaluates the pc-value table at `table_off` (relative to pctab) for `target`.
    fn pcvalue(&self, table_off: u32, entry: u64, target: u64) -> Option<i32> {
        self.pcvalue_runs(table_off, entry)
            .find(|&(_, end)| target < end)
            .map(|(v, _)| v)
    }

    /// The runs of the pc-value table at `table_off` (relative to pctab) of a function
    /// starting at `entry`: `(value, end)`, each value holding from the previous run's end
    /// (`entry` for the first) up to `end`.
    fn pcvalue_runs(&self, table_off: u32, entry: u64) -> impl Iterator<Item = (i32, u64)> + 'a {
        let data = self.data;
        let mut p = (table_off != 0)
            .then(|| self.l.pctab.checked_add(table_off as usize))
            .flatten();
        let mut val: i32 = -1;
        let mut pc = entry;
        let mut first = true;
        std::iter::from_fn(move || {
            let at = p.as_mut()?;
            let uvdelta = read_uvarint(data, at)?;
            if uvdelta == 0 && !first {
                p = None;
                return None;
            }
            first = false;
            let delta = if uvdelta & 1 != 0 {
                !((uvdelta >> 1) as u32) as i32
            } else {
                (uvdelta >> 1) as u32 as i32
            };
            val = val.wrapping_add(delta);
            let pcdelta = read_uvarint(data, at)?; // minLC is 1 on amd64
            pc = pc.checked_add(pcdelta)?;
            Some((val, pc))
        })
    }

    fn file_line(&self, f: usize, entry: u64, pc: u64) -> (String, u32) {
        let file = (|| {
            let fileno = self.pcvalue(self.u32_at(f + 20)?, entry, pc)?;
            let cu_off = self.u32_at(f + 32)?;
            let idx = cu_off.checked_add(u32::try_from(fileno).ok()?)? as usize;
            let foff = self.u32_at(self.l.cu + idx * 4)?;
            if foff == u32::MAX {
                return None;
            }
            self.cstr(self.l.filetab + foff as usize)
                .map(str::to_string)
        })();
        let line = self
            .pcvalue(self.u32_at(f + 24).unwrap_or(0), entry, pc)
            .and_then(|l| u32::try_from(l).ok())
            .unwrap_or(0);
        (file.unwrap_or_else(|| "?".into()), line)
    }

    /// Offset (relative to pctab) of pc-value table `table` of function struct `f`.
    fn pcdata_table(&self, f: usize, table: usize) -> Option<u32> {
        let npcdata = self.u32_at(f + 28)? as usize;
        if table >= npcdata {
            return None;
        }
        self.u32_at(f + self.func_struct_size() + table * 4)
    }

    fn pcdata(&self, f: usize, table: usize, entry: u64, pc: u64) -> Option<i32> {
        self.pcvalue(self.pcdata_table(f, table)?, entry, pc)
    }

    /// `_func.funcID` of function `i`: what Go's traceback decides by (wrappers are hidden).
    /// Its numbering changes between Go versions.
    pub(crate) fn func_id(&self, i: usize) -> Option<u8> {
        let f = self.func_struct(i)?;
        self.data.get(f + self.func_struct_size() - 4).copied()
    }

    /// The first PC (in address order) of function `i` that is inside an inlined call.
    pub(crate) fn first_inlined_pc(&self, i: usize) -> Option<u64> {
        let (entry, _) = self.func_range(i)?;
        let f = self.func_struct(i)?;
        let table = self.pcdata_table(f, PCDATA_INL_TREE_INDEX)?;
        let mut start = entry;
        for (ix, end) in self.pcvalue_runs(table, entry) {
            if ix >= 0 {
                return Some(start);
            }
            start = end;
        }
        None
    }

    /// Address of funcdata `idx` of function `f`, when the gofunc base is known.
    fn funcdata(&self, f: usize, idx: usize) -> Option<u64> {
        let npcdata = self.u32_at(f + 28)? as usize;
        let nfuncdata = *self.data.get(f + self.func_struct_size() - 1)? as usize;
        if idx >= nfuncdata {
            return None;
        }
        let off = self.u32_at(f + self.func_struct_size() + npcdata * 4 + idx * 4)?;
        if off == u32::MAX {
            return None;
        }
        self.l.gofunc?.checked_add(u64::from(off))
    }

    /// The function's SP delta at `pc` (its pcsp table): how many bytes it has pushed below
    /// its return address there, so the return address is at `SP + delta`. Go's own
    /// traceback unwinds with it (at a caller's return address itself, not `ret - 1`);
    /// frame pointers alone miss a frame at `g.sched`, where `mcall` saves its caller's BP
    /// on 1.19 but the caller's caller's BP from 1.21.
    pub(crate) fn sp_delta(&self, pc: u64) -> Option<u32> {
        let i = self.find(pc)?;
        let (entry, _) = self.func_range(i)?;
        let f = self.func_struct(i)?;
        let delta = self.pcvalue(self.u32_at(f + 16)?, entry, pc)?;
        u32::try_from(delta).ok()
    }

    /// Frames for `pc`, innermost first. Pass exactly the PC of the instruction you mean:
    /// for return addresses from a stack, pass `ret - 1` to get the call's line.
    pub(crate) fn frames(&self, pc: u64) -> Option<Vec<Frame>> {
        let i = self.find(pc)?;
        let (entry, _) = self.func_range(i)?;
        let f = self.func_struct(i)?;
        let name = self.func_name(i).unwrap_or_else(|| "?".into());
        let mut frames = Vec::new();
        let mut cur = pc;
        if let Some(tree) = self.funcdata(f, FUNCDATA_INL_TREE) {
            // 1.18/1.19: {parent i16, funcID u8, _, file i32, line i32, func_ i32, parentPc i32}
            // 1.20+:     {funcID u8, _ [3]u8, nameOff i32, parentPc i32, startLine i32}
            let (size, id_at, name_at, parent_at) = if self.l.magic == MAGIC_118 {
                (20u64, 2usize, 12u64, 16u64)
            } else {
                (16, 0, 4, 8)
            };
            let mut guard = 0;
            while let Some(ix) = self.pcdata(f, PCDATA_INL_TREE_INDEX, entry, cur) {
                guard += 1;
                if ix < 0 || guard > 64 {
                    break;
                }
                let Some(call) = tree.checked_add(ix as u64 * size) else {
                    break;
                };
                let Some(raw) = self.elf.read(call, size as usize) else {
                    break;
                };
                let rd = |o: u64| {
                    i32::from_le_bytes(
                        raw[o as usize..o as usize + 4]
                            .try_into()
                            .unwrap_or_default(),
                    )
                };
                let callee = u32::try_from(rd(name_at))
                    .ok()
                    .and_then(|n| self.cstr(self.l.funcname + n as usize))
                    .unwrap_or("?");
                let (file, line) = self.file_line(f, entry, cur);
                frames.push(Frame {
                    function: callee.to_string(),
                    file,
                    line,
                    entry,
                    inlined: true,
                    func_id: raw[id_at],
                });
                let Ok(parent_pc) = u64::try_from(rd(parent_at)) else {
                    break;
                };
                let Some(next) = entry.checked_add(parent_pc) else {
                    break;
                };
                cur = next;
            }
        }
        let (file, line) = self.file_line(f, entry, cur);
        frames.push(Frame {
            function: name,
            file,
            line,
            entry,
            inlined: false,
            func_id: self.func_id(i).unwrap_or(0),
        });
        Some(frames)
    }
}

fn read_uvarint(data: &[u8], p: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    let mut shift = 0;
    loop {
        let b = *data.get(*p)?;
        *p += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

/// Caching PC symbolizer over a [`Pclntab`]. Capture code symbolizes the same PCs
/// (hot stack frames, creation sites) over and over; each distinct PC is decoded once.
pub(crate) struct Symbolizer<'a> {
    tab: Pclntab<'a>,
    cache: HashMap<u64, Option<Vec<Frame>>>,
}

impl<'a> Symbolizer<'a> {
    pub(crate) fn new(tab: Pclntab<'a>) -> Symbolizer<'a> {
        Symbolizer {
            tab,
            cache: HashMap::new(),
        }
    }

    /// Frames for `pc`, innermost first; None when `pc` is not in Go text.
    pub(crate) fn symbolize(&mut self, pc: u64) -> Option<&[Frame]> {
        let tab = self.tab;
        self.cache
            .entry(pc)
            .or_insert_with(|| tab.frames(pc))
            .as_deref()
    }
}
