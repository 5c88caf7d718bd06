//! The folded-stacks export and its flame graph: goroutine time by span, start function,
//! stack and state.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{owned_states, state_label, Names};
use crate::analysis::Analysis;
use crate::capture_set::CaptureSet;
use crate::error::{AnalyzeError, Result};
use crate::goroutine::StateKind;

/// Folded stacks ("span;start function;frames;[state] ns"), one line per distinct stack,
/// sorted: time each goroutine spent in each state, by the span it worked for.
pub(crate) fn folded_lines(set: &CaptureSet, a: &Analysis) -> Vec<String> {
    let mut names = Names::default();
    let mut sums: HashMap<String, u64> = HashMap::new();
    for g in &a.goroutines {
        let f = &set.files[g.key.file as usize];
        for (s, owner, _) in owned_states(&a.span_index, g) {
            let d = s.duration();
            // Time the capture did not cover was spent on nothing known.
            if d == 0 || s.kind == StateKind::Unknown {
                continue;
            }
            let span = owner.map_or("(no span)", |i| a.spans[i].name.as_str());
            let mut line = format!(
                "{};{}",
                span.replace(';', ":"),
                g.start_function.replace(';', ":")
            );
            if matches!(s.kind, StateKind::Blocked | StateKind::Syscall) && s.stack != 0 {
                let frames = names.folded(f, g.key.file, g.key.target, s.stack);
                if !frames.is_empty() {
                    line.push(';');
                    line.push_str(frames);
                }
            }
            line.push_str(&format!(
                ";[{}]",
                state_label(f, g.key.target, &s).replace(';', ":")
            ));
            *sums.entry(line).or_insert(0) += d;
        }
    }
    let mut v: Vec<String> = sums.into_iter().map(|(k, n)| format!("{k} {n}")).collect();
    v.sort();
    v
}

/// Writes the folded stacks to `out` and a flame graph SVG beside it; returns the SVG path.
pub fn folded(set: &CaptureSet, a: &Analysis, out: &Path) -> Result<PathBuf> {
    let lines = folded_lines(set, a);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(out, text)
        .map_err(|e| AnalyzeError::io(format!("writing {}", out.display()), e))?;
    let svg = match out.extension() {
        Some(e) if e != "svg" => out.with_extension("svg"),
        _ => PathBuf::from(format!("{}.svg", out.display())),
    };
    let file = File::create(&svg)
        .map_err(|e| AnalyzeError::io(format!("creating {}", svg.display()), e))?;
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = "ganalyze: goroutine time by span and state".into();
    opts.count_name = "ns".into();
    opts.hash = true;
    if lines.is_empty() {
        // inferno refuses an empty profile; an empty graph is still a valid answer.
        let mut f = BufWriter::new(file);
        writeln!(
            f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"600\" height=\"40\"><text x=\"10\" y=\"25\">no goroutine time in this capture</text></svg>"
        )
        .map_err(|e| AnalyzeError::io(format!("writing {}", svg.display()), e))?;
        return Ok(svg);
    }
    inferno::flamegraph::from_lines(
        &mut opts,
        lines.iter().map(String::as_str),
        BufWriter::new(file),
    )
    .map_err(|e| AnalyzeError::io(format!("writing {}", svg.display()), e))?;
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{analysed, scenario};

    #[test]
    fn folded_stacks_sum_to_goroutine_time() {
        let (set, a) = analysed("orders-1.gcap", scenario::spans());
        let lines = folded_lines(&set, &a);
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("GET /api/orders;main.fetch;[running] ")),
            "{lines:#?}"
        );
        let sum: u64 = lines
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        let total: u64 = a
            .goroutines
            .iter()
            .map(|g| (g.end - g.first_seen) as u64)
            .sum();
        assert_eq!(sum, total);
        let dir = tempfile::tempdir().unwrap();
        let svg = folded(&set, &a, &dir.path().join("g.folded")).unwrap();
        let text = std::fs::read_to_string(svg).unwrap();
        assert!(text.contains("<svg"));
    }

    #[test]
    fn folded_stacks_leave_out_time_not_covered() {
        let (set, a) = analysed("orders-1.gcap", scenario::windowed(2));
        let lines = folded_lines(&set, &a);
        assert!(!lines.iter().any(|l| l.contains("[unknown]")), "{lines:#?}");
        let sum: u64 = lines
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        let known: u64 = a
            .goroutines
            .iter()
            .map(|g| (g.end - g.first_seen) as u64 - g.unknown_ns())
            .sum();
        assert_eq!(sum, known);
    }
}
