//! Learning-curve charts for the local mode: (env steps, mean return) points rendered as a PNG by a
//! tiny rasterizer with an embedded 5×7 bitmap font. Pure: it returns the PNG's bytes and writes nothing.

/// One curve: (env steps, mean return) points in order; an optional horizontal target line.
#[derive(Debug, Clone, Copy)]
pub struct Curve<'a> {
    pub title: &'a str,
    pub points: &'a [(f64, f64)],
    pub target: Option<f64>,
    pub x_label: &'a str,
    pub y_label: &'a str,
}

type Rgb = [u8; 3];
const INK: Rgb = [40, 40, 40];
const GRID: Rgb = [228, 228, 228];
const MUTED: Rgb = [150, 150, 150];
const LINE: Rgb = [31, 100, 200];
const TARGET: Rgb = [214, 39, 40];
/// A glyph's advance and height at scale 1, in pixels.
const ADVANCE: i64 = 6;
const GLYPH_H: i64 = 7;

/// PNG bytes of the chart, `width`×`height` pixels (a zero dimension is taken as one pixel).
/// Points with a NaN or infinite coordinate are skipped; without points the chart says so.
pub fn render_png(curve: &Curve, width: u32, height: u32) -> Vec<u8> {
    let (w, h) = (i64::from(width.max(1)), i64::from(height.max(1)));
    let rgb = vec![255; (w * h * 3) as usize];
    let mut c = Canvas { w, h, rgb };
    let finite = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
    let pts: Vec<(f64, f64)> = curve.points.iter().copied().filter(finite).collect();
    let target = curve.target.filter(|t| t.is_finite());
    let l = Layout::new(&pts, target, w);
    let (left, right, top, bottom) = (l.left, l.right(w), TOP, l.bottom(h));

    // The title, centred; at single size (and cut short) where it does not fit at double size.
    let s = if text_width(curve.title, 2) <= w - 8 { 2 } else { 1 };
    let title: String = curve
        .title
        .chars()
        .take(((w - 4) / (ADVANCE * s)).max(0) as usize)
        .collect();
    let at = ((w - text_width(&title, s)) / 2, (TOP - GLYPH_H * s) / 2 - 2);
    c.text(&title, at, s, false, INK);
    let at = ((left + right - text_width(curve.x_label, 1)) / 2, h - GLYPH_H - 6);
    c.text(curve.x_label, at, 1, false, INK);
    let at = (6, (top + bottom + text_width(curve.y_label, 1)) / 2);
    c.text(curve.y_label, at, 1, true, INK);

    if pts.is_empty() {
        c.hline(left, right, bottom, INK);
        c.vline(left, top, bottom, INK);
        let msg = "no progress yet";
        let s = if text_width(msg, 2) <= right - left - 8 { 2 } else { 1 };
        let at = (
            (left + right - text_width(msg, s)) / 2,
            (top + bottom - GLYPH_H * s) / 2,
        );
        c.text(msg, at, s, false, MUTED);
        return c.encode();
    }

    // The grid, ticks and tick labels; a label that would overlap the previous one is left out.
    let mut last_end = i64::MIN;
    for v in l.x.ticks() {
        let (x, label) = (l.px(v, w).round() as i64, fmt_tick(v, l.x.step));
        c.vline(x, top, bottom, GRID);
        c.vline(x, bottom + 1, bottom + 4, INK);
        let start = x - text_width(&label, 1) / 2;
        if start > last_end + ADVANCE {
            c.text(&label, (start, bottom + 8), 1, false, INK);
            last_end = start + text_width(&label, 1);
        }
    }
    let mut last_y = i64::MAX;
    for v in l.y.ticks() {
        let (y, label) = (l.py(v, h).round() as i64, fmt_tick(v, l.y.step));
        c.hline(left, right, y, GRID);
        c.hline(left - 4, left - 1, y, INK);
        if y + GLYPH_H + 2 < last_y {
            c.text(
                &label,
                (left - 7 - text_width(&label, 1), y - GLYPH_H / 2),
                1,
                false,
                INK,
            );
            last_y = y;
        }
    }
    c.hline(left, right, bottom, INK);
    c.vline(left, top, bottom, INK);

    // The target, dashed, under the curve, 2 px wide, with a marker at its last point.
    let target_y = target.map(|t| l.py(t, h).round() as i64);
    if let Some(y) = target_y {
        for x in (left + 1..=right).filter(|x| (x - left) % 10 < 6) {
            c.rect(x, y, 1, 2, TARGET);
        }
    }
    let at = |(x, y): (f64, f64)| (l.px(x, w), l.py(y, h));
    for pair in pts.windows(2) {
        c.line(at(pair[0]), at(pair[1]), LINE);
    }
    let (x, y) = at(pts[pts.len() - 1]);
    for (dx, dy) in (-4..=4)
        .flat_map(|dx| (-4..=4).map(move |dy| (dx, dy)))
        .filter(|(x, y)| x * x + y * y <= 16)
    {
        c.set(x.round() as i64 + dx, y.round() as i64 + dy, LINE);
    }

    // The target's label: beside its line, at the first end and side the curve leaves clear.
    if let Some(y) = target_y {
        let tw = text_width("target", 1);
        let above = if y - GLYPH_H - 3 > top { y - GLYPH_H - 3 } else { y + 5 };
        let below = if y + 5 + GLYPH_H < bottom { y + 5 } else { above };
        let spots = [
            (left + 6, above),
            (right - tw - 4, above),
            (left + 6, below),
            (right - tw - 4, below),
        ];
        let clear = |&(x0, y0): &(i64, i64)| {
            !(y0 - 1..y0 + GLYPH_H + 1).any(|y| (x0 - 1..x0 + tw + 1).any(|x| c.get(x, y) == LINE))
        };
        let spot = spots.iter().copied().find(clear).unwrap_or(spots[1]);
        c.text("target", spot, 1, false, TARGET);
    }
    c.encode()
}

