//! Daily metrics as text: the cells both the terminal table and the HTML report show, and the
//! report's chart (inline SVG drawn here: no scripts, no external resources).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use journal_core::metrics::{parse_date, ModelDayMetrics};

use super::html::escape;

/// What a row's model is called on screen (the unattributed row has no model).
pub fn model(row: &ModelDayMetrics) -> String {
    if row.is_unattributed() {
        "(unattributed)".to_string()
    } else {
        row.model_name.clone()
    }
}

/// `12.3%`, or `–` when there is nothing to divide by.
pub fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_string(), |x| format!("{:.1}%", x * 100.0))
}

/// A confidence to three places (percentiles are exact to 1e-4), or `–`.
pub fn confidence(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_string(), |x| format!("{x:.3}"))
}

/// The `n` most frequent labels with their share of `total`: `approve 62.5%, deny 30.0%, +2`.
pub fn top_labels(counts: &BTreeMap<String, u64>, total: u64, n: usize) -> String {
    let mut by_count: Vec<(&String, &u64)> = counts.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut parts: Vec<String> = by_count
        .iter()
        .take(n)
        .map(|(label, count)| {
            let share = (total > 0).then(|| **count as f64 / total as f64);
            format!("{label} {}", percent(share))
        })
        .collect();
    if by_count.len() > n {
        parts.push(format!("+{}", by_count.len() - n));
    }
    parts.join(", ")
}

