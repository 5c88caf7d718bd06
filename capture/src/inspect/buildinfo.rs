//! Parser for `.go.buildinfo`: the Go toolchain version and the module/build-settings text
//! that `go version -m` prints, read without running the target.
//!
//! gcap needs the version to pick struct offsets and probe points (they move between
//! releases), and records the module info in the capture so an analysis can say which
//! build was observed. Only the Go >= 1.18 layout (inline strings, header flag bit 1) is
//! supported; gcap supports Go 1.19 and newer anyway. Layout: Go's
//! `src/debug/buildinfo/buildinfo.go`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::InspectError;

/// Oldest Go minor version gcap supports.
pub(crate) const MIN_SUPPORTED_MINOR: u32 = 19;
/// Newest Go minor version gcap was tested with; newer ones work when DWARF is present.
pub(crate) const MAX_TESTED_MINOR: u32 = 27;

const MAGIC: &[u8] = b"\xff Go buildinf:";

/// A Go release number, e.g. go1.27.3 = {1, 27, 3}. Pre-releases (`go1.22rc1`) have patch 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct GoVersion {
    pub(crate) major: u32,
    pub(crate) minor: u32,
    pub(crate) patch: u32,
}

impl GoVersion {
    /// Parses `go1.27.3`, `go1.25.5 X:noswissmap`, `go1.22rc1`, `go1.21`.
    pub(crate) fn parse(s: &str) -> Result<GoVersion, InspectError> {
        let bad = || InspectError::BadGoVersion {
            version: s.to_string(),
        };
        let first = s.split_whitespace().next().ok_or_else(bad)?;
        let rest = first.strip_prefix("go").ok_or_else(bad)?;
        let num = |p: &str| -> Option<u32> {
            let digits: String = p.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse().ok()
        };
        let mut parts = rest.splitn(3, '.');
        let major = parts.next().and_then(num).ok_or_else(bad)?;
        let minor = parts.next().and_then(num).ok_or_else(bad)?;
        let patch = parts.next().and_then(num).unwrap_or(0);
        Ok(GoVersion {
            major,
            minor,
            patch,
        })
    }

    /// True for versions newer than the last one gcap was tested with (go1.27): such
    /// binaries are accepted, but offsets must come from DWARF and probe points may move.
    pub(crate) fn newer_than_tested(&self) -> bool {
        self.major > 1 || self.minor > MAX_TESTED_MINOR
    }

    /// Key of this version in the embedded offsets table, e.g. "1.27".
    pub(crate) fn table_key(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
}

impl fmt::Display for GoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "go{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// One module line of the build info (`mod`, `dep`, with an optional `=>` replacement).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Module {
    pub(crate) path: String,
    pub(crate) version: String,
    pub(crate) sum: String,
    pub(crate) replace: Option<Box<Module>>,
}

/// What `.go.buildinfo` says about the build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BuildInfo {
    /// The raw version string, e.g. "go1.25.5 X:noswissmap".
    pub(crate) go_version: String,
    pub(crate) version: GoVersion,
    /// The GOEXPERIMENT part of the version string ("noswissmap"), if any.
    pub(crate) experiments: Option<String>,
    /// The main package path (`path` line), e.g. "command-line-arguments".
    pub(crate) path: Option<String>,
    pub(crate) main: Option<Module>,
    pub(crate) deps: Vec<Module>,
    /// `build` lines in order: ("-ldflags", "-s -w"), ("CGO_ENABLED", "0"), ...
    pub(crate) settings: Vec<(String, String)>,
}

