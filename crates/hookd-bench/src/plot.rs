//! The plot of a run: two bar charts side by side, delivered requests/s and end-to-end p99
//! per scenario (median bar, min–max whisker), as a self-contained SVG.

use std::fmt::Write as _;

use crate::report::{Figure, ScenarioResult};

const PANEL_W: f64 = 460.0;
const PANEL_H: f64 = 300.0;
const MARGIN: f64 = 50.0;

pub(crate) fn svg(results: &[ScenarioResult]) -> String {
    let panels = [
        ("delivered requests/s", "delivered requests/s (higher is better)"),
        ("e2e p99 ms", "end-to-end p99, ms (lower is better)"),
    ];
    let width = MARGIN + panels.len() as f64 * (PANEL_W + MARGIN);
    let height = PANEL_H + 2.0 * MARGIN + 40.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (i, (figure, title)) in panels.iter().enumerate() {
        let x0 = MARGIN + i as f64 * (PANEL_W + MARGIN);
        let bars: Vec<(String, Figure)> = results
            .iter()
            .filter_map(|r| r.figure(figure).map(|f| (r.scenario.name(), f)))
            .collect();
        panel(&mut out, x0, MARGIN, title, &bars);
    }
    out.push_str("</svg>\n");
    out
}

fn panel(out: &mut String, x0: f64, y0: f64, title: &str, bars: &[(String, Figure)]) {
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" font-size="13" font-weight="bold">{title}</text>"#,
        x0,
        y0 - 15.0
    );
    let _ = writeln!(
        out,
        r##"<line x1="{x0}" y1="{b}" x2="{}" y2="{b}" stroke="#333"/>"##,
        x0 + PANEL_W,
        b = y0 + PANEL_H
    );
    let top = bars.iter().map(|(_, f)| f.max).fold(0.0, f64::max);
    if bars.is_empty() || top <= 0.0 {
        return;
    }
    let slot = PANEL_W / bars.len() as f64;
    let scale = |v: f64| PANEL_H * v / top;
    for (i, (name, f)) in bars.iter().enumerate() {
        let x = x0 + i as f64 * slot + slot * 0.15;
        let w = slot * 0.7;
        let h = scale(f.median);
        let base = y0 + PANEL_H;
        let _ = writeln!(
            out,
            r##"<rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="{h:.1}" fill="#4a7bb7"/>"##,
            base - h
        );
        let mid = x + w / 2.0;
        let _ = writeln!(
            out,
            r##"<line x1="{mid:.1}" y1="{:.1}" x2="{mid:.1}" y2="{:.1}" stroke="#222"/>"##,
            base - scale(f.min),
            base - scale(f.max)
        );
        let _ = writeln!(
            out,
            r#"<text x="{mid:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            base - scale(f.max) - 4.0,
            short(f.median)
        );
        let _ = writeln!(
            out,
            r#"<text x="{mid:.1}" y="{:.1}" text-anchor="end" transform="rotate(-35 {mid:.1} {:.1})">{name}</text>"#,
            base + 14.0,
            base + 14.0
        );
    }
}

fn short(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}
