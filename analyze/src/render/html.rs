//! One self-contained HTML file: inline CSS and SVG, no scripts or network. Per SLO: the
//! latency distribution against the threshold, a bar of the causes' shares, and the
//! timeline of a representative slow request across the goroutines on its critical path.

use std::fmt::Write;

use super::{
    burn, capitalized, covered, endpoint_numbers, explained, open_requests, pct, runtime, targets,
    too_few,
};
use crate::category::Category;
use crate::report::{Example, Report, SloReport};
use crate::units::fmt_ns;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff;max-width:1150px}\
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}.bad{color:#c00;font-weight:bold}.ok{color:#080;font-weight:bold}\
code{background:#f4f4f4;padding:0 3px}.legend span{display:inline-block;margin-right:12px}\
.sw{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}\
ol li{margin-bottom:6px}.muted{color:#666}";

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>ganalyze report</title><style>{CSS}</style></head><body><h1>ganalyze report</h1>"
    );
    for c in &r.captures {
        let _ = write!(
            o,
            "<p class=\"muted\">Capture <code>{}</code>: {}; {:.1}s, {} events, {} lost.</p>",
            esc(&c.file),
            esc(&targets(c, |exe| exe)),
            c.duration_ns as f64 / 1e9,
            c.events,
            c.events_lost
        );
        if let Some(cov) = covered(c) {
            let _ = write!(o, "<p class=\"muted\">Covered: {}.</p>", esc(&cov));
        }
    }
    for s in &r.slos {
        slo(&mut o, s);
    }
    let _ = write!(o, "<h2>Endpoints</h2><table><tr><th>endpoint</th><th>count</th><th>errors</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>");
    for e in &r.endpoints {
        let _ = write!(
            o,
            "<tr><td><code>{}</code>{}</td>{}</tr>",
            esc(&e.name),
            if e.slowest && r.endpoints.len() > 1 {
                " <span class=bad>slowest</span>"
            } else {
                ""
            },
            endpoint_numbers(e)
                .iter()
                .map(|n| format!("<td class=n>{n}</td>"))
                .collect::<String>()
        );
    }
    o.push_str("</table>");
    if !r.goroutines.leak_suspects.is_empty() {
        o.push_str("<h2>Leak suspects</h2><table><tr><th>count</th><th>piled up</th><th>created at</th><th>start function</th><th>blocked on</th><th>where</th></tr>");
        for l in &r.goroutines.leak_suspects {
            let _ = write!(
                o,
                "<tr><td class=n>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td><code>{}</code></td></tr>",
                l.count,
                esc(&l.how()),
                esc(&l.creation_site),
                esc(&l.start_function),
                esc(&l.blocked_on),
                esc(&l.where_)
            );
        }
        o.push_str("</table>");
    }
    let _ = write!(o, "<p class=muted>{}</p>", runtime(r, false));
    if let Some(h) = &r.hint {
        let _ = write!(o, "<p>{}</p>", esc(h));
    }
    for w in &r.warnings {
        let _ = write!(o, "<p class=muted>Note: {}</p>", esc(w));
    }
    o.push_str("</body></html>\n");
    o
}

fn slo(o: &mut String, s: &SloReport) {
    let _ = write!(
        o,
        "<h2>SLO <code>{}</code></h2><p>Observed {}: <span class={}>{}</span>. {} requests, {} slower than the threshold, {} errors; error budget burn {}.</p>",
        esc(&s.title()),
        esc(&s.observed),
        if s.breached { "bad" } else { "ok" },
        if s.breached { "BREACHED" } else { "met" },
        s.requests,
        s.breaching_requests,
        s.errors,
        burn(s.budget_burn)
    );
    if let Some(open) = open_requests(s) {
        let _ = write!(o, "<p>{}.</p>", esc(&open));
    }
    if let Some(e) = explained(s) {
        let _ = write!(o, "<p>{}.</p>", esc(&capitalized(&e)));
    }
    // The sentence's own words need no escaping; the command does.
    if let Some(t) = too_few(s, |c| format!("<code>{}</code>", esc(c))) {
        let _ = write!(o, "<p class=bad>{}.</p>", capitalized(&t));
    }
    histogram(o, s);
    if !s.root_causes.is_empty() {
        o.push_str("<h3>Root causes (share of the excess latency)</h3>");
        breakdown(o, s);
        o.push_str("<ol>");
        for c in &s.root_causes {
            let _ = write!(
                o,
                "<li><span class=sw style=\"background:{}\"></span><b>{} {}</b> at <code>{}</code>{}<br>{}</li>",
                c.category.color(),
                pct(c.share),
                c.category.name(),
                esc(&c.where_),
                c.blocker
                    .as_deref()
                    .map(|b| format!(", blocker <code>{}</code>", esc(b)))
                    .unwrap_or_default(),
                esc(&c.summary)
            );
        }
        o.push_str("</ol>");
    }
    if let Some(e) = &s.example {
        timeline(o, e);
    }
}

fn histogram(o: &mut String, s: &SloReport) {
    if s.histogram.is_empty() {
        return;
    }
    let (w, h, pad) = (1000.0, 220.0, 40.0);
    let n = s.histogram.len() as f64;
    let max = s
        .histogram
        .iter()
        .map(|b| b.count)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let bw = (w - 2.0 * pad) / n;
    let _ = write!(
        o,
        "<h3>Latency distribution</h3><svg id=\"latency\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\"><rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#fafafa\"/>"
    );
    let t = s.threshold_ns;
    for (i, b) in s.histogram.iter().enumerate() {
        // Buckets with any request get at least a visible sliver.
        let bh = if b.count == 0 {
            0.0
        } else {
            ((b.count as f64).ln_1p() / max.ln_1p() * (h - 2.0 * pad)).max(3.0)
        };
        let slow = t.is_some_and(|t| b.lo_ns >= t);
        let _ = write!(
            o,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}–{}: {} requests</title></rect>",
            pad + i as f64 * bw,
            h - pad - bh,
            (bw - 1.0).max(1.0),
            bh,
            if slow { "#e15759" } else { "#4e79a7" },
            fmt_ns(b.lo_ns),
            fmt_ns(b.hi_ns),
            b.count
        );
    }
    let (lo, hi) = (
        s.histogram[0].lo_ns.max(1) as f64,
        s.histogram.last().map_or(2, |b| b.hi_ns) as f64,
    );
    let x_of =
        |ns: f64| pad + ((ns.max(1.0)).ln() - lo.ln()) / (hi.ln() - lo.ln()) * (w - 2.0 * pad);
    for k in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let ns = (lo.ln() + (hi.ln() - lo.ln()) * k).exp();
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
            x_of(ns),
            h - pad + 16.0,
            fmt_ns(ns as u64)
        );
    }
    if let Some(t) = t {
        let x = x_of(t as f64);
        let _ = write!(
            o,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#c00\" stroke-width=\"2\" stroke-dasharray=\"5,3\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#c00\">threshold {}</text>",
            pad / 2.0,
            h - pad,
            x + 4.0,
            pad / 2.0 + 10.0,
            fmt_ns(t)
        );
    }
    let _ = write!(
        o,
        "<text x=\"{pad}\" y=\"14\" font-size=\"11\" fill=\"#666\">requests (log scale) by latency (log scale)</text></svg>"
    );
}

