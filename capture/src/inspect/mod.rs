//! Target inspection: everything gcap learns about a Go binary *before* attaching probes,
//! in pure Rust and without running the target.
//!
//! `GoBinary::open` recognises a linux/amd64 Go executable (PIE or not, with or without
//! `.symtab`/DWARF), parses its build info and Go version, builds its function table, and
//! on request decodes prologues (probe sites, RETs), reads struct offsets and symbolizes
//! PCs. `TargetInfo` is the summary recorded in the capture file.

pub(crate) mod allgs;
pub(crate) mod buildinfo;
pub(crate) mod elf;
pub(crate) mod offsets;
pub(crate) mod prologue;
mod start;
pub(crate) mod symbols;

#[cfg(test)]
pub(crate) mod tests;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub(crate) use buildinfo::{BuildInfo, GoVersion};
pub(crate) use elf::ElfImage;
pub(crate) use offsets::{GoOffsets, OffsetsSource};
pub(crate) use prologue::Prologue;
pub use symbols::{Frame, Func};
pub(crate) use symbols::{FuncTable, PclnLayout, Pclntab, Symbolizer};

/// Why a target could not be inspected. Messages say what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an ELF executable: {reason}; gcap needs a linux/amd64 Go program")]
    NotElf { path: PathBuf, reason: String },
    #[error("{path} is built for {arch}; gcap supports linux/amd64 (x86-64) Go programs only")]
    UnsupportedArch { path: PathBuf, arch: String },
    #[error("{path} is not a Go program: no .go.buildinfo or .gopclntab section")]
    NotGo { path: PathBuf },
    #[error("unsupported Go build info: {reason}")]
    UnsupportedBuildInfo { reason: String },
    #[error("cannot parse Go version {version:?}; expected something like \"go1.27.3\" (development toolchains are not supported)")]
    BadGoVersion { version: String },
    #[error("{path} was built by {version}, which gcap does not support; rebuild it with Go 1.19 or newer")]
    UnsupportedGoVersion { path: PathBuf, version: String },
    #[error("malformed Go binary: {what}")]
    Malformed { what: String },
    #[error("{path}: {what}")]
    InPath { path: PathBuf, what: String },
    #[error("function {name} not found in {path} (neither .symtab nor .gopclntab has it; it may be inlined or absent in this Go version)")]
    FunctionNotFound { path: PathBuf, name: String },
    #[error("cannot read DWARF of {path}: {reason}; rebuild without -ldflags=-w or strip DWARF entirely so the embedded table is used")]
    Dwarf { path: PathBuf, reason: String },
    #[error("DWARF of {path} has no {item}; this Go version may have renamed it, update inspect::offsets")]
    DwarfMissing { path: PathBuf, item: String },
    #[error("no struct offsets for {version}: the binary has no DWARF and the embedded table only covers {known}; rebuild the target without -ldflags=\"-s -w\", or run scripts/gen-offsets.sh with that toolchain version")]
    NoOffsets { version: String, known: String },
}

/// A mapped, recognised Go executable for linux/amd64.
#[derive(Debug)]
pub struct GoBinary {
    elf: ElfImage,
    pub(crate) build_info: BuildInfo,
    pcln: PclnLayout,
    funcs: FuncTable,
    /// The pclntab `funcID` of compiler-generated wrappers (see `start.rs`).
    wrapper_func_id: Option<u8>,
}

