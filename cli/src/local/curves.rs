//! The learning curves of a local run: each task's last trainer log, read from the data
//! directory's `pods/`, drawn as `curves/NAMESPACE-NAME.svg`.

use std::path::Path;

use drlaas_crds::task::DRLTask;
use drlaas_crds::trainer_output::ProgressLine;
use drlaas_local::curve::{Curve, render_svg};

/// `(env steps, mean return)` of each progress line of a pod's log that has a mean return.
pub fn progress_points(log: &str) -> Vec<(f64, f64)> {
    ProgressLine::all_in(log)
        .filter_map(|line| Some((line.env_steps as f64, line.mean_return?)))
        .collect()
}

/// The trainer logs of `task`'s attempts, in order.
fn trainer_logs(data_dir: &Path, task: &DRLTask) -> Vec<String> {
    let namespace = task.metadata.namespace.as_deref().unwrap_or("default");
    let attempts = task.status.as_ref().map_or(1, |s| s.attempts.max(1));
    (1..=attempts)
        .filter_map(|n| {
            let mut copy = task.clone();
            copy.metadata.namespace = Some(namespace.into());
            let pod = drlaas_operator::pods::trainer_pod_name(&copy, n);
            std::fs::read_to_string(data_dir.join("pods").join(namespace).join(format!("{pod}.log"))).ok()
        })
        .collect()
}

/// Writes each task's learning curve (its last attempt) to `curves/NAMESPACE-NAME.svg`.
pub fn write_curves(data_dir: &Path, tasks: &[DRLTask]) {
    let dir = data_dir.join("curves");
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    for task in tasks {
        let points = trainer_logs(data_dir, task)
            .last()
            .map(|log| progress_points(log))
            .unwrap_or_default();
        let namespace = task.metadata.namespace.as_deref().unwrap_or("default");
        let name = task.metadata.name.as_deref().unwrap_or_default();
        let title = format!("{namespace}/{name}: {}", task.spec.training.environment.kind_name());
        let svg = render_svg(
            &Curve {
                title: &title,
                points: &points,
                target: task.spec.training.target_mean_return,
                x_label: "env steps",
                y_label: "mean return",
            },
            800,
            480,
        );
        let path = dir.join(format!("{namespace}-{name}.svg"));
        if let Err(e) = std::fs::write(&path, svg) {
            tracing::warn!(path = %path.display(), error = %e, "could not write a learning curve");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_points_come_from_progress_lines_with_a_return_only() {
        let line = |env_steps, mean_return| {
            ProgressLine {
                env_steps,
                mean_return,
                ..ProgressLine::default()
            }
            .to_json_line()
        };
        let log = format!(
            "starting\n{}\n{}\n{}\n",
            line(2048, Some(21.5)),
            line(4096, None),
            line(6144, Some(80.0))
        );
        assert_eq!(progress_points(&log), vec![(2048.0, 21.5), (6144.0, 80.0)]);
    }
}
