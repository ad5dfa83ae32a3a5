//! Progress of a run: one line per iteration with the diagnostics RL users look for (docs/architecture.md#the-trainer-contract).
//!
//! Pods and local processes get JSON lines on stderr; a person at a terminal gets a progress bar. Tests
//! and benchmarks collect the lines to draw learning curves.

use std::io::Write;

use indicatif::{ProgressBar, ProgressStyle};

/// One iteration's progress: the type every reader of the JSON lines parses them with.
pub use drlaas_crds::trainer_output::ProgressLine;

/// Where progress goes.
pub trait ProgressSink {
    /// Reports one iteration.
    fn update(&mut self, line: &ProgressLine);
    /// A checkpoint was written to `path` (a run that stores its outputs stores it now, so a run
    /// cut short can resume elsewhere).
    fn checkpoint(&mut self, _path: &std::path::Path) {}
    /// The run is over.
    fn finish(&mut self) {}
}

/// JSON lines on stderr.
#[derive(Debug, Default)]
pub struct JsonLines;

impl ProgressSink for JsonLines {
    fn update(&mut self, line: &ProgressLine) {
        let _ = writeln!(std::io::stderr().lock(), "{}", line.to_json_line());
    }
}

/// A progress bar for terminals.
#[derive(Debug)]
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar over `total_env_steps`.
    pub fn new(total_env_steps: u64) -> Self {
        let bar = ProgressBar::new(total_env_steps);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} env steps  {msg}  [{elapsed_precise} < {eta}]")
                .expect("valid template"),
        );
        Self(bar)
    }
}

impl ProgressSink for Bar {
    fn update(&mut self, line: &ProgressLine) {
        self.0.set_position(line.env_steps);
        let mean = line.mean_return.map_or_else(|| "-".to_owned(), |m| format!("{m:.2}"));
        self.0.set_message(format!(
            "return {mean}  episodes {}  {:.0} sps",
            line.episodes, line.sps
        ));
    }

    fn finish(&mut self) {
        self.0.finish();
    }
}

/// Discards progress.
#[derive(Debug, Default)]
pub struct Silent;

impl ProgressSink for Silent {
    fn update(&mut self, _: &ProgressLine) {}
}

/// Keeps every line (tests, learning curves).
#[derive(Debug, Default)]
pub struct Collect(pub Vec<ProgressLine>);

impl ProgressSink for Collect {
    fn update(&mut self, line: &ProgressLine) {
        self.0.push(line.clone());
    }
}
