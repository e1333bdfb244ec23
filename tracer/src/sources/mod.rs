//! Where containers come from: the hook/NRI socket, the spool left by
//! earlier hooks, the fanotify watcher on the runtime binaries (docker,
//! `ctr run`), each container's exit (pidfd), and, once at start-up, the
//! runtime APIs for what already runs. Never polling.

pub mod exits;
pub mod fanotify;
pub mod listener;
pub mod runtimes;
pub mod spool;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::collection::{Collection, Source, Subscription};
use runtimes::RuntimeOptions;

/// The running sources of one tracer process; dropping it stops them.
pub struct Sources {
    _listener: listener::Listener,
    _exits: Subscription,
    _fanotify: Option<fanotify::Watcher>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("listening for container records on {path}")]
    Listen {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the exit watcher")]
    Exits(#[source] std::io::Error),
    #[error("starting a thread that loads the spool or asks the runtimes")]
    Load(#[source] std::io::Error),
}

#[derive(Clone, Debug, Default)]
pub struct SourceOptions {
    pub root: PathBuf,
    pub runtimes: RuntimeOptions,
    /// `RUNTIME_PATH`: the runtime binaries to watch instead of the known list.
    pub runtime_path: Option<String>,
}

impl SourceOptions {
    pub fn new(root: &Path, runtimes: RuntimeOptions) -> Self {
        Self { root: root.to_path_buf(), runtimes, runtime_path: std::env::var("RUNTIME_PATH").ok() }
    }
}

/// Starts listening and watching first, then loads the spool and asks the
/// runtimes, so that no container falls between them: one learnt twice is
/// deduplicated by id, and a fallback never replaces a richer record.
/// The loading runs on threads of its own while the caller goes on (a
/// gadget loads its programs meanwhile: with 1,000 spooled containers the
/// spool takes longer than that); subscribers wait for it
/// ([`Collection::initial_load`]), so a filter still starts with every
/// container that was already running.
pub fn start(opts: &SourceOptions, collection: &Arc<Collection>) -> Result<Sources, SourceError> {
    let root = &opts.root;
    let listener = listener::Listener::start(root, collection.clone())?;
    let exits = exits::watch(root, collection).map_err(SourceError::Exits)?;
    let docker_root: Arc<OnceLock<PathBuf>> = Arc::new(OnceLock::new());
    let fanotify = start_fanotify(opts, collection, docker_root.clone());
    // The spool and the runtime APIs on two threads: in either order the
    // spool's (richer) record wins, as `add` replaces and `add_if_absent`
    // does not.
    let (spool_load, api_load) = (collection.initial_load(), collection.initial_load());
    let (root2, spooled) = (root.clone(), collection.clone());
    std::thread::Builder::new()
        .name("ig-load-spool".into())
        .spawn(move || {
            spool::load(&root2, &spooled);
            drop(spool_load);
        })
        .map_err(SourceError::Load)?;
    let (opts2, running) = (opts.clone(), collection.clone());
    std::thread::Builder::new()
        .name("ig-load-runtimes".into())
        .spawn(move || {
            load_running(&opts2, &running, Some(&docker_root));
            drop(api_load);
        })
        .map_err(SourceError::Load)?;
    Ok(Sources { _listener: listener, _exits: exits, _fanotify: fanotify })
}

/// The containers running now, for one-shot commands: the spool left by the
/// hooks and plugins, and what the runtime APIs report.
pub fn running_now(opts: &SourceOptions) -> Arc<Collection> {
    let collection = Collection::new();
    spool::load(&opts.root, &collection);
    load_running(opts, &collection, None);
    collection
}

/// Adds the containers the runtime APIs report as running.
pub fn load_running(opts: &SourceOptions, collection: &Collection, docker_root: Option<&OnceLock<PathBuf>>) {
    let found = runtimes::enumerate(&opts.root, &opts.runtimes);
    if let (Some(cell), Some(dir)) = (docker_root, found.docker_root) {
        let _ = cell.set(dir);
    }
    for record in found.records {
        collection.add_if_absent(record, Source::RuntimeApi);
    }
}

fn start_fanotify(
    opts: &SourceOptions,
    collection: &Arc<Collection>,
    docker_root: Arc<OnceLock<PathBuf>>,
) -> Option<fanotify::Watcher> {
    let default_docker_root = opts.root.join("var/lib/docker");
    let enrich: fanotify::Enricher = Arc::new(move |record| {
        if record.runtime.runtime_name != "docker" {
            return;
        }
        let data_root = docker_root.get().unwrap_or(&default_docker_root);
        if let Some((name, image)) = runtimes::docker::name_on_disk(data_root, &record.runtime.container_id) {
            record.runtime.container_name = name;
            record.runtime.container_image_name = image;
        }
    });
    let fopts = fanotify::Options {
        root: opts.root.clone(),
        runtime_path: opts.runtime_path.clone(),
        bound: fanotify::DEFAULT_BOUND,
        enrich,
    };
    match fanotify::start(fopts, collection.clone()) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("not watching runtime binaries: {}", shared::error_chain(&e));
            None
        }
    }
}
