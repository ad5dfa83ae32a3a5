//! What the workers' pools already hold: the capacity and slots recruitment must not give twice.
//!
//! A pool is held by every task its worker is assigned (as the tasks' statuses show) and by every
//! promise recruitment made that the statuses do not show yet; [`UsedCapacity`] adds them up per
//! worker, and [`worker_offer`](super::admission::worker_offer) offers the rest.

use std::collections::BTreeMap;

use super::recruitment::Resources;

/// The resources and slots held on each worker's pool, by worker name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsedCapacity {
    by_worker: BTreeMap<String, (Resources, u32)>,
}

impl UsedCapacity {
    /// Counts one task asking for `resources` against `worker`'s pool.
    pub fn hold(&mut self, worker: &str, resources: Resources) {
        let (used, tasks) = self.by_worker.entry(worker.to_string()).or_default();
        *used = Resources {
            gpus: used.gpus.saturating_add(resources.gpus),
            cpu_millis: used.cpu_millis.saturating_add(resources.cpu_millis),
            memory_mib: used.memory_mib.saturating_add(resources.memory_mib),
        };
        *tasks += 1;
    }

    /// What `worker`'s pool holds, and for how many tasks (nothing for a worker never counted).
    pub fn of(&self, worker: &str) -> (Resources, u32) {
        self.by_worker.get(worker).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_counts_once_against_its_own_worker() {
        let task = Resources {
            gpus: 1,
            cpu_millis: 2000,
            memory_mib: 4096,
        };
        let mut used = UsedCapacity::default();
        used.hold("lab-a", task);
        used.hold("lab-a", task);
        used.hold("lab-b", task);
        assert_eq!(
            used.of("lab-a"),
            (
                Resources {
                    gpus: 2,
                    cpu_millis: 4000,
                    memory_mib: 8192
                },
                2
            )
        );
        assert_eq!(used.of("lab-b").1, 1);
        assert_eq!(used.of("lab-c"), (Resources::default(), 0));
    }
}