/// The plot area's top edge: below the title.
const TOP: i64 = 34;

/// Where the plot area lies in the image and which data ranges its edges stand for.
struct Layout {
    left: i64,
    right_pad: i64,
    x: Axis,
    y: Axis,
}

impl Layout {
    fn new(pts: &[(f64, f64)], target: Option<f64>, w: i64) -> Layout {
        let (mut x_lo, mut x_hi, mut y_lo, mut y_hi) = (0.0f64, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for &(x, y) in pts.iter().chain(target.map(|t| (0.0, t)).iter()) {
            (x_lo, x_hi, y_lo, y_hi) = (x_lo.min(x), x_hi.max(x), y_lo.min(y), y_hi.max(y));
        }
        let (x, y) = if pts.is_empty() && target.is_none() {
            (Axis::nice(0.0, 1.0), Axis::nice(0.0, 1.0))
        } else {
            (Axis::nice(x_lo, x_hi), Axis::nice(y_lo, y_hi))
        };
        let widest = |a: &Axis| a.ticks().iter().map(|v| text_width(&fmt_tick(*v, a.step), 1)).max();
        let left = (6 + GLYPH_H + 8 + widest(&y).unwrap_or(0) + 8).min(w / 3);
        let right_pad = (text_width(&fmt_tick(x.hi, x.step), 1) / 2 + 6).max(16);
        Layout { left, right_pad, x, y }
    }
    fn right(&self, w: i64) -> i64 {
        (w - 1 - self.right_pad).max(self.left + 1)
    }
    fn bottom(&self, h: i64) -> i64 {
        (h - 1 - 38).max(TOP + 1)
    }
    fn px(&self, x: f64, w: i64) -> f64 {
        self.left as f64 + self.x.frac(x) * (self.right(w) - self.left) as f64
    }
    fn py(&self, y: f64, h: i64) -> f64 {
        self.bottom(h) as f64 - self.y.frac(y) * (self.bottom(h) - TOP) as f64
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
    fn frac(&self, v: f64) -> f64 {
        (v - self.lo) / (self.hi - self.lo)
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

fn text_width(text: &str, scale: i64) -> i64 {
    (text.chars().count() as i64 * ADVANCE - 1).max(0) * scale
}

/// An RGB image being drawn on; whatever falls outside it is clipped.
struct Canvas {
    w: i64,
    h: i64,
    rgb: Vec<u8>,
}

impl Canvas {
    fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if (0..self.w).contains(&x) && (0..self.h).contains(&y) {
            let i = ((y * self.w + x) * 3) as usize;
            self.rgb[i..i + 3].copy_from_slice(&c);
        }
    }
    fn get(&self, x: i64, y: i64) -> Rgb {
        let i = ((y.clamp(0, self.h - 1) * self.w + x.clamp(0, self.w - 1)) * 3) as usize;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
    fn rect(&mut self, x0: i64, y0: i64, w: i64, h: i64, c: Rgb) {
        for y in y0.max(0)..(y0 + h).min(self.h) {
            for x in x0.max(0)..(x0 + w).min(self.w) {
                self.set(x, y, c);
            }
        }
    }
    fn hline(&mut self, x0: i64, x1: i64, y: i64, c: Rgb) {
        self.rect(x0, y, x1 - x0 + 1, 1, c);
    }
    fn vline(&mut self, x: i64, y0: i64, y1: i64, c: Rgb) {
        self.rect(x, y0, 1, y1 - y0 + 1, c);
    }
    /// A 2-px line from `a` to `b`.
    fn line(&mut self, a: (f64, f64), b: (f64, f64), c: Rgb) {
        let n = (b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil().clamp(1.0, 1e5) as i64;
        for i in 0..=n {
            let t = i as f64 / n as f64;
            let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
            self.rect((x - 0.5).round() as i64, (y - 0.5).round() as i64, 2, 2, c);
        }
    }
    /// `text` with its top-left corner at (x, y), each font pixel `scale`×`scale`; `up` turns it a
    /// quarter anticlockwise, to read upwards from (x, y), its bottom-left corner.
    fn text(&mut self, text: &str, (x, y): (i64, i64), scale: i64, up: bool, c: Rgb) {
        for (i, ch) in text.chars().enumerate() {
            for (row, bits) in glyph(ch).iter().enumerate() {
                for (col, _) in bits.bytes().enumerate().filter(|(_, b)| *b == b'#') {
                    let (along, across) = (i as i64 * ADVANCE + col as i64, row as i64);
                    let (px, py) = if up {
                        (x + across * scale, y - (along + 1) * scale)
                    } else {
                        (x + along * scale, y + across * scale)
                    };
                    self.rect(px, py, scale, scale, c);
                }
            }
        }
    }
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.w as u32, self.h as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc.write_header().expect("a PNG header writes to memory");
            writer
                .write_image_data(&self.rgb)
                .expect("the image data matches the header");
        }
        out
    }
}

fn glyph(ch: char) -> &'static [&'static str; 7] {
    FONT.iter()
        .find(|(c, _)| *c == ch)
        .or_else(|| FONT.iter().find(|(c, _)| *c == '?'))
        .map(|(_, g)| g)
        .unwrap()
}

/// The 5×7 font: one glyph a line, its rows top to bottom, `#` for ink.
const FONT: &[(char, [&str; 7])] = &[
    ('0', [".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."]),
    ('1', ["..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."]),
    ('2', [".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"]),
    ('3', ["#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."]),
    ('4', ["...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."]),
    ('5', ["#####", "#....", "####.", "....#", "....#", "#...#", ".###."]),
    ('6', ["..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."]),
    ('7', ["#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."]),
    ('8', [".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."]),
    ('9', [".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."]),
    ('a', [".....", ".....", ".###.", "....#", ".####", "#...#", ".####"]),
    ('b', ["#....", "#....", "#.##.", "##..#", "#...#", "#...#", "####."]),
    ('c', [".....", ".....", ".###.", "#....", "#....", "#...#", ".###."]),
    ('d', ["....#", "....#", ".##.#", "#..##", "#...#", "#...#", ".####"]),
    ('e', [".....", ".....", ".###.", "#...#", "#####", "#....", ".###."]),
    ('f', ["..##.", ".#..#", ".#...", "###..", ".#...", ".#...", ".#..."]),
    ('g', [".....", ".....", ".####", "#...#", ".####", "....#", ".###."]),
    ('h', ["#....", "#....", "#.##.", "##..#", "#...#", "#...#", "#...#"]),
    ('i', ["..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###."]),
    ('j', ["...#.", ".....", "..##.", "...#.", "...#.", "#..#.", ".##.."]),
    ('k', ["#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#."]),
    ('l', [".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."]),
    ('m', [".....", ".....", "##.#.", "#.#.#", "#.#.#", "#...#", "#...#"]),
    ('n', [".....", ".....", "#.##.", "##..#", "#...#", "#...#", "#...#"]),
    ('o', [".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###."]),
    ('p', [".....", ".....", "####.", "#...#", "####.", "#....", "#...."]),
    ('q', [".....", ".....", ".##.#", "#..##", ".####", "....#", "....#"]),
    ('r', [".....", ".....", "#.##.", "##..#", "#....", "#....", "#...."]),
    ('s', [".....", ".....", ".###.", "#....", ".###.", "....#", "####."]),
    ('t', [".#...", ".#...", "###..", ".#...", ".#...", ".#..#", "..##."]),
    ('u', [".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#"]),
    ('v', [".....", ".....", "#...#", "#...#", "#...#", ".#.#.", "..#.."]),
    ('w', [".....", ".....", "#...#", "#...#", "#.#.#", "#.#.#", ".#.#."]),
    ('x', [".....", ".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#"]),
    ('y', [".....", ".....", "#...#", "#...#", ".####", "....#", ".###."]),
    ('z', [".....", ".....", "#####", "...#.", "..#..", ".#...", "#####"]),
    ('A', [".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"]),
    ('B', ["####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."]),
    ('C', [".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."]),
    ('D', ["###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###.."]),
    ('E', ["#####", "#....", "#....", "####.", "#....", "#....", "#####"]),
    ('F', ["#####", "#....", "#....", "####.", "#....", "#....", "#...."]),
    ('G', [".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"]),
    ('H', ["#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"]),
    ('I', [".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."]),
    ('J', ["..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."]),
    ('K', ["#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"]),
    ('L', ["#....", "#....", "#....", "#....", "#....", "#....", "#####"]),
    ('M', ["#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"]),
    ('N', ["#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"]),
    ('O', [".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."]),
    ('P', ["####.", "#...#", "#...#", "####.", "#....", "#....", "#...."]),
    ('Q', [".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"]),
    ('R', ["####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"]),
    ('S', [".####", "#....", "#....", ".###.", "....#", "....#", "####."]),
    ('T', ["#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."]),
    ('U', ["#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."]),
    ('V', ["#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."]),
    ('W', ["#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."]),
    ('X', ["#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"]),
    ('Y', ["#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."]),
    ('Z', ["#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"]),
    (' ', [".....", ".....", ".....", ".....", ".....", ".....", "....."]),
    ('.', [".....", ".....", ".....", ".....", ".....", ".##..", ".##.."]),
    (',', [".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."]),
    (':', [".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."]),
    ('-', [".....", ".....", ".....", "#####", ".....", ".....", "....."]),
    ('+', [".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."]),
    ('=', [".....", ".....", "#####", ".....", "#####", ".....", "....."]),
    ('_', [".....", ".....", ".....", ".....", ".....", ".....", "#####"]),
    ('/', [".....", "....#", "...#.", "..#..", ".#...", "#....", "....."]),
    ('(', ["...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."]),
    (')', [".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."]),
    ('%', ["##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"]),
    ('?', [".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."]),
];

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

    /// Decodes a PNG into its width, height and RGB bytes.
    fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let mut reader = png::Decoder::new(bytes).read_info().expect("a PNG");
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).expect("a frame");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        (info.width, info.height, buf)
    }

    fn has(img: &(u32, u32, Vec<u8>), xs: std::ops::RangeInclusive<i64>, y: i64, c: Rgb) -> bool {
        xs.filter(|x| (0..img.0 as i64).contains(x))
            .any(|x| img.2[((y * img.0 as i64 + x) * 3) as usize..][..3] == c)
    }

    #[test]
    fn decodes_to_the_requested_size() {
        for (w, h) in [(640, 400), (300, 200), (1, 1)] {
            let img = decode(&render_png(&curve(PTS, Some(400.0)), w, h));
            assert_eq!((img.0, img.1), (w, h));
        }
        assert_eq!(decode(&render_png(&curve(PTS, None), 0, 0)).0, 1);
    }

    #[test]
    fn the_line_reaches_the_last_point_and_the_target_is_drawn_at_its_row() {
        let img = decode(&render_png(&curve(PTS, Some(475.0)), 640, 400));
        let l = Layout::new(PTS, Some(475.0), 640);
        let (x, y) = (l.px(1e5, 640).round() as i64, l.py(410.0, 400).round() as i64);
        assert!(
            (y - 3..=y + 3).any(|y| has(&img, x - 3..=x + 3, y, LINE)),
            "no line near ({x}, {y})"
        );
        let (ty, xs) = (l.py(475.0, 400).round() as i64, l.left..=l.right(640));
        assert!(has(&img, xs.clone(), ty, TARGET), "no target on row {ty}");
        assert!(!has(&img, xs, ty + 12, TARGET));
    }

    #[test]
    fn edge_cases_render_without_panicking() {
        let (nan, inf) = (f64::NAN, f64::INFINITY);
        let cases: &[&[(f64, f64)]] = &[
            &[],
            &[(1000.0, 5.0)],
            &[(0.0, 3.0), (10.0, 3.0), (20.0, 3.0)],
            &[(0.0, -500.0), (5e5, -120.5), (1.5e6, -3.0)],
            &[(nan, 1.0), (1.0, inf), (2.0, 2.0), (-inf, 0.0), (3.0, 4.0)],
            &[(nan, nan)],
            &[(0.0, 1e300), (1.0, -1e300)],
        ];
        for pts in cases {
            for target in [None, Some(0.0), Some(nan)] {
                for (w, h) in [(640, 400), (40, 30), (2, 2)] {
                    let img = decode(&render_png(&curve(pts, target), w, h));
                    assert_eq!((img.0, img.1), (w, h));
                }
            }
        }
        let empty = decode(&render_png(&curve(&[], None), 640, 400));
        assert!((0..400).any(|y| has(&empty, 0..=639, y, MUTED)), "no 'no progress yet'");
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
