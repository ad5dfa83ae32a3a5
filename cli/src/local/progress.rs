//! The live view of a local run: a progress bar per task on a terminal, else (or with `--plain`)
//! a line per change of a task's phase, worker, progress or evaluation.

use std::collections::BTreeMap;

use drlaas_crds::task::{DRLTask, TaskPhase};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The live view of a run.
pub struct Progress {
    plain: bool,
    bars: MultiProgress,
    by_task: BTreeMap<String, ProgressBar>,
    last_line: BTreeMap<String, String>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("plain", &self.plain)
            .finish_non_exhaustive()
    }
}

impl Progress {
    /// Progress bars on a terminal, else (or with `plain`) a line per change.
    pub fn new(plain: bool) -> Self {
        let plain = plain || !std::io::IsTerminal::is_terminal(&std::io::stderr());
        let bars = MultiProgress::with_draw_target(if plain {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        });
        Progress {
            plain,
            bars,
            by_task: BTreeMap::new(),
            last_line: BTreeMap::new(),
        }
    }

    /// Shows where each task is.
    pub fn update(&mut self, tasks: &[DRLTask]) {
        for task in tasks {
            let key = format!(
                "{}/{}",
                task.metadata.namespace.as_deref().unwrap_or("default"),
                task.metadata.name.as_deref().unwrap_or_default()
            );
            let line = describe(task);
            if self.plain {
                if self.last_line.get(&key) != Some(&line) {
                    eprintln!("{key}: {line}");
                    self.last_line.insert(key, line);
                }
                continue;
            }
            let bar = self.by_task.entry(key.clone()).or_insert_with(|| {
                let bar = self.bars.add(ProgressBar::new(1));
                bar.set_style(
                    ProgressStyle::with_template("{prefix:<22} [{bar:30}] {percent:>3}% {msg}")
                        .expect("a valid template")
                        .progress_chars("=> "),
                );
                bar.set_prefix(key.clone());
                bar
            });
            let status = task.status.clone().unwrap_or_default();
            match (&status.progress, status.phase) {
                (_, Some(TaskPhase::Settled)) => {
                    bar.set_length(1);
                    bar.set_position(1);
                }
                (Some(p), _) if p.total_env_steps > 0 => {
                    bar.set_length(p.total_env_steps);
                    bar.set_position(p.env_steps.min(p.total_env_steps));
                }
                _ => bar.set_position(0),
            }
            bar.set_message(line);
        }
    }

    /// Leaves the bars as they are.
    pub fn finish(&mut self) {
        for bar in self.by_task.values() {
            bar.abandon();
        }
        if !self.by_task.is_empty() {
            eprintln!();
        }
    }
}

/// One line on a task: its phase, worker, progress or outcome.
fn describe(task: &DRLTask) -> String {
    let status = task.status.clone().unwrap_or_default();
    let phase = status.phase.map_or("Pending".to_string(), |p| format!("{p:?}"));
    let mut parts = vec![match status.outcome {
        Some(outcome) => format!("{phase} ({outcome:?})"),
        None => phase,
    }];
    if let Some(worker) = &status.worker {
        parts.push(format!("worker {worker}"));
    }
    if status.attempts > 1 {
        parts.push(format!("attempt {}", status.attempts));
    }
    match (&status.evaluation, &status.progress, status.phase) {
        (Some(e), _, _) => parts.push(format!(
            "evaluated {:.1}{} ({})",
            e.mean_return,
            e.random_mean_return
                .map(|r| format!(", random actions {r:.1}"))
                .unwrap_or_default(),
            if e.passed { "passed" } else { "failed" }
        )),
        (None, Some(p), Some(TaskPhase::Training)) => {
            if let Some(r) = p.mean_return {
                parts.push(format!("return {r:.1}"));
            }
            parts.push(format!("{} steps", p.env_steps));
        }
        _ => {}
    }
    parts.join(", ")
}
