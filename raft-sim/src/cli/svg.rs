//! A small hand-written SVG line chart: axes, ticks, grid, polylines and a legend.

use std::fmt::Write as _;

/// One polyline of the chart.
#[derive(Clone, Debug)]
pub(crate) struct Series {
    pub(crate) label: String,
    /// Points in data coordinates.
    pub(crate) points: Vec<(f64, f64)>,
}

/// How the x axis maps values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scale {
    Linear,
    Log,
}

/// A line chart in data coordinates.
#[derive(Clone, Debug)]
pub(crate) struct Chart {
    pub(crate) title: String,
    pub(crate) subtitle: String,
    pub(crate) x_label: String,
    pub(crate) y_label: String,
    pub(crate) x_range: (f64, f64),
    pub(crate) x_scale: Scale,
    pub(crate) y_range: (f64, f64),
    /// Where to put y ticks.
    pub(crate) y_ticks: Vec<f64>,
    pub(crate) series: Vec<Series>,
}

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 540.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 70.0;
const BOTTOM: f64 = 70.0;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Ticks at 1, 2 and 5 times powers of ten, about `wanted` of them across `range`.
pub(crate) fn linear_ticks(range: (f64, f64), wanted: usize) -> Vec<f64> {
    let span = range.1 - range.0;
    if !span.is_finite() || span <= 0.0 {
        return vec![range.0];
    }
    let rough = span / wanted.max(1) as f64;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * power)
        .find(|step| *step >= rough)
        .unwrap_or(10.0 * power);
    let mut ticks = Vec::new();
    let mut tick = (range.0 / step).ceil() * step;
    while tick <= range.1 + step * 1e-9 && ticks.len() < 100 {
        ticks.push(tick);
        tick += step;
    }
    ticks
}

/// Ticks at 1, 2 and 5 times every power of ten within `range` (positive).
fn log_ticks(range: (f64, f64)) -> Vec<f64> {
    let mut ticks = Vec::new();
    let first = range.0.log10().floor() as i32;
    let last = range.1.log10().ceil() as i32;
    for exponent in first..=last {
        for factor in [1.0, 2.0, 5.0] {
            let tick = factor * 10f64.powi(exponent);
            if tick >= range.0 * (1.0 - 1e-9) && tick <= range.1 * (1.0 + 1e-9) {
                ticks.push(tick);
            }
        }
    }
    ticks
}

