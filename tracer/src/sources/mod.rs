//! Where containers come from, push-style: the hook/NRI socket, the spool
//! left by earlier hooks, and each container's exit (pidfd). Never polling.

pub mod exits;
pub mod listener;
pub mod spool;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::collection::{Collection, Subscription};

/// The running sources of one tracer process; dropping it stops them.
pub struct Sources {
    _listener: listener::Listener,
    _exits: Subscription,
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
}

/// Starts listening first, then loads the spool, so that no container falls
/// between the two: one that arrives twice is deduplicated by id.
pub fn start(root: &Path, collection: &Arc<Collection>) -> Result<Sources, SourceError> {
    let listener = listener::Listener::start(root, collection.clone())?;
    let exits = exits::watch(root, collection).map_err(SourceError::Exits)?;
    spool::load(root, collection);
    Ok(Sources { _listener: listener, _exits: exits })
}