/// Dates as runs: `2026-03-01..2026-03-03, 2026-03-07`.
pub fn date_runs(dates: &[String]) -> String {
    let mut runs: Vec<(i32, &str, &str)> = Vec::new();
    for d in dates {
        let day = parse_date("date", d).ok();
        match (runs.last_mut(), day) {
            (Some((last, _, end)), Some(day)) if day == *last + 1 => {
                *last = day;
                *end = d;
            }
            _ => runs.push((day.unwrap_or(i32::MIN), d, d)),
        }
    }
    runs.iter()
        .map(|(_, start, end)| {
            if start == end {
                start.to_string()
            } else {
                format!("{start}..{end}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Series colours (Okabe–Ito, told apart with colour blindness too); cycled past eight models.
const PALETTE: [&str; 8] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#999999",
];
const LINE_COLOR: &str = "#1b1b1b";

/// A model version and its colour in the chart, most decisions first.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub model_name: String,
    pub model_version: String,
    pub label: String,
    pub color: &'static str,
}

/// The models of `rows` that made decisions, most decisions first.
pub fn series(rows: &[ModelDayMetrics]) -> Vec<Series> {
    let mut totals: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.decisions > 0) {
        *totals
            .entry((r.model_name.as_str(), r.model_version.as_str()))
            .or_default() += r.decisions;
    }
    let mut models: Vec<((&str, &str), u64)> = totals.into_iter().collect();
    models.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    models
        .into_iter()
        .enumerate()
        .map(|(i, ((name, version), _))| Series {
            model_name: name.to_string(),
            model_version: version.to_string(),
            label: if name.is_empty() && version.is_empty() {
                "(no model)".to_string()
            } else {
                format!("{name} {version}")
            },
            color: PALETTE[i % PALETTE.len()],
        })
        .collect()
}

/// The smallest 1, 2 or 5 × 10^k at or above `x` (at least 1): a readable axis top.
pub fn nice_ceiling(x: u64) -> u64 {
    let mut step: u64 = 1;
    loop {
        for m in [1, 2, 5] {
            let top = step.saturating_mul(m);
            if top >= x || top == u64::MAX {
                return top.max(1);
            }
        }
        step = step.saturating_mul(10);
    }
}

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 52.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 42.0;

fn n(x: f64) -> String {
    format!("{x:.1}")
}

/// Decisions per day as bars stacked by model, and the day's mean confidence over all models
/// (weighted by the decisions that carry one) as a line on the right axis. `dates` are the
/// x axis, in order; days without rows stay empty. Every text from the journal is escaped.
pub fn chart_svg(dates: &[String], rows: &[ModelDayMetrics], series: &[Series]) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let bottom = TOP + plot_h;
    let slot = plot_w / dates.len().max(1) as f64;
    let bar_w = (slot * 0.7).max(1.0);
    let mut by_date: BTreeMap<&str, Vec<&ModelDayMetrics>> = BTreeMap::new();
    for r in rows {
        by_date.entry(r.date.as_str()).or_default().push(r);
    }
    let day_total = |d: &str| -> u64 {
        by_date
            .get(d)
            .map_or(0, |rs| rs.iter().map(|r| r.decisions).sum())
    };
    let top = nice_ceiling(dates.iter().map(|d| day_total(d)).max().unwrap_or(0));
    let y = |v: f64, max: f64| bottom - v / max * plot_h;

    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" role=\"img\" aria-labelledby=\"metrics-chart-title\">\n\
         <title id=\"metrics-chart-title\">Decisions per day by model (bars) and mean confidence \
         (line)</title>\n",
        w = WIDTH,
        h = HEIGHT
    );
    // Axes and grid: decisions on the left, confidence 0..1 on the right.
    for i in 0..=4 {
        let frac = f64::from(i) / 4.0;
        let gy = n(y(frac, 1.0));
        let _ = writeln!(
            s,
            "<line x1=\"{}\" y1=\"{gy}\" x2=\"{}\" y2=\"{gy}\" stroke=\"#e3e3e3\"/>\
             <text x=\"{}\" y=\"{gy}\" dy=\"0.32em\" text-anchor=\"end\" font-size=\"11\">{}</text>\
             <text x=\"{}\" y=\"{gy}\" dy=\"0.32em\" font-size=\"11\">{}</text>",
            n(LEFT),
            n(LEFT + plot_w),
            n(LEFT - 6.0),
            (top as f64 * frac).round() as u64,
            n(LEFT + plot_w + 6.0),
            frac
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"12\" y=\"{}\" font-size=\"11\" transform=\"rotate(-90 12 {})\" \
         text-anchor=\"middle\">decisions</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" transform=\"rotate(90 {} {})\" \
         text-anchor=\"middle\">mean confidence</text>",
        n(TOP + plot_h / 2.0),
        n(TOP + plot_h / 2.0),
        n(WIDTH - 8.0),
        n(TOP + plot_h / 2.0),
        n(WIDTH - 8.0),
        n(TOP + plot_h / 2.0),
    );
    // Bars, one stack per day in series order.
    let mut line: Vec<(f64, f64)> = Vec::new();
    for (i, date) in dates.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
        let day = by_date.get(date.as_str()).cloned().unwrap_or_default();
        let mut stacked = 0u64;
        for sr in series {
            let Some(r) = day
                .iter()
                .find(|r| r.model_name == sr.model_name && r.model_version == sr.model_version)
            else {
                continue;
            };
            if r.decisions == 0 {
                continue;
            }
            let y0 = y(stacked as f64, top as f64);
            stacked += r.decisions;
            let y1 = y(stacked as f64, top as f64);
            let _ = writeln!(
                s,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}</title></rect>",
                n(x),
                n(y1),
                n(bar_w),
                n(y0 - y1),
                sr.color,
                escape(&format!(
                    "{date} {}: {} decisions, mean confidence {}",
                    sr.label,
                    r.decisions,
                    confidence(r.confidence_mean)
                ))
            );
        }
        let (weighted, count) = day
            .iter()
            .fold((0.0, 0u64), |(w, c), r| match r.confidence_mean {
                Some(m) => (w + m * r.confidence_count as f64, c + r.confidence_count),
                None => (w, c),
            });
        if count > 0 {
            line.push((x + bar_w / 2.0, y(weighted / count as f64, 1.0)));
        }
        // Dates under the axis: as many as fit without overlapping.
        let every = ((dates.len() as f64 * 80.0 / plot_w).ceil() as usize).max(1);
        if i % every == 0 {
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
                n(x + bar_w / 2.0),
                n(bottom + 16.0),
                escape(date)
            );
        }
    }
    if !line.is_empty() {
        let points: Vec<String> = line
            .iter()
            .map(|(x, y)| format!("{},{}", n(*x), n(*y)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{LINE_COLOR}\" stroke-width=\"2\"/>",
            points.join(" ")
        );
        for (x, y) in &line {
            let _ = writeln!(
                s,
                "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{LINE_COLOR}\"/>",
                n(*x),
                n(*y)
            );
        }
    }
    let _ = writeln!(
        s,
        "<line x1=\"{l}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#888\"/>",
        l = n(LEFT),
        r = n(LEFT + plot_w),
        b = n(bottom)
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(date: &str, model: &str, decisions: u64, mean: Option<f64>) -> ModelDayMetrics {
        ModelDayMetrics {
            tenant_id: "t".into(),
            date: date.into(),
            model_name: model.into(),
            model_version: if model.is_empty() { "" } else { "1" }.into(),
            decisions,
            confidence_count: if mean.is_some() { decisions } else { 0 },
            confidence_mean: mean,
            ..ModelDayMetrics::default()
        }
    }

    #[test]
    fn cells_read_well() {
        assert_eq!(percent(Some(0.1234)), "12.3%");
        assert_eq!(percent(None), "–");
        assert_eq!(confidence(Some(0.91234)), "0.912");
        let labels: BTreeMap<String, u64> = [("approve", 5), ("deny", 3), ("refer", 1), ("x", 1)]
            .into_iter()
            .map(|(l, n)| (l.to_string(), n))
            .collect();
        assert_eq!(top_labels(&labels, 10, 2), "approve 50.0%, deny 30.0%, +2");
        assert_eq!(top_labels(&BTreeMap::new(), 0, 3), "");
        assert_eq!(model(&row("2026-03-01", "", 0, None)), "(unattributed)");
        let dates: Vec<String> = ["2026-02-28", "2026-03-01", "2026-03-02", "2026-03-05"]
            .map(String::from)
            .to_vec();
        assert_eq!(date_runs(&dates), "2026-02-28..2026-03-02, 2026-03-05");
        assert_eq!(date_runs(&[]), "");
        assert_eq!(
            [0, 1, 3, 10, 11, 200, 501].map(nice_ceiling),
            [1, 1, 5, 10, 20, 200, 1000]
        );
    }

    #[test]
    fn the_chart_stacks_a_bar_per_model_and_day_and_escapes_names() {
        let dates: Vec<String> = ["2026-03-01", "2026-03-02", "2026-03-03"]
            .map(String::from)
            .to_vec();
        let rows = vec![
            row("2026-03-01", "a<script>", 30, Some(0.8)),
            row("2026-03-01", "b", 10, Some(0.4)),
            row("2026-03-03", "b", 5, None),
            row("2026-03-03", "", 0, None),
        ];
        let series = series(&rows);
        assert_eq!(
            series.iter().map(|s| s.label.as_str()).collect::<Vec<_>>(),
            ["a<script> 1", "b 1"]
        );
        let svg = chart_svg(&dates, &rows, &series);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<rect ").count(), 3, "{svg}");
        assert!(svg.contains("a&lt;script&gt; 1: 30 decisions"), "{svg}");
        assert!(!svg.contains("<script"), "{svg}");
        // Day 1's mean over both models, weighted: (30·0.8 + 10·0.4) / 40 = 0.7; day 3 has no
        // confidences, so the line has one point.
        assert_eq!(svg.matches("<circle ").count(), 1, "{svg}");
        let plot_h = HEIGHT - TOP - BOTTOM;
        let expected_y = n(TOP + plot_h - 0.7 * plot_h);
        assert!(svg.contains(&format!("cy=\"{expected_y}\"")), "{svg}");
        // The axis tops at 50 (the busiest day has 40).
        assert!(svg.contains(">50</text>"), "{svg}");
        // No days at all still draws an empty, valid chart.
        assert!(chart_svg(&[], &[], &[]).contains("</svg>"));
    }
}