/// A tick label without trailing zeros: 100, 2.5, 10000.
fn number(value: f64) -> String {
    if value.fract().abs() < 1e-9 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

impl Chart {
    fn plot_width(&self) -> f64 {
        WIDTH - LEFT - RIGHT
    }

    fn plot_height(&self) -> f64 {
        HEIGHT - TOP - BOTTOM
    }

    fn x(&self, value: f64) -> f64 {
        let (low, high) = self.x_range;
        let share = match self.x_scale {
            Scale::Linear => (value - low) / (high - low),
            Scale::Log => (value.max(low).ln() - low.ln()) / (high.ln() - low.ln()),
        };
        LEFT + share.clamp(0.0, 1.0) * self.plot_width()
    }

    fn y(&self, value: f64) -> f64 {
        let (low, high) = self.y_range;
        let share = ((value - low) / (high - low)).clamp(0.0, 1.0);
        TOP + (1.0 - share) * self.plot_height()
    }

    /// The chart as a standalone SVG document.
    pub(crate) fn render(&self) -> String {
        let mut svg = String::new();
        // Writing to a String cannot fail.
        let _ = self.write(&mut svg);
        svg
    }

    fn write(&self, svg: &mut String) -> std::fmt::Result {
        writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif" font-size="13">"#
        )?;
        writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#)?;
        writeln!(
            svg,
            r#"<text x="{}" y="28" text-anchor="middle" font-size="17" font-weight="bold">{}</text>"#,
            WIDTH / 2.0,
            escape(&self.title)
        )?;
        writeln!(
            svg,
            r##"<text x="{}" y="48" text-anchor="middle" font-size="12" fill="#555">{}</text>"##,
            WIDTH / 2.0,
            escape(&self.subtitle)
        )?;
        let (left, right) = (LEFT, WIDTH - RIGHT);
        let (top, bottom) = (TOP, HEIGHT - BOTTOM);
        // Grid and y ticks.
        for &tick in &self.y_ticks {
            let y = self.y(tick);
            writeln!(
                svg,
                r##"<line x1="{left}" y1="{y:.1}" x2="{right}" y2="{y:.1}" stroke="#e0e0e0"/>"##
            )?;
            writeln!(
                svg,
                r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                left - 8.0,
                y + 4.0,
                number(tick)
            )?;
        }
        // Grid and x ticks.
        let x_ticks = match self.x_scale {
            Scale::Linear => linear_ticks(self.x_range, 10),
            Scale::Log => log_ticks(self.x_range),
        };
        for tick in x_ticks {
            let x = self.x(tick);
            writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}" stroke="#e0e0e0"/>"##
            )?;
            writeln!(
                svg,
                r#"<line x1="{x:.1}" y1="{bottom}" x2="{x:.1}" y2="{}" stroke="black"/>"#,
                bottom + 5.0
            )?;
            writeln!(
                svg,
                r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
                bottom + 20.0,
                number(tick)
            )?;
        }
        // Axes.
        writeln!(
            svg,
            r#"<polyline points="{left},{top} {left},{bottom} {right},{bottom}" fill="none" stroke="black"/>"#
        )?;
        writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            (left + right) / 2.0,
            HEIGHT - 22.0,
            escape(&self.x_label)
        )?;
        writeln!(
            svg,
            r#"<text x="22" y="{}" text-anchor="middle" transform="rotate(-90 22 {})">{}</text>"#,
            (top + bottom) / 2.0,
            (top + bottom) / 2.0,
            escape(&self.y_label)
        )?;
        // Series.
        for (position, series) in self.series.iter().enumerate() {
            let color = COLORS[position % COLORS.len()];
            let mut points = String::new();
            for &(x, y) in &series.points {
                write!(points, "{:.1},{:.1} ", self.x(x), self.y(y))?;
            }
            writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.8"/>"#,
                points.trim_end()
            )?;
        }
        // Legend, bottom right, where cumulative curves leave room.
        let rows = self.series.len() as f64;
        let box_width = 150.0;
        let box_height = 12.0 + rows * 20.0;
        let box_left = right - box_width - 12.0;
        let box_top = bottom - box_height - 12.0;
        writeln!(
            svg,
            r##"<rect x="{box_left}" y="{box_top}" width="{box_width}" height="{box_height}" fill="white" fill-opacity="0.9" stroke="#999"/>"##
        )?;
        for (position, series) in self.series.iter().enumerate() {
            let color = COLORS[position % COLORS.len()];
            let y = box_top + 18.0 + position as f64 * 20.0;
            writeln!(
                svg,
                r#"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="{color}" stroke-width="3"/>"#,
                box_left + 10.0,
                box_left + 38.0
            )?;
            writeln!(
                svg,
                r#"<text x="{}" y="{}">{}</text>"#,
                box_left + 46.0,
                y + 4.0,
                escape(&series.label)
            )?;
        }
        writeln!(svg, "</svg>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks() {
        assert_eq!(
            linear_ticks((0.0, 100.0), 5),
            [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
        assert_eq!(log_ticks((100.0, 1000.0)), [100.0, 200.0, 500.0, 1000.0]);
    }

    // The document is an SVG with one polyline per series and a legend entry each.
    #[test]
    fn renders() {
        let chart = Chart {
            title: "t <1>".into(),
            subtitle: String::new(),
            x_label: "ms".into(),
            y_label: "%".into(),
            x_range: (0.0, 10.0),
            x_scale: Scale::Linear,
            y_range: (0.0, 100.0),
            y_ticks: vec![0.0, 50.0, 100.0],
            series: vec![Series {
                label: "a".into(),
                points: vec![(0.0, 0.0), (5.0, 50.0), (10.0, 100.0)],
            }],
        };
        let svg = chart.render();
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("t &lt;1&gt;"));
        assert_eq!(svg.matches("stroke-width=\"1.8\"").count(), 1);
    }
}
