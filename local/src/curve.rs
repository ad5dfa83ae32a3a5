//! Learning-curve charts for the local mode: (env steps, mean return) points drawn as an SVG image
//! that any browser opens. Its text is set by the viewer, so no font is embedded. Pure: it returns
//! the SVG's text and writes nothing.

use std::fmt::{self, Write as _};

/// One curve: (env steps, mean return) points in order; an optional horizontal target line.
#[derive(Debug, Clone, Copy)]
pub struct Curve<'a> {
    pub title: &'a str,
    pub points: &'a [(f64, f64)],
    pub target: Option<f64>,
    pub x_label: &'a str,
    pub y_label: &'a str,
}

const INK: &str = "#282828";
const GRID: &str = "#e4e4e4";
const MUTED: &str = "#969696";
const LINE: &str = "#1f64c8";
const TARGET: &str = "#d62728";
/// Font size of the title and of every other text, in pixels.
const TITLE_SIZE: f64 = 16.0;
const FONT_SIZE: f64 = 12.0;
/// A generous advance of one character at `FONT_SIZE`, to leave room for text the viewer sets.
const ADVANCE: f64 = 7.0;
/// The plot area's top edge (below the title) and the room under it (tick labels, the x label).
const TOP: f64 = 36.0;
const BOTTOM_PAD: f64 = 44.0;

/// Appends one line of SVG to a `String`, formatted as by `format!`.
macro_rules! put {
    ($svg:expr, $($arg:tt)*) => {{
        let _ = writeln!($svg, $($arg)*);
    }};
}

