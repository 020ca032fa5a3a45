//! The health charts, as server-rendered SVG: attempts per minute by outcome (stacked bars),
//! and latency p50/p95/p99 (lines over 10-minute windows). Only numbers go into the markup.

use std::fmt::Write;

use hookd_core::clock::Millis;
use hookd_core::store::Tally;

const MINUTE: Millis = 60_000;
const WIDTH: usize = 1440;
const HEIGHT: f64 = 200.0;
const WINDOW: usize = 10;

/// Per-minute tallies over `minutes` minutes from `from`, missing minutes empty.
fn by_slot(tallies: &[(Millis, Tally)], from: Millis, minutes: usize) -> Vec<Tally> {
    let mut slots = vec![Tally::default(); minutes];
    for (minute, tally) in tallies {
        let slot = (minute - from).div_euclid(MINUTE);
        if let Some(s) = usize::try_from(slot).ok().and_then(|i| slots.get_mut(i)) {
            s.add(tally);
        }
    }
    slots
}

fn open_svg(label: &str, description: &str) -> String {
    format!(
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" preserveAspectRatio=\"none\" role=\"img\" aria-labelledby=\"{label}-t {label}-d\">\
         <title id=\"{label}-t\">{label}</title><desc id=\"{label}-d\">{description}</desc>\
         <rect class=\"frame\" x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{HEIGHT}\"/>"
    )
}

/// Attempts per minute for the day from `from`: delivered, retrying and failed, stacked.
pub(super) fn outcomes(tallies: &[(Millis, Tally)], from: Millis) -> String {
    let slots = by_slot(tallies, from, WIDTH);
    let top = slots.iter().map(Tally::attempts).max().unwrap_or(0).max(1) as f64;
    let total: Tally = slots.iter().sum();
    let mut svg = open_svg(
        "attempts-per-minute",
        &format!(
            "Attempts per minute over 24 hours, at most {top} in a minute: {} delivered, {} to be retried, {} failed.",
            total.delivered, total.retrying, total.failed
        ),
    );
    type Count = fn(&Tally) -> u64;
    let series: [(&str, Count); 3] = [
        ("delivered", |t| t.delivered),
        ("retrying", |t| t.retrying),
        ("failed", |t| t.failed),
    ];
    let mut base = vec![0u64; WIDTH];
    for (class, count) in series {
        let mut path = String::new();
        for (x, tally) in slots.iter().enumerate() {
            let n = count(tally);
            if n == 0 {
                continue;
            }
            let y0 = HEIGHT - base[x] as f64 / top * HEIGHT;
            let h = n as f64 / top * HEIGHT;
            let _ = write!(path, "M{x} {y0:.2}v-{h:.2}h1v{h:.2}z");
            base[x] += n;
        }
        if !path.is_empty() {
            let _ = write!(svg, "<path class=\"{class}\" d=\"{path}\"/>");
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Latency quantiles over 10-minute windows of the day from `from`.
pub(super) fn latency(tallies: &[(Millis, Tally)], from: Millis) -> String {
    let slots = by_slot(tallies, from, WIDTH);
    let windows: Vec<Tally> = slots.chunks(WINDOW).map(|chunk| chunk.iter().sum()).collect();
    let quantiles = [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)];
    let top = windows
        .iter()
        .filter_map(|w| w.latency_quantile(0.99))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut svg = open_svg(
        "latency",
        &format!("Latency p50, p95 and p99 over 24 hours in 10-minute windows; the highest p99 is {top} ms."),
    );
    for (class, q) in quantiles {
        let points: Vec<String> = windows
            .iter()
            .enumerate()
            .filter_map(|(i, w)| {
                let ms = w.latency_quantile(q)? as f64;
                let x = (i * WINDOW + WINDOW / 2) as f64;
                Some(format!("{x:.0},{:.2}", HEIGHT - ms / top * (HEIGHT - 4.0)))
            })
            .collect();
        if !points.is_empty() {
            let _ = write!(svg, "<polyline class=\"{class}\" points=\"{}\"/>", points.join(" "));
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(delivered: u64, failed: u64, bucket: usize) -> Tally {
        let mut t = Tally {
            delivered,
            failed,
            ..Tally::default()
        };
        t.latency[bucket] = delivered + failed;
        t
    }

    #[test]
    fn bars_stack_by_outcome_in_their_minute() {
        let from = 1_700_000_040_000;
        let svg = outcomes(&[(from + 5 * MINUTE, tally(3, 1, 2))], from);
        assert!(
            svg.contains("<path class=\"delivered\" d=\"M5 200.00v-150.00h1v150.00z\"/>"),
            "{svg}"
        );
        assert!(
            svg.contains("<path class=\"failed\" d=\"M5 50.00v-50.00h1v50.00z\"/>"),
            "{svg}"
        );
        assert!(!svg.contains("class=\"retrying\""), "no empty series");
        assert!(svg.contains("3 delivered, 0 to be retried, 1 failed"));
    }

    #[test]
    fn latency_lines_have_a_point_per_window_with_attempts() {
        let from = 0;
        let svg = latency(&[(0, tally(10, 0, 4)), (25 * MINUTE, tally(1, 0, 7))], from);
        assert!(svg.contains("<polyline class=\"p50\" points=\"5,"), "{svg}");
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert!(svg.contains("highest p99 is 1000 ms"));
    }

    #[test]
    fn an_empty_day_is_an_empty_frame() {
        let svg = outcomes(&[], 0);
        assert!(svg.contains("<rect class=\"frame\"") && !svg.contains("<path"));
    }
}
