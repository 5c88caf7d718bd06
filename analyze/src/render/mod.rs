//! Presenting a [`crate::report::Report`]: text for a terminal, the contract's JSON,
//! Markdown for incident tickets, and one self-contained HTML file.

pub mod html;
pub mod markdown;
pub mod text;

use crate::report::Report;

/// The contract's JSON object, pretty-printed.
pub fn json(r: &Report) -> String {
    let mut s = serde_json::to_string_pretty(r).expect("a report always serialises");
    s.push('\n');
    s
}

pub(crate) fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

pub(crate) fn burn(x: Option<f64>) -> String {
    match x {
        Some(b) if b.is_finite() => format!("{b:.1}×"),
        Some(_) => "∞".into(),
        None => "-".into(),
    }
}
