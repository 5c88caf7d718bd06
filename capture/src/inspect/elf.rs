//! ELF layer of target inspection: maps a linux/amd64 executable, checks that it is a Go
//! program, and keeps the few things the rest of `inspect` needs in owned form (sections,
//! PT_LOAD segments, symbols, R_X86_64_RELATIVE relocations, build ids).
//!
//! Why a separate layer: gcap attaches uprobes by *file offset* and reads static data
//! (pclntab, moduledata, `runtime.waitReasonStrings`) by *virtual address*. Both mappings,
//! plus the relocation-aware pointer read needed for PIE binaries (whose data pointers are
//! zero in the file and filled by the dynamic loader), live here so every other module
//! can use plain virtual addresses.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use object::elf;
use object::read::elf::{ElfFile64, ProgramHeader as _, SectionHeader as _};
use object::{Object, ObjectSection, ObjectSymbol, RelocationFlags, SymbolKind};

use super::InspectError;

/// One ELF section header, copied out of the file.
#[derive(Debug, Clone)]
pub(crate) struct SectionInfo {
    pub(crate) name: String,
    pub(crate) addr: u64,
    pub(crate) size: u64,
    /// File offset of the section's bytes (meaningless for SHT_NOBITS).
    pub(crate) offset: u64,
    pub(crate) nobits: bool,
}

/// A PT_LOAD program header: maps `vaddr..vaddr+filesz` to `offset..offset+filesz`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    pub(crate) vaddr: u64,
    pub(crate) offset: u64,
    pub(crate) filesz: u64,
    /// Size in memory: `filesz` plus the zero-filled tail (`.bss`, `.noptrbss`).
    pub(crate) memsz: u64,
    pub(crate) executable: bool,
}

/// A symbol from `.symtab` (Go keeps it unless linked with `-s`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sym {
    pub(crate) addr: u64,
    pub(crate) size: u64,
    pub(crate) is_func: bool,
}

/// A mapped, validated linux/amd64 ELF executable.
pub(crate) struct ElfImage {
    path: PathBuf,
    map: Mmap,
    pub(crate) pie: bool,
    pub(crate) sections: Vec<SectionInfo>,
    pub(crate) segments: Vec<Segment>,
    /// All named `.symtab` symbols by name (empty when stripped with `-s`).
    pub(crate) symbols: HashMap<String, Sym>,
    /// R_X86_64_RELATIVE relocations: place address -> addend (PIE only).
    pub(crate) relative_relocs: HashMap<u64, u64>,
    pub(crate) gnu_build_id: Option<String>,
    pub(crate) go_build_id: Option<String>,
}

impl std::fmt::Debug for ElfImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElfImage")
            .field("path", &self.path)
            .field("pie", &self.pie)
            .field("sections", &self.sections.len())
            .field("symbols", &self.symbols.len())
            .finish()
    }
}

impl ElfImage {
    /// Maps `path` and checks it is a 64-bit little-endian x86-64 ELF executable.
    /// Does not check that it is a Go program (see [`ElfImage::is_go`]).
    pub(crate) fn open(path: &Path) -> Result<ElfImage, InspectError> {
        let io = |source| InspectError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < 64 {
            return Err(InspectError::NotElf {
                path: path.to_path_buf(),
                reason: format!("the file is only {len} bytes long"),
            });
        }
        // SAFETY: the mapping is private and read-only; we never hand out references that
        // outlive `self`. A concurrent truncation of the file by another process could
        // raise SIGBUS, which is the usual, accepted risk of mapping executables (the Go
        // toolchain writes a new file and renames it, it does not rewrite in place).
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        Self::from_map(path, map)
    }

