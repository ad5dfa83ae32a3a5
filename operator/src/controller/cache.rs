//! Watch caches: what the controllers read instead of asking the API server.
//!
//! Recruitment looks at every funded task and every Worker, and each reconcile of a running task
//! looks at its pods. Asked of the API server, those reads grow with the number of tasks on every
//! reconcile (a cluster-wide list per recruitment, two pod GETs per look); read from reflector
//! stores kept current by one watch per resource (and watched namespace), they cost nothing per
//! reconcile. The caches start with the process, so a replica that is not leading keeps them warm
//! and takes over with them filled.
//!
//! A cache can be a moment behind the API server. The readers here are written for that: creating
//! an object that exists already is a 409 the controller accepts, and recruitment keeps its own
//! record of assignments whose status the cache does not show yet (see [`super::recruiter`]).
//!
//! [`Caches::none`] reads straight from the API server instead: the controller tests that run one
//! reconcile at a time, with the objects changed in between, use it.
//!
//! Beside the watch caches, [`Caches`] keeps each worker's models ([`ModelBook`]): the environments
//! of the tasks it completed and of the models it listed, read from chain events and the content
//! store by [`super::worker::refresh_models`]. Both only grow on chain, so each read asks only for
//! the blocks after the last one, and recruitment reads the answer from memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drlaas_chain::alloy::primitives::Address;
use drlaas_core::admission::WorkerHistory;
use drlaas_envs::descriptor::EnvDescriptor;

use drlaas_crds::task::{DRLTask, DRLTaskStatus};
use drlaas_crds::worker::Worker;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use tokio::task::JoinSet;

use super::{Error, WatchScope};
use crate::pods::LABEL_TASK;

/// The reflector stores of the resources the controllers read, or none; and the status this
/// process last applied to each task.
#[derive(Clone, Default)]
pub struct Caches {
    stores: Option<Arc<Stores>>,
    /// By task UID. A reconcile can run on a cached copy older than the status it applied a moment
    /// ago (the watch has not delivered it yet); comparing with what was applied instead of with the
    /// copy saves writing the same status again.
    applied: Arc<std::sync::Mutex<HashMap<String, DRLTaskStatus>>>,
    /// Each worker's models, by its account.
    models: Arc<std::sync::Mutex<ModelBook>>,
}

/// What the operator has read of each worker's models, by account.
#[derive(Debug, Default)]
pub struct ModelBook {
    workers: HashMap<Address, WorkerModels>,
}

/// One worker's models as far as they were read.
#[derive(Debug, Clone, Default)]
pub struct WorkerModels {
    /// What was read, by task and listing id.
    pub history: WorkerHistory,
    /// Every event up to this block is in `history` or in `unread`.
    pub through_block: Option<u64>,
    /// Completed tasks and listings whose environment could not be read yet (the content store did
    /// not answer): the CID to read and the reads tried so far.
    pub unread: BTreeMap<Source, (String, u32)>,
    /// A listing of this worker was seen that `history` does not hold yet.
    pub stale: bool,
    /// When it was last read from chain.
    pub read_at: Option<Instant>,
    /// `history.models()`, computed when the history changes: what recruitment takes.
    pub models: Arc<Vec<EnvDescriptor>>,
}

/// Where a model comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// A task the worker completed, by task id.
    Task(u64),
    /// A model it listed, by listing id.
    Listing(u64),
}

impl WorkerModels {
    /// Whether this record must be read from chain before it is used: it never was, a listing was
    /// seen that it lacks, or it holds fewer completed tasks than the chain's count `completed`; the
    /// last two at most once per `min_interval` (a count the events do not show yet, with
    /// confirmations, must not cost a read per recruitment pass).
    pub fn needs_read(&self, completed: u32, min_interval: Duration) -> bool {
        let Some(read_at) = self.read_at else {
            return true;
        };
        let behind = usize::try_from(completed).unwrap_or(usize::MAX) > self.history.completed.len();
        (self.stale || behind) && read_at.elapsed() >= min_interval
    }

    /// How long ago it was read from chain (`None`: never).
    pub fn age(&self) -> Option<Duration> {
        self.read_at.map(|t| t.elapsed())
    }

    /// Whether `source` is known (read, or waiting to be).
    pub fn knows(&self, source: Source) -> bool {
        self.unread.contains_key(&source)
            || match source {
                Source::Task(id) => self.history.completed.contains_key(&id),
                Source::Listing(id) => self.history.listed.contains_key(&id),
            }
    }
}

struct Stores {
    /// One per API of the watch scope (every namespace, or each watched one).
    tasks: Vec<Store<DRLTask>>,
    /// The pods the operator created (labelled with their task), per API of the scope.
    pods: Vec<Store<Pod>>,
    workers: Store<Worker>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("cached", &self.stores.is_some())
            .finish()
    }
}

/// Keeps `store` current from a watch of `api` (objects without their managed fields, which the
/// operator never reads and which are most of an object's size), until the returned task ends.
fn reflect<K>(api: Api<K>, config: watcher::Config, tasks: &mut JoinSet<()>) -> Store<K>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, config)
        .default_backoff()
        .modify(|object: &mut K| object.managed_fields_mut().clear())
        .reflect(writer)
        .applied_objects();
    tasks.spawn(async move {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Err(e) = event {
                tracing::debug!(error = %e, "watch cache: the watch restarts");
            }
        }
    });
    reader
}

impl Caches {
    /// No caches: every read is a request to the API server.
    pub fn none() -> Self {
        Caches::default()
    }