/// The SVG of the chart, `width`×`height` pixels (a zero dimension is taken as one pixel).
/// Points with a NaN or infinite coordinate are skipped; without points the chart says so.
pub fn render_svg(curve: &Curve, width: u32, height: u32) -> String {
    let (width, height) = (width.max(1), height.max(1));
    let (w, h) = (f64::from(width), f64::from(height));
    let finite = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
    let pts: Vec<(f64, f64)> = curve.points.iter().copied().filter(finite).collect();
    let target = curve.target.filter(|t| t.is_finite());
    let l = Layout::new(&pts, target, w, h);
    let (left, right, top, bottom) = (l.left, l.right, TOP, l.bottom);
    let (mid_x, mid_y) = (Px((left + right) / 2.0), Px((top + bottom) / 2.0));

    let mut svg = String::new();
    let s = &mut svg;
    put!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    put!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="{FONT_SIZE}" fill="{INK}">"#
    );
    put!(s, "<title>{}</title>", Escaped(curve.title));
    put!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    put!(
        s,
        r#"<text class="title" x="{}" y="{}" text-anchor="middle" font-size="{TITLE_SIZE}">{}</text>"#,
        Px(w / 2.0),
        Px(TOP / 2.0 + 6.0),
        Escaped(curve.title)
    );
    put!(
        s,
        r#"<text class="x-label" x="{mid_x}" y="{}" text-anchor="middle">{}</text>"#,
        Px(h - 10.0),
        Escaped(curve.x_label)
    );
    put!(
        s,
        r#"<text class="y-label" transform="translate({} {mid_y}) rotate(-90)" text-anchor="middle">{}</text>"#,
        Px(6.0 + FONT_SIZE),
        Escaped(curve.y_label)
    );

    if pts.is_empty() {
        axes(s, &l, false);
        put!(
            s,
            r#"<text class="empty" x="{mid_x}" y="{mid_y}" text-anchor="middle" font-size="{TITLE_SIZE}" fill="{MUTED}">no progress yet</text>"#
        );
        put!(s, "</svg>");
        return svg;
    }

    // The grid and the tick labels; a label that would overlap the previous one is left out.
    put!(s, r#"<g class="grid" stroke="{GRID}">"#);
    for x in l.x.ticks().into_iter().map(|v| Px(l.px(v))) {
        put!(s, r#"<line x1="{x}" y1="{}" x2="{x}" y2="{}"/>"#, Px(top), Px(bottom));
    }
    for y in l.y.ticks().into_iter().map(|v| Px(l.py(v))) {
        put!(s, r#"<line x1="{}" y1="{y}" x2="{}" y2="{y}"/>"#, Px(left), Px(right));
    }
    put!(s, "</g>");
    put!(s, r#"<g class="tick-labels">"#);
    let mut last_end = f64::NEG_INFINITY;
    for v in l.x.ticks() {
        let (x, label) = (l.px(v), fmt_tick(v, l.x.step));
        let half = text_width(&label) / 2.0;
        if x - half > last_end + ADVANCE {
            let y = Px(bottom + 8.0 + FONT_SIZE);
            put!(
                s,
                r#"<text class="x-tick" x="{}" y="{y}" text-anchor="middle">{label}</text>"#,
                Px(x)
            );
            last_end = x + half;
        }
    }
    let mut last_y = f64::INFINITY;
    for v in l.y.ticks() {
        let (y, label) = (l.py(v), fmt_tick(v, l.y.step));
        if y + FONT_SIZE + 2.0 < last_y {
            let (x, base) = (Px(left - 8.0), Px(y + FONT_SIZE / 3.0));
            put!(
                s,
                r#"<text class="y-tick" x="{x}" y="{base}" text-anchor="end">{label}</text>"#
            );
            last_y = y;
        }
    }
    put!(s, "</g>");
    axes(s, &l, true);

    // The target, dashed, under the curve; the curve; a marker at its last point.
    let at: Vec<(f64, f64)> = pts.iter().map(|&(x, y)| (l.px(x), l.py(y))).collect();
    let target_y = target.map(|t| l.py(t));
    if let Some(y) = target_y {
        put!(
            s,
            r#"<line class="target" x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="{TARGET}" stroke-width="2" stroke-dasharray="6 4"/>"#,
            Px(left),
            Px(right),
            y = Px(y)
        );
    }
    let points: Vec<String> = at.iter().map(|&(x, y)| format!("{},{}", Px(x), Px(y))).collect();
    put!(
        s,
        r#"<polyline class="curve" points="{}" fill="none" stroke="{LINE}" stroke-width="2" stroke-linejoin="round"/>"#,
        points.join(" ")
    );
    let (x, y) = at[at.len() - 1];
    put!(
        s,
        r#"<circle class="last" cx="{}" cy="{}" r="4" fill="{LINE}"/>"#,
        Px(x),
        Px(y)
    );

    // The target's label: beside its line, at the first end and side the curve leaves clear.
    if let Some(y) = target_y {
        let tw = text_width("target");
        let above = if y - FONT_SIZE - 4.0 > top {
            y - 5.0
        } else {
            y + FONT_SIZE + 3.0
        };
        let below = if y + FONT_SIZE + 5.0 < bottom {
            y + FONT_SIZE + 3.0
        } else {
            above
        };
        let (start, end) = (left + 6.0, right - tw - 4.0);
        let spots = [(start, above), (end, above), (start, below), (end, below)];
        let clear = |&(x, base): &(f64, f64)| !crosses(&at, (x - 1.0, base - FONT_SIZE), (x + tw + 1.0, base + 2.0));
        let (x, y) = spots.iter().copied().find(clear).unwrap_or(spots[1]);
        put!(
            s,
            r#"<text class="target-label" x="{}" y="{}" fill="{TARGET}">target</text>"#,
            Px(x),
            Px(y)
        );
    }
    put!(s, "</svg>");
    svg
}

/// The x and y axes, with a mark at each tick if `ticks`.
fn axes(svg: &mut String, l: &Layout, ticks: bool) {
    let (left, right, bottom) = (Px(l.left), Px(l.right), Px(l.bottom));
    put!(svg, r#"<g class="axes" stroke="{INK}">"#);
    put!(svg, r#"<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"/>"#);
    put!(svg, r#"<line x1="{left}" y1="{}" x2="{left}" y2="{bottom}"/>"#, Px(TOP));
    if ticks {
        for x in l.x.ticks().into_iter().map(|v| Px(l.px(v))) {
            put!(
                svg,
                r#"<line x1="{x}" y1="{bottom}" x2="{x}" y2="{}"/>"#,
                Px(l.bottom + 4.0)
            );
        }
        for y in l.y.ticks().into_iter().map(|v| Px(l.py(v))) {
            put!(
                svg,
                r#"<line x1="{}" y1="{y}" x2="{left}" y2="{y}"/>"#,
                Px(l.left - 4.0)
            );
        }
    }
    put!(svg, "</g>");
}

/// Whether the polyline through `pts` passes through the box from `lo` to `hi` (checked every pixel).
fn crosses(pts: &[(f64, f64)], lo: (f64, f64), hi: (f64, f64)) -> bool {
    let inside = |(x, y): (f64, f64)| (lo.0..=hi.0).contains(&x) && (lo.1..=hi.1).contains(&y);
    pts.iter().copied().any(inside)
        || pts.windows(2).any(|p| {
            let (a, b) = (p[0], p[1]);
            let n = (b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil().min(10_000.0) as usize;
            (1..n).any(|i| {
                let t = i as f64 / n as f64;
                inside((a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t))
            })
        })
}

/// A coordinate as SVG writes it: one decimal at most, never NaN or infinite (written as 0).
#[derive(Debug, Clone, Copy)]
struct Px(f64);

impl fmt::Display for Px {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = if self.0.is_finite() {
            (self.0 * 10.0).round() / 10.0
        } else {
            0.0
        };
        // No "-0".
        write!(f, "{}", if v == 0.0 { 0.0 } else { v })
    }
}

/// Text with XML's special characters escaped, for an element's content or an attribute; control
/// characters XML 1.0 does not allow become U+FFFD.
#[derive(Debug, Clone, Copy)]
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&apos;")?,
                c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => f.write_char('\u{FFFD}')?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// The estimated width of `text` at `FONT_SIZE`.
fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * ADVANCE
}

/// Where the plot area lies in the image and which data ranges its edges stand for.
struct Layout {
    left: f64,
    right: f64,
    bottom: f64,
    x: Axis,
    y: Axis,
}

impl Layout {
    fn new(pts: &[(f64, f64)], target: Option<f64>, w: f64, h: f64) -> Layout {
        let (mut x_lo, mut x_hi, mut y_lo, mut y_hi) = (0.0f64, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for &(x, y) in pts.iter().chain(target.map(|t| (0.0, t)).iter()) {
            (x_lo, x_hi, y_lo, y_hi) = (x_lo.min(x), x_hi.max(x), y_lo.min(y), y_hi.max(y));
        }
        let (x, y) = if pts.is_empty() && target.is_none() {
            (Axis::nice(0.0, 1.0), Axis::nice(0.0, 1.0))
        } else {
            (Axis::nice(x_lo, x_hi), Axis::nice(y_lo, y_hi))
        };
        let widest = y
            .ticks()
            .iter()
            .map(|v| text_width(&fmt_tick(*v, y.step)))
            .fold(0.0, f64::max);
        let left = (6.0 + FONT_SIZE + 8.0 + widest + 8.0).min(w / 3.0);
        let right_pad = (text_width(&fmt_tick(x.hi, x.step)) / 2.0 + 6.0).max(16.0);
        let right = (w - right_pad).max(left + 1.0);
        let bottom = (h - BOTTOM_PAD).max(TOP + 1.0);
        Layout {
            left,
            right,
            bottom,
            x,
            y,
        }
    }
    /// The horizontal pixel of `x`, kept inside the plot area.
    fn px(&self, x: f64) -> f64 {
        self.left + self.x.frac(x) * (self.right - self.left)
    }
    /// The vertical pixel of `y`, kept inside the plot area.
    fn py(&self, y: f64) -> f64 {
        self.bottom - self.y.frac(y) * (self.bottom - TOP)
    }
}

/// An axis's range, widened to round numbers, and the step between its ticks.
#[derive(Debug, Clone, Copy)]
struct Axis {
    lo: f64,
    hi: f64,
    step: f64,
}

impl Axis {
    /// Round bounds and the 1-2-5 step nearest a fifth of `lo..=hi`, covering it; an empty range is widened.
    fn nice(lo: f64, hi: f64) -> Axis {
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else {
            (lo - (lo.abs() * 0.1).max(1.0), hi + (hi.abs() * 0.1).max(1.0))
        };
        let raw = (hi - lo) / 5.0;
        let mag = 10f64.powf(raw.log10().floor());
        let off = |s: f64| (s / raw).ln().abs();
        let nicest = |a: f64, b: f64| if off(b) < off(a) { b } else { a };
        let step = [2.0, 5.0, 10.0].map(|f| f * mag).into_iter().fold(mag, nicest);
        if !(step.is_finite() && step > 0.0) {
            let step = hi / 5.0 - lo / 5.0;
            return Axis { lo, hi, step };
        }
        let (lo, hi) = ((lo / step).floor() * step, (hi / step).ceil() * step);
        Axis { lo, hi, step }
    }
    fn ticks(&self) -> Vec<f64> {
        let n = ((self.hi - self.lo) / self.step).round().clamp(0.0, 20.0) as usize;
        (0..=n).map(|i| self.lo + i as f64 * self.step).collect()
    }
    /// Where `v` lies from `lo` (0) to `hi` (1), clamped to that; 0 where the range overflows.
    fn frac(&self, v: f64) -> f64 {
        let f = (v - self.lo) / (self.hi - self.lo);
        if f.is_finite() { f.clamp(0.0, 1.0) } else { 0.0 }
    }
}

/// A tick label, compact (20k, 1.5M), with just enough decimals to tell ticks `step` apart.
fn fmt_tick(v: f64, step: f64) -> String {
    let v = if v.abs() < step.abs() * 1e-6 { 0.0 } else { v };
    let (unit, suffix) = match v.abs() {
        a if a >= 1e9 => (1e9, "G"),
        a if a >= 1e6 => (1e6, "M"),
        a if a >= 1e3 => (1e3, "k"),
        _ => (1.0, ""),
    };
    let rel = step.abs() / unit;
    let decimals = (-rel.log10() - 1e-9).ceil().clamp(0.0, 6.0) as usize;
    let mut s = format!("{:.*}", decimals, v / unit);
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    s + suffix
}

#[cfg(test)]
mod tests {
    use super::*;

    const PTS: &[(f64, f64)] = &[(0.0, 20.0), (2e4, 60.0), (4.5e4, 150.0), (8e4, 320.0), (1e5, 410.0)];

    fn curve(points: &[(f64, f64)], target: Option<f64>) -> Curve<'_> {
        Curve {
            title: "CartPole-v1: task demo (PPO)",
            points,
            target,
            x_label: "env steps",
            y_label: "mean return",
        }
    }

    /// Parses `svg` as XML (panicking if it is not well-formed) and hands its document to `check`.
    fn parsed<T>(svg: &str, check: impl FnOnce(&roxmltree::Document) -> T) -> T {
        let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not well-formed XML ({e}):\n{svg}"));
        check(&doc)
    }

    fn by_class<'a, 'i>(doc: &'a roxmltree::Document<'i>, class: &str) -> Vec<roxmltree::Node<'a, 'i>> {
        doc.descendants()
            .filter(|n| n.attribute("class") == Some(class))
            .collect()
    }

    fn attr(node: roxmltree::Node, name: &str) -> f64 {
        node.attribute(name)
            .unwrap_or_else(|| panic!("no {name}"))
            .parse()
            .unwrap()
    }

    /// The (x, y) pairs of the curve's polyline, if there is one.
    fn polyline(doc: &roxmltree::Document) -> Option<Vec<(f64, f64)>> {
        let node = by_class(doc, "curve").into_iter().next()?;
        assert_eq!(node.tag_name().name(), "polyline");
        let points = node.attribute("points").unwrap();
        Some(
            points
                .split(' ')
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect(),
        )
    }

    #[test]
    fn is_an_svg_of_the_requested_size() {
        for (w, h) in [(640, 400), (300, 200), (1, 1)] {
            parsed(&render_svg(&curve(PTS, Some(400.0)), w, h), |doc| {
                let root = doc.root_element();
                assert_eq!(root.tag_name().name(), "svg");
                assert_eq!(root.tag_name().namespace(), Some("http://www.w3.org/2000/svg"));
                assert_eq!(
                    (attr(root, "width"), attr(root, "height")),
                    (f64::from(w), f64::from(h))
                );
                assert_eq!(root.attribute("viewBox"), Some(format!("0 0 {w} {h}").as_str()));
            });
        }
        parsed(&render_svg(&curve(PTS, None), 0, 0), |doc| {
            assert_eq!(doc.root_element().attribute("width"), Some("1"));
        });
    }

    #[test]
    fn has_axes_labels_the_polyline_and_the_target() {
        let svg = render_svg(&curve(PTS, Some(475.0)), 640, 400);
        parsed(&svg, |doc| {
            let axes = by_class(doc, "axes");
            assert_eq!(axes.len(), 1);
            let lines: Vec<_> = axes[0].children().filter(|n| n.has_tag_name("line")).collect();
            let l = Layout::new(PTS, Some(475.0), 640.0, 400.0);
            // The x axis along the bottom, the y axis up the left side.
            let (x_axis, y_axis) = (lines[0], lines[1]);
            let at = |v: f64| Px(v).to_string().parse::<f64>().unwrap();
            assert_eq!((attr(x_axis, "y1"), attr(x_axis, "y2")), (at(l.bottom), at(l.bottom)));
            assert_eq!((attr(x_axis, "x1"), attr(x_axis, "x2")), (at(l.left), at(l.right)));
            assert_eq!((attr(y_axis, "x1"), attr(y_axis, "x2")), (at(l.left), at(l.left)));
            assert_eq!((attr(y_axis, "y1"), attr(y_axis, "y2")), (at(TOP), at(l.bottom)));

            let texts = |class: &str| -> Vec<String> {
                by_class(doc, class)
                    .iter()
                    .map(|n| n.text().unwrap_or_default().to_string())
                    .collect()
            };
            assert_eq!(texts("title"), ["CartPole-v1: task demo (PPO)"]);
            assert_eq!(texts("x-label"), ["env steps"]);
            assert_eq!(texts("y-label"), ["mean return"]);
            assert_eq!(texts("x-tick"), ["0", "20k", "40k", "60k", "80k", "100k"]);
            assert_eq!(texts("y-tick").first().map(String::as_str), Some("0"));

            // One vertex per point, left to right, the last one at the marker and at its place.
            let line = polyline(doc).expect("a polyline");
            assert_eq!(line.len(), PTS.len());
            assert!(line.windows(2).all(|p| p[0].0 < p[1].0));
            let (x, y) = (l.px(1e5), l.py(410.0));
            let last = line[line.len() - 1];
            assert!(
                (last.0 - x).abs() <= 0.05 && (last.1 - y).abs() <= 0.05,
                "{last:?} is not ({x}, {y})"
            );
            let marker = by_class(doc, "last")[0];
            assert_eq!((attr(marker, "cx"), attr(marker, "cy")), last);
            // Higher returns are drawn higher up.
            assert!(line[0].1 > last.1);

            let target = by_class(doc, "target")[0];
            assert_eq!(attr(target, "y1"), at(l.py(475.0)));
            assert_eq!(texts("target-label"), ["target"]);
            assert!(by_class(doc, "empty").is_empty());
        });
        parsed(&render_svg(&curve(PTS, None), 640, 400), |doc| {
            assert!(by_class(doc, "target").is_empty() && by_class(doc, "target-label").is_empty());
        });
    }

    #[test]
    fn text_is_escaped() {
        let mut c = curve(PTS, None);
        c.title = r#"a<b> & "c" 'd' ]]> é"#;
        c.y_label = "\u{7}bell";
        parsed(&render_svg(&c, 640, 400), |doc| {
            assert_eq!(by_class(doc, "title")[0].text(), Some(c.title));
            assert_eq!(by_class(doc, "y-label")[0].text(), Some("\u{FFFD}bell"));
        });
    }

    #[test]
    fn nan_infinite_and_empty_series_are_handled() {
        let (nan, inf) = (f64::NAN, f64::INFINITY);
        let cases: &[&[(f64, f64)]] = &[
            &[],
            &[(1000.0, 5.0)],
            &[(0.0, 3.0), (10.0, 3.0), (20.0, 3.0)],
            &[(0.0, -500.0), (5e5, -120.5), (1.5e6, -3.0)],
            &[(nan, 1.0), (1.0, inf), (2.0, 2.0), (-inf, 0.0), (3.0, 4.0)],
            &[(nan, nan)],
            &[(0.0, 1e300), (1.0, -1e300)],
            &[(0.0, f64::MAX), (1.0, f64::MIN)],
        ];
        for pts in cases {
            let finite = pts.iter().filter(|(x, y)| x.is_finite() && y.is_finite()).count();
            for target in [None, Some(0.0), Some(nan), Some(inf)] {
                for (w, h) in [(640, 400), (40, 30), (2, 2)] {
                    let svg = render_svg(&curve(pts, target), w, h);
                    assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
                    parsed(&svg, |doc| match polyline(doc) {
                        Some(line) => {
                            assert_eq!(line.len(), finite);
                            assert!(line.iter().all(|&(x, y)| (0.0..=f64::from(w)).contains(&x)
                                && (0.0..=f64::from(h.max(80))).contains(&y)));
                        }
                        None => {
                            assert_eq!(finite, 0);
                            assert_eq!(by_class(doc, "empty")[0].text(), Some("no progress yet"));
                            assert_eq!(by_class(doc, "axes").len(), 1);
                        }
                    });
                }
            }
        }
    }

    #[test]
    fn the_target_label_avoids_the_curve() {
        // Just above the target on the left, far above it on the right: the label goes right.
        let pts = [(0.0, 0.0), (1.0, 54.0), (40.0, 54.0), (100.0, 100.0)];
        let l = Layout::new(&pts, Some(50.0), 640.0, 400.0);
        parsed(&render_svg(&curve(&pts, Some(50.0)), 640, 400), |doc| {
            let label = by_class(doc, "target-label")[0];
            assert!(attr(label, "x") > (l.left + l.right) / 2.0);
            assert!(attr(label, "y") < l.py(50.0));
        });
        // Nothing near it: the label goes at the left end.
        let pts = [(0.0, 0.0), (100.0, 10.0)];
        parsed(&render_svg(&curve(&pts, Some(50.0)), 640, 400), |doc| {
            assert!(attr(by_class(doc, "target-label")[0], "x") < 100.0);
        });
    }

    #[test]
    fn ticks_are_round_and_compact() {
        let a = Axis::nice(0.0, 93_000.0);
        assert_eq!((a.lo, a.hi, a.step), (0.0, 100_000.0, 20_000.0));
        let labels: Vec<String> = a.ticks().iter().map(|v| fmt_tick(*v, a.step)).collect();
        assert_eq!(labels, ["0", "20k", "40k", "60k", "80k", "100k"]);
        assert_eq!(fmt_tick(1.5e6, 5e5), "1.5M");
        assert_eq!(fmt_tick(0.25, 0.05), "0.25");
        assert_eq!(fmt_tick(-1e-17, 0.1), "0");
        assert_eq!(fmt_tick(-150.0, 50.0), "-150");
    }
}