    fn from_map(path: &Path, map: Mmap) -> Result<ElfImage, InspectError> {
        let data: &[u8] = &map;
        if data.get(..4) != Some(&elf::ELFMAG[..]) {
            return Err(InspectError::NotElf {
                path: path.to_path_buf(),
                reason: "it does not start with the ELF magic \\x7fELF".into(),
            });
        }
        let obj = ElfFile64::<object::Endianness>::parse(data).map_err(|e| {
            if data.get(4) == Some(&elf::ELFCLASS32.0) {
                InspectError::UnsupportedArch {
                    path: path.to_path_buf(),
                    arch: "32-bit ELF".into(),
                }
            } else {
                InspectError::NotElf {
                    path: path.to_path_buf(),
                    reason: format!("its ELF headers are malformed ({e})"),
                }
            }
        })?;
        if obj.architecture() != object::Architecture::X86_64 || !obj.is_little_endian() {
            return Err(InspectError::UnsupportedArch {
                path: path.to_path_buf(),
                arch: format!("{:?}", obj.architecture()),
            });
        }
        let endian = obj.endian();
        let e_type = obj.elf_header().e_type.get(endian);
        let pie = e_type == elf::ET_DYN;
        if e_type != elf::ET_EXEC && e_type != elf::ET_DYN {
            return Err(InspectError::NotElf {
                path: path.to_path_buf(),
                reason: format!("it is an ELF file of type {e_type}, not an executable"),
            });
        }

        let mut sections = Vec::new();
        for s in obj.sections() {
            let name = s.name().unwrap_or("").to_string();
            let (offset, _) = s.file_range().unwrap_or((0, 0));
            sections.push(SectionInfo {
                name,
                addr: s.address(),
                size: s.size(),
                offset,
                nobits: s.kind() == object::SectionKind::UninitializedData,
            });
        }

        let segments = obj
            .elf_program_headers()
            .iter()
            .filter(|ph| ph.p_type(endian) == elf::PT_LOAD)
            .map(|ph| Segment {
                vaddr: ph.p_vaddr(endian),
                offset: ph.p_offset(endian),
                filesz: ph.p_filesz(endian),
                memsz: ph.p_memsz(endian),
                executable: ph.p_flags(endian).0 & elf::PF_X.0 != 0,
            })
            .collect();

        let mut symbols = HashMap::new();
        for s in obj.symbols() {
            let Ok(name) = s.name() else { continue };
            if name.is_empty() || s.is_undefined() {
                continue;
            }
            symbols.entry(name.to_string()).or_insert(Sym {
                addr: s.address(),
                size: s.size(),
                is_func: s.kind() == SymbolKind::Text,
            });
        }

        let mut relative_relocs = HashMap::new();
        if pie {
            if let Some(relocs) = obj.dynamic_relocations() {
                for (place, r) in relocs {
                    if let RelocationFlags::Elf { r_type } = r.flags() {
                        if r_type == elf::R_X86_64_RELATIVE {
                            relative_relocs.insert(place, r.addend() as u64);
                        }
                    }
                }
            }
        }

        // The first note of a note section: its descriptor.
        let note_desc = |name: &str| -> Option<&[u8]> {
            let s = obj.section_by_name(name)?;
            let mut notes = s.elf_section_header().notes(endian, data).ok()??;
            Some(notes.next().ok()??.desc())
        };
        let gnu_build_id = note_desc(".note.gnu.build-id").map(hex::encode);
        let go_build_id = note_desc(".note.go.buildid").map(|desc| {
            String::from_utf8_lossy(desc)
                .trim_end_matches('\0')
                .to_string()
        });

        drop(obj);
        Ok(ElfImage {
            path: path.to_path_buf(),
            map,
            pie,
            sections,
            segments,
            symbols,
            relative_relocs,
            gnu_build_id,
            go_build_id,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The whole file.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Re-parses the ELF headers for callers that need the `object` API (DWARF loading).
    /// Parsing only reads headers, so this is cheap.
    pub(crate) fn object(&self) -> Result<ElfFile64<'_, object::Endianness>, InspectError> {
        ElfFile64::parse(self.bytes()).map_err(|e| InspectError::NotElf {
            path: self.path.clone(),
            reason: format!("its ELF headers are malformed ({e})"),
        })
    }

    /// A section by name. In PIE binaries the Go linker puts read-only data that needs
    /// relocations in `.data.rel.ro<name>` (e.g. `.data.rel.ro.gopclntab`): that is found too.
    pub(crate) fn section(&self, name: &str) -> Option<&SectionInfo> {
        self.sections.iter().find(|s| s.name == name).or_else(|| {
            self.sections
                .iter()
                .find(|s| s.name.strip_prefix(".data.rel.ro") == Some(name))
        })
    }

    /// Raw (possibly compressed) bytes of a section; None for NOBITS or out-of-file ranges.
    pub(crate) fn section_bytes(&self, name: &str) -> Option<&[u8]> {
        let s = self.section(name)?;
        if s.nobits {
            return None;
        }
        self.bytes().get(
            usize::try_from(s.offset).ok()?..usize::try_from(s.offset.checked_add(s.size)?).ok()?,
        )
    }

    pub(crate) fn has_dwarf(&self) -> bool {
        self.section(".debug_info").is_some()
    }

    /// File offset of virtual address `vaddr`, from the PT_LOAD segment that maps it:
    /// `vaddr - p_vaddr + p_offset`. This is the number a uprobe is attached at.
    pub(crate) fn vaddr_to_offset(&self, vaddr: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|s| vaddr >= s.vaddr && vaddr < s.vaddr.saturating_add(s.filesz))
            .and_then(|s| (vaddr - s.vaddr).checked_add(s.offset))
    }

    /// `len` bytes of static data at `vaddr` as stored in the file (relocations not applied).
    pub(crate) fn read(&self, vaddr: u64, len: usize) -> Option<&[u8]> {
        let seg = self.segments.iter().find(|s| {
            vaddr >= s.vaddr && vaddr.saturating_add(len as u64) <= s.vaddr.saturating_add(s.filesz)
        })?;
        let off = usize::try_from((vaddr - seg.vaddr).checked_add(seg.offset)?).ok()?;
        self.bytes().get(off..off.checked_add(len)?)
    }

    pub(crate) fn read_u64(&self, vaddr: u64) -> Option<u64> {
        Some(u64::from_le_bytes(self.read(vaddr, 8)?.try_into().ok()?))
    }

    /// A pointer-sized word at `vaddr` as the loader leaves it: in PIE binaries, a
    /// R_X86_64_RELATIVE relocation at that place supplies the (link-time) value.
    pub(crate) fn read_ptr(&self, vaddr: u64) -> Option<u64> {
        if let Some(&addend) = self.relative_relocs.get(&vaddr) {
            return Some(addend);
        }
        self.read_u64(vaddr)
    }

    /// A Go string header `{ptr, len}` at `vaddr`, followed to its bytes.
    pub(crate) fn read_go_string(&self, vaddr: u64) -> Option<String> {
        let ptr = self.read_ptr(vaddr)?;
        let len = self.read_u64(vaddr.checked_add(8)?)?;
        if len == 0 {
            return Some(String::new());
        }
        if len > 1 << 20 {
            return None;
        }
        let b = self.read(ptr, len as usize)?;
        Some(String::from_utf8_lossy(b).into_owned())
    }
}