impl BuildInfo {
    #[cfg(test)]
    /// Value of a build setting such as "CGO_ENABLED", "-ldflags" or "GOEXPERIMENT".
    pub(crate) fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the contents of the `.go.buildinfo` section.
pub(crate) fn parse(section: &[u8]) -> Result<BuildInfo, InspectError> {
    let malformed = |what: &str| InspectError::Malformed {
        what: format!(".go.buildinfo {what}"),
    };
    if section.len() < 32 || &section[..MAGIC.len()] != MAGIC {
        return Err(malformed(
            "does not start with the \"\\xff Go buildinf:\" magic",
        ));
    }
    let ptr_size = section[14];
    let flags = section[15];
    if flags & 0x2 == 0 {
        return Err(InspectError::UnsupportedBuildInfo {
            reason: "it uses the pointer-based layout of Go 1.17 and older; gcap supports Go 1.19 and newer".into(),
        });
    }
    if flags & 0x1 != 0 || ptr_size != 8 {
        return Err(InspectError::UnsupportedBuildInfo {
            reason: format!(
                "it is for a big-endian or {}-bit target; gcap supports linux/amd64 only",
                u32::from(ptr_size) * 8
            ),
        });
    }
    let mut rest = &section[32..];
    let version = read_string(&mut rest).ok_or_else(|| malformed("version string is truncated"))?;
    let modinfo = read_string(&mut rest).unwrap_or_default();
    let go_version = String::from_utf8_lossy(version).into_owned();
    let parsed = GoVersion::parse(&go_version)?;
    let experiments = go_version
        .split_whitespace()
        .find_map(|w| w.strip_prefix("X:"))
        .map(str::to_string);

    let mut info = BuildInfo {
        go_version,
        version: parsed,
        experiments,
        path: None,
        main: None,
        deps: Vec::new(),
        settings: Vec::new(),
    };
    parse_modinfo(
        &String::from_utf8_lossy(strip_sentinels(modinfo)),
        &mut info,
    );
    Ok(info)
}

/// Reads a uvarint-length-prefixed string and advances `buf`.
fn read_string<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let mut len: u64 = 0;
    let mut shift = 0;
    let mut i = 0;
    loop {
        let b = *buf.get(i)?;
        i += 1;
        len |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    let len = usize::try_from(len).ok()?;
    let s = buf.get(i..i.checked_add(len)?)?;
    *buf = &buf[i + len..];
    Some(s)
}

/// Modinfo is wrapped in two 16-byte sentinels (`runtime/debug` `modinfoStart/End`).
fn strip_sentinels(m: &[u8]) -> &[u8] {
    if m.len() >= 33 && m[m.len() - 17] == b'\n' {
        &m[16..m.len() - 16]
    } else {
        m
    }
}

fn parse_modinfo(text: &str, info: &mut BuildInfo) {
    let module = |f: &[&str]| Module {
        path: f.first().unwrap_or(&"").to_string(),
        version: f.get(1).unwrap_or(&"").to_string(),
        sum: f.get(2).unwrap_or(&"").to_string(),
        replace: None,
    };
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.first().copied() {
            Some("path") => info.path = fields.get(1).map(|s| s.to_string()),
            Some("mod") => info.main = Some(module(&fields[1..])),
            Some("dep") => info.deps.push(module(&fields[1..])),
            Some("=>") => {
                let r = Box::new(module(&fields[1..]));
                if let Some(last) = info.deps.last_mut() {
                    last.replace = Some(r);
                } else if let Some(main) = info.main.as_mut() {
                    main.replace = Some(r);
                }
            }
            Some("build") => {
                let kv = fields[1..].join("\t");
                if let Some((k, v)) = split_setting(&kv) {
                    info.settings.push((k, v));
                }
            }
            _ => {}
        }
    }
}

/// `key=value` where key and value may each be Go-quoted (`"-ldflags=..."` forms are
/// written as `-ldflags="-s -w"`).
fn split_setting(kv: &str) -> Option<(String, String)> {
    let (key, rest) = if let Some(q) = kv.strip_prefix('"') {
        let (k, n) = unquote(q)?;
        (k, q.get(n..)?.strip_prefix('=')?)
    } else {
        let (k, v) = kv.split_once('=')?;
        (k.to_string(), v)
    };
    let value = match rest.strip_prefix('"') {
        Some(q) => unquote(q)
            .map(|(v, _)| v)
            .unwrap_or_else(|| rest.to_string()),
        None => rest.to_string(),
    };
    Some((key, value))
}

/// Unquotes a Go string literal body (after the opening quote); returns the text and the
/// number of bytes consumed including the closing quote.
fn unquote(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\\' => {
                let (_, e) = chars.next()?;
                out.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    other => other,
                });
            }
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let v = GoVersion::parse("go1.25.5 X:noswissmap").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (1, 25, 5));
        assert_eq!(GoVersion::parse("go1.22rc1").unwrap().minor, 22);
        assert_eq!(GoVersion::parse("go1.21").unwrap().patch, 0);
        assert!(GoVersion::parse("devel +abc").is_err());
        assert!(GoVersion::parse("").is_err());
        assert!(GoVersion::parse("go1.28.0").unwrap().newer_than_tested());
        assert!(!GoVersion::parse("go1.27.9").unwrap().newer_than_tested());
    }

    #[test]
    fn settings() {
        assert_eq!(
            split_setting("-ldflags=\"-s -w\""),
            Some(("-ldflags".into(), "-s -w".into()))
        );
        assert_eq!(
            split_setting("CGO_ENABLED=0"),
            Some(("CGO_ENABLED".into(), "0".into()))
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse(b"").is_err());
        assert!(parse(&[0xffu8; 64]).is_err());
        let mut hdr = b"\xff Go buildinf:\x08\x02".to_vec();
        hdr.resize(32, 0);
        hdr.push(0xff); // truncated varint
        assert!(parse(&hdr).is_err());
    }
}
