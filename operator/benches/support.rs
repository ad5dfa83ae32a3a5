//! Helpers the operator's benches share: command-line flags and medians.
//! Used with `#[path = "support.rs"] mod bench_support;` (each bench uses a part of it).
#![allow(dead_code)]

/// The median of `v` (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The value of `--name N`, or `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether `--name` was passed.
pub fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}