impl GoBinary {
    /// Opens and validates `path`. Errors: not ELF, not amd64, not Go, Go older than 1.19,
    /// malformed pclntab. Go newer than the last tested release is accepted; see
    /// [`GoBinary::version_warning`].
    pub(crate) fn open(path: impl AsRef<Path>) -> Result<GoBinary, InspectError> {
        let path = path.as_ref();
        let elf = ElfImage::open(path)?;
        let in_path = |e: InspectError| match e {
            InspectError::Malformed { what }
            | InspectError::UnsupportedBuildInfo { reason: what } => InspectError::InPath {
                path: path.to_path_buf(),
                what,
            },
            other => other,
        };
        let bi = elf.section_bytes(".go.buildinfo");
        if bi.is_none() || elf.section(".gopclntab").is_none() {
            return Err(InspectError::NotGo {
                path: path.to_path_buf(),
            });
        }
        let build_info = buildinfo::parse(bi.unwrap_or_default()).map_err(in_path)?;
        let v = build_info.version;
        if v.major == 1 && v.minor < buildinfo::MIN_SUPPORTED_MINOR {
            return Err(InspectError::UnsupportedGoVersion {
                path: path.to_path_buf(),
                version: build_info.go_version.clone(),
            });
        }
        let pcln = PclnLayout::parse(&elf, v.minor).map_err(in_path)?;
        let tab = Pclntab::new(&elf, pcln);
        let funcs = FuncTable::build(&elf, &tab);
        let wrapper_func_id = start::wrapper_func_id(&funcs, &tab);
        Ok(GoBinary {
            elf,
            build_info,
            pcln,
            funcs,
            wrapper_func_id,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        self.elf.path()
    }

    pub(crate) fn version(&self) -> GoVersion {
        self.build_info.version
    }

    /// A warning to show the user when the Go version is newer than gcap was tested with.
    pub(crate) fn version_warning(&self) -> Option<String> {
        self.version().newer_than_tested().then(|| {
            format!(
                "{} was built by {}, newer than the last Go release gcap was tested with (go1.{}); probes may be incomplete",
                self.path().display(),
                self.build_info.go_version,
                buildinfo::MAX_TESTED_MINOR
            )
        })
    }

    /// Position-independent executable (ET_DYN).
    pub(crate) fn is_pie(&self) -> bool {
        self.elf.pie
    }

    pub(crate) fn gnu_build_id(&self) -> Option<&str> {
        self.elf.gnu_build_id.as_deref()
    }

    pub(crate) fn go_build_id(&self) -> Option<&str> {
        self.elf.go_build_id.as_deref()
    }

    pub(crate) fn has_symtab(&self) -> bool {
        !self.elf.symbols.is_empty()
    }

    pub(crate) fn has_dwarf(&self) -> bool {
        self.elf.has_dwarf()
    }

    /// The ELF layer (sections, segments, symbols, relocation-aware reads).
    pub(crate) fn elf(&self) -> &ElfImage {
        &self.elf
    }

    pub(crate) fn functions(&self) -> &FuncTable {
        &self.funcs
    }

    /// A function by its Go name, e.g. "runtime.gopark", "net/http.serverHandler.ServeHTTP".
    pub fn function(&self, name: &str) -> Result<&Func, InspectError> {
        self.funcs
            .get(name)
            .ok_or_else(|| InspectError::FunctionNotFound {
                path: self.path().to_path_buf(),
                name: name.to_string(),
            })
    }

    /// Machine code of `f` as stored in the file.
    pub(crate) fn code(&self, f: &Func) -> Option<&[u8]> {
        self.elf
            .read(f.entry, usize::try_from(f.end.checked_sub(f.entry)?).ok()?)
    }

    /// Probe sites (PUSH RBP, after stack check) and RET offsets of a function.
    pub(crate) fn prologue(&self, name: &str) -> Result<Prologue, InspectError> {
        let f = self.function(name)?;
        let code = self.code(f).ok_or_else(|| InspectError::InPath {
            path: self.path().to_path_buf(),
            what: format!(
                "code of {name} ({:#x}..{:#x}) is not in the file",
                f.entry, f.end
            ),
        })?;
        Ok(prologue::analyze(code, f.entry))
    }

    pub(crate) fn pclntab(&self) -> Pclntab<'_> {
        Pclntab::new(&self.elf, self.pcln)
    }

    /// A caching PC -> frames symbolizer.
    pub(crate) fn symbolizer(&self) -> Symbolizer<'_> {
        Symbolizer::new(self.pclntab())
    }

    /// Struct offsets and enum numbering: from DWARF when present, else the embedded table.
    pub(crate) fn offsets(&self) -> Result<GoOffsets, InspectError> {
        GoOffsets::load(&self.elf, &self.version())
    }

    /// The summary recorded in a capture file.
    pub(crate) fn target_info(
        &self,
        pid: Option<u32>,
        offsets_source: Option<OffsetsSource>,
    ) -> TargetInfo {
        TargetInfo {
            path: self.path().to_path_buf(),
            pid,
            go_version: self.build_info.go_version.clone(),
            version: self.version(),
            main_module: self
                .build_info
                .main
                .as_ref()
                .map(|m| m.path.clone())
                .or_else(|| self.build_info.path.clone()),
            gnu_build_id: self.elf.gnu_build_id.clone(),
            go_build_id: self.elf.go_build_id.clone(),
            pie: self.elf.pie,
            has_symtab: self.has_symtab(),
            has_dwarf: self.has_dwarf(),
            offsets_source,
            version_warning: self.version_warning(),
        }
    }
}

/// What a capture records about each target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TargetInfo {
    pub(crate) path: PathBuf,
    pub(crate) pid: Option<u32>,
    /// The raw version string, e.g. "go1.25.5 X:noswissmap".
    pub(crate) go_version: String,
    pub(crate) version: GoVersion,
    pub(crate) main_module: Option<String>,
    pub(crate) gnu_build_id: Option<String>,
    pub(crate) go_build_id: Option<String>,
    pub(crate) pie: bool,
    pub(crate) has_symtab: bool,
    pub(crate) has_dwarf: bool,
    pub(crate) offsets_source: Option<OffsetsSource>,
    pub(crate) version_warning: Option<String>,
}
