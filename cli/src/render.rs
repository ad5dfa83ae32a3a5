//! How the people's commands show things: aligned tables, amounts of ether, short addresses, times
//! and a sparkline of a learning curve. Pure functions over plain data.

use drlaas_chain::alloy::primitives::{Address, U256, utils::format_ether};

/// A table printed with its columns aligned (two spaces apart), headers first.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column headers.
    pub fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (missing cells are blank, extra ones dropped).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines, each ending with a newline; the last column is not padded.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let cell = |row: &[String], i: usize| row.get(i).cloned().unwrap_or_default();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, width) in widths.iter_mut().enumerate() {
                *width = (*width).max(cell(row, i).chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let text = cell(row, i);
                line.push_str(&text);
                if i + 1 < columns {
                    line.extend(std::iter::repeat_n(' ', width - text.chars().count() + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Eight levels, lowest first.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A sparkline of `values`, one bar per value, scaled from their minimum (▁) to their maximum (█).
/// Values that are not finite are skipped; all-equal values draw a flat line of ▄.
pub fn sparkline(values: &[f64]) -> String {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (min, max) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(*v), hi.max(*v))
    });
    finite
        .iter()
        .map(|v| {
            if max - min <= f64::EPSILON * max.abs().max(1.0) {
                BARS[3]
            } else {
                let level = ((v - min) / (max - min) * 7.0).round() as usize;
                BARS[level.min(7)]
            }
        })
        .collect()
}

/// At most `width` values: `values` split into `width` consecutive buckets, each replaced by its
/// mean, so a long learning curve fits a line and keeps its shape.
pub fn downsample(values: &[f64], width: usize) -> Vec<f64> {
    if width == 0 {
        return Vec::new();
    }
    if values.len() <= width {
        return values.to_vec();
    }
    (0..width)
        .map(|b| {
            let start = b * values.len() / width;
            let end = ((b + 1) * values.len() / width).max(start + 1);
            let bucket = &values[start..end];
            bucket.iter().sum::<f64>() / bucket.len() as f64
        })
        .collect()
}

/// An amount: in ether without trailing zeros (`1.5 ETH`, `0 ETH`), or in wei when below a
/// millionth of an ether (`1000 wei`), where the ether figure would be all zeros.
pub fn eth(wei: U256) -> String {
    if !wei.is_zero() && wei < U256::from(1_000_000_000_000u64) {
        return format!("{wei} wei");
    }
    format!("{} ETH", ether(wei))
}

/// An amount in ether, exact to the wei and without trailing zeros or unit: `1.5`,
/// `0.000000000000001`, `0`.
pub fn ether(wei: U256) -> String {
    let text = format_ether(wei);
    match text.split_once('.') {
        Some((whole, fraction)) => {
            let fraction = fraction.trim_end_matches('0');
            if fraction.is_empty() {
                whole.to_string()
            } else {
                format!("{whole}.{fraction}")
            }
        }
        None => text,
    }
}

/// A Unix time as UTC in RFC 3339: `2025-03-01T12:00:00Z`.
pub fn utc(seconds: u64) -> String {
    i64::try_from(seconds)
        .ok()
        .and_then(|s| k8s_openapi::jiff::Timestamp::from_second(s).ok())
        .map_or_else(|| format!("unix time {seconds}"), |t| t.to_string())
}

/// `0x1234…abcd`: enough of an address to tell accounts apart in a table.
pub fn short_address(address: Address) -> String {
    let full = address.to_string();
    format!("{}…{}", &full[..6], &full[full.len() - 4..])
}

/// A span of seconds as people say it: `45s`, `12m`, `3h 20m`, `2d 4h`.
pub fn duration(seconds: u64) -> String {
    let (d, h, m, s) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h {m}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d {h}h"),
    }
}

/// A deadline relative to the chain's clock `now`: `in 59m`, `passed 3m ago`.
pub fn deadline(deadline: u64, now: u64) -> String {
    if deadline >= now {
        format!("in {}", duration(deadline - now))
    } else {
        format!("passed {} ago", duration(now - deadline))
    }
}

/// A count with thousands separators: `12,800`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparkline_spans_the_eight_levels() {
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]), "▁▂▃▄▅▆▇█");
        assert_eq!(sparkline(&[7.0, 0.0]), "█▁");
        assert_eq!(sparkline(&[-20.0, -10.0, 0.0]), "▁▅█", "negative returns scale too");
        assert_eq!(sparkline(&[3.0, 3.0, 3.0]), "▄▄▄", "flat");
        assert_eq!(sparkline(&[1.0, f64::NAN, 2.0]), "▁█", "not-a-number is skipped");
        assert_eq!(sparkline(&[]), "");
    }

    #[test]
    fn downsampling_keeps_the_shape() {
        let rising: Vec<f64> = (0..100).map(f64::from).collect();
        let short = downsample(&rising, 10);
        assert_eq!(short.len(), 10);
        assert_eq!(short[0], 4.5);
        assert_eq!(short[9], 94.5);
        assert_eq!(sparkline(&short), "▁▂▃▃▄▅▆▆▇█");
        assert_eq!(downsample(&[1.0, 2.0], 10), vec![1.0, 2.0]);
        assert!(downsample(&rising, 0).is_empty());
    }

    #[test]
    fn tables_align_their_columns() {
        let mut t = Table::new(&["ID", "STATUS", "MODEL"]);
        t.row(vec!["1".into(), "Completed".into(), "bafy".into()]);
        t.row(vec!["12".into(), "Posted".into()]);
        assert_eq!(t.render(), "ID  STATUS     MODEL\n1   Completed  bafy\n12  Posted\n");
    }

    fn ether_wei(n: u64) -> U256 {
        U256::from(n) * U256::from(10u64).pow(U256::from(18u64))
    }

    #[test]
    fn amounts_and_times_read_like_people_write_them() {
        let ether = U256::from(10u64).pow(U256::from(18u64));
        assert_eq!(eth(ether * U256::from(3u8) / U256::from(2u8)), "1.5 ETH");
        assert_eq!(eth(U256::ZERO), "0 ETH");
        assert_eq!(eth(U256::from(1000u16)), "1000 wei");
        assert_eq!(eth(U256::from(1_000_000_000_000u64)), "0.000001 ETH");
        assert_eq!(super::ether(U256::from(1000u16)), "0.000000000000001");
        assert_eq!(super::ether(ether_wei(7) + U256::from(1u8)), "7.000000000000000001");
        assert_eq!(super::ether(U256::ZERO), "0");
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_740_830_400), "2025-03-01T12:00:00Z");
        assert_eq!(utc(u64::MAX), format!("unix time {}", u64::MAX));
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(3600 * 3 + 20 * 60 + 5), "3h 20m");
        assert_eq!(duration(2 * 86_400 + 4 * 3600), "2d 4h");
        assert_eq!(deadline(100, 40), "in 1m");
        assert_eq!(deadline(100, 280), "passed 3m ago");
        assert_eq!(count(12_800), "12,800");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000_000), "1,000,000");
        let a: Address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".parse().unwrap();
        assert_eq!(short_address(a), "0x7099…79C8");
    }
}