    /// Starts the watches of DRLTasks and their pods in `scope` and of every Worker, and waits
    /// until each has its first full list. The watches run as long as `tasks` does.
    pub async fn start(client: &kube::Client, scope: &WatchScope, tasks: &mut JoinSet<()>) -> Caches {
        let stores = Stores {
            tasks: scope
                .apis::<DRLTask>(client)
                .into_iter()
                .map(|api| reflect(api, watcher::Config::default(), tasks))
                .collect(),
            pods: scope
                .apis::<Pod>(client)
                .into_iter()
                .map(|api| reflect(api, watcher::Config::default().labels(LABEL_TASK), tasks))
                .collect(),
            workers: reflect(Api::all(client.clone()), watcher::Config::default(), tasks),
        };
        for store in &stores.tasks {
            let _ = store.wait_until_ready().await;
        }
        for store in &stores.pods {
            let _ = store.wait_until_ready().await;
        }
        let _ = stores.workers.wait_until_ready().await;
        Caches {
            stores: Some(Arc::new(stores)),
            applied: Arc::default(),
            models: Arc::default(),
        }
    }

    /// What is known of the models of the worker at `address` (a default record if nothing).
    pub fn worker_models(&self, address: Address) -> WorkerModels {
        self.model_book().workers.get(&address).cloned().unwrap_or_default()
    }

    /// Whether the models of the worker at `address` must be read before they are used
    /// ([`WorkerModels::needs_read`]), and how long ago they were read (`None`: never).
    pub fn models_need_read(
        &self,
        address: Address,
        completed: u32,
        min_interval: Duration,
    ) -> (bool, Option<Duration>) {
        match self.model_book().workers.get(&address) {
            Some(record) => (record.needs_read(completed, min_interval), record.age()),
            None => (true, None),
        }
    }

    /// The environments of the models of the worker at `address`, as last read (none if never).
    pub fn models_of(&self, address: Address) -> Arc<Vec<EnvDescriptor>> {
        self.model_book()
            .workers
            .get(&address)
            .map(|w| w.models.clone())
            .unwrap_or_default()
    }

    /// Records a read of `address`'s models: `history` read through block `through_block` and
    /// `unread`, what is still to be read, both merged into what is known (two reads may overlap).
    /// Returns the models.
    pub fn models_read(
        &self,
        address: Address,
        history: WorkerHistory,
        through_block: u64,
        unread: BTreeMap<Source, (String, u32)>,
    ) -> Arc<Vec<EnvDescriptor>> {
        let mut book = self.model_book();
        let record = book.workers.entry(address).or_default();
        record.history.merge(history);
        record.unread.extend(unread);
        record.unread.retain(|source, _| match source {
            Source::Task(id) => !record.history.completed.contains_key(id),
            Source::Listing(id) => !record.history.listed.contains_key(id),
        });
        record.through_block = record.through_block.max(Some(through_block));
        record.stale = false;
        record.read_at = Some(Instant::now());
        let models = record.history.models();
        if *record.models != models {
            record.models = Arc::new(models);
        }
        record.models.clone()
    }

    /// Listing `listing` of `owner` was seen on chain: if `owner`'s record lacks it, its next
    /// [`WorkerModels::needs_read`] says so.
    pub fn listing_seen(&self, owner: Address, listing: u64) {
        if let Some(record) = self.model_book().workers.get_mut(&owner)
            && !record.knows(Source::Listing(listing))
        {
            record.stale = true;
        }
    }

    fn model_book(&self) -> std::sync::MutexGuard<'_, ModelBook> {
        self.models.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `status` is the one last applied to the task `uid` by this process.
    pub fn already_applied(&self, uid: &str, status: &DRLTaskStatus) -> bool {
        self.applied
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(uid)
            == Some(status)
    }

    /// Records that `status` was applied to the task `uid` (or, with `None`, that the task is gone).
    pub fn applied(&self, uid: &str, status: Option<&DRLTaskStatus>) {
        let mut applied = self.applied.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match status {
            Some(status) => applied.insert(uid.to_string(), status.clone()),
            None => applied.remove(uid),
        };
    }

    /// Every DRLTask in `scope`.
    pub async fn tasks(&self, client: &kube::Client, scope: &WatchScope) -> Result<Vec<Arc<DRLTask>>, Error> {
        match &self.stores {
            Some(stores) => Ok(stores.tasks.iter().flat_map(Store::state).collect()),
            None => Ok(scope
                .list::<DRLTask>(client, &ListParams::default())
                .await?
                .into_iter()
                .map(Arc::new)
                .collect()),
        }
    }

    /// Every Worker.
    pub async fn workers(&self, client: &kube::Client) -> Result<Vec<Arc<Worker>>, Error> {
        match &self.stores {
            Some(stores) => Ok(stores.workers.state()),
            None => Ok(Api::<Worker>::all(client.clone())
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .map(Arc::new)
                .collect()),
        }
    }

    /// Every pod the operator created (labelled with its task) in `scope`.
    pub async fn pods(&self, client: &kube::Client, scope: &WatchScope) -> Result<Vec<Arc<Pod>>, Error> {
        match &self.stores {
            Some(stores) => Ok(stores.pods.iter().flat_map(Store::state).collect()),
            None => Ok(scope
                .list::<Pod>(client, &ListParams::default().labels(LABEL_TASK))
                .await?
                .into_iter()
                .map(Arc::new)
                .collect()),
        }
    }

    /// The pod `name` in `namespace`, if it exists.
    pub async fn pod(&self, client: &kube::Client, namespace: &str, name: &str) -> Result<Option<Arc<Pod>>, Error> {
        match &self.stores {
            Some(stores) => {
                let key = ObjectRef::<Pod>::new(name).within(namespace);
                Ok(stores.pods.iter().find_map(|store| store.get(&key)))
            }
            None => Ok(Api::<Pod>::namespaced(client.clone(), namespace)
                .get_opt(name)
                .await?
                .map(Arc::new)),
        }
    }
}
