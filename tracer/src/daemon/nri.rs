//! The NRI plugin inside the daemon: containerd's container events go
//! straight into the daemon's collection (so into its gadgets' filter maps)
//! before containerd is answered, then to the spool and any other running
//! `ig`, exactly as the standalone `ig-nri` does.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ig_nri::plugin::{PluginConfig, serve_forever};
use ig_nri::records::{Sink, SpoolAndTracers};
use shared::ContainerRecord;

use crate::collection::{Collection, Source};

struct CollectionSink {
    collection: Arc<Collection>,
    others: SpoolAndTracers,
}

impl Sink for CollectionSink {
    fn add(&mut self, record: ContainerRecord) {
        self.collection.add(record.clone(), Source::Nri);
        self.others.add(record);
    }

    fn remove(&mut self, container_id: &str) {
        self.collection.remove(container_id);
        self.others.remove(container_id);
    }
}

/// Runs the plugin on its own thread for the daemon's lifetime.
pub fn start(
    socket: PathBuf,
    idx: String,
    root: PathBuf,
    collection: Arc<Collection>,
) -> std::io::Result<()> {
    let cfg = PluginConfig { socket, name: "ig-daemon".into(), idx, root: root.clone() };
    let mut sink =
        CollectionSink { collection, others: SpoolAndTracers { root, deadline: Duration::from_millis(500) } };
    std::thread::Builder::new().name("ig-nri".into()).spawn(move || serve_forever(&cfg, &mut sink))?;
    Ok(())
}