fn breakdown(o: &mut String, s: &SloReport) {
    let (w, h) = (1000.0, 34.0);
    let _ = write!(
        o,
        "<svg id=\"causes\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">"
    );
    let mut x = 0.0;
    for c in &s.root_causes {
        let cw = c.share * w;
        let _ = write!(
            o,
            "<rect x=\"{x:.1}\" y=\"0\" width=\"{cw:.1}\" height=\"{h}\" fill=\"{}\" stroke=\"#fff\"><title>{} {} at {}</title></rect>",
            c.category.color(),
            pct(c.share),
            c.category.name(),
            esc(&c.where_)
        );
        if cw > 90.0 {
            let _ = write!(
                o,
                "<text x=\"{:.1}\" y=\"22\" font-size=\"13\" fill=\"#000\">{} {}</text>",
                x + 6.0,
                c.category.name(),
                pct(c.share)
            );
        }
        x += cw;
    }
    o.push_str("</svg>");
}

fn timeline(o: &mut String, e: &Example) {
    let mut lanes: Vec<(u32, u64)> = Vec::new();
    for s in &e.segments {
        if !lanes.contains(&(s.pid, s.goroutine)) {
            lanes.push((s.pid, s.goroutine));
        }
    }
    let (w, lane_h, pad) = (1000.0, 26.0, 150.0);
    let h = lanes.len() as f64 * lane_h + 40.0;
    let _ = write!(
        o,
        "<h3>A representative slow request: span <code>{}</code> {} ({}){}</h3><svg id=\"timeline\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">",
        esc(&e.span),
        esc(&e.name),
        fmt_ns(e.duration_ns),
        e.trace_id
            .as_deref()
            .map(|t| format!(", trace {t}"))
            .unwrap_or_default()
    );
    let span = e.duration_ns.max(1) as f64;
    for (i, (pid, g)) in lanes.iter().enumerate() {
        let y = 10.0 + i as f64 * lane_h;
        let _ = write!(
            o,
            "<text x=\"4\" y=\"{:.1}\" font-size=\"12\">pid {pid} g{g}</text><line x1=\"{pad}\" y1=\"{:.1}\" x2=\"{w}\" y2=\"{:.1}\" stroke=\"#eee\"/>",
            y + 15.0,
            y + lane_h - 2.0,
            y + lane_h - 2.0
        );
    }
    for s in &e.segments {
        let i = lanes
            .iter()
            .position(|l| *l == (s.pid, s.goroutine))
            .unwrap_or(0);
        let x = pad + (s.start_ns - e.start_ns) as f64 / span * (w - pad);
        let sw = (s.duration_ns as f64 / span * (w - pad)).max(1.0);
        let _ = write!(
            o,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{sw:.1}\" height=\"{:.1}\" fill=\"{}\"><title>g{}: {} {} at {} ({}){}</title></rect>",
            10.0 + i as f64 * lane_h,
            lane_h - 6.0,
            s.activity.color(),
            s.goroutine,
            fmt_ns(s.duration_ns),
            s.activity.name(),
            esc(&s.activity_where),
            s.category.name(),
            s.blocker
                .as_deref()
                .map(|b| format!(", blocker {}", esc(b)))
                .unwrap_or_default()
        );
    }
    let _ = write!(
        o,
        "<text x=\"{pad}\" y=\"{:.1}\" font-size=\"11\">0</text><text x=\"{w}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text></svg><p class=legend>",
        h - 8.0,
        h - 8.0,
        fmt_ns(e.duration_ns)
    );
    for c in Category::ALL {
        if e.segments.iter().any(|s| s.activity == c) {
            let _ = write!(
                o,
                "<span><i class=sw style=\"background:{}\"></i>{}</span>",
                c.color(),
                c.name()
            );
        }
    }
    o.push_str("</p>");
}
