//! Containers that started before this tracer: the records the hooks left
//! in the spool, kept only if their process still runs in the recorded mount
//! namespace (a reused pid would be another process).

use std::path::Path;

use crate::collection::{Collection, Source};

pub fn load(root: &Path, collection: &Collection) {
    let started = std::time::Instant::now();
    let (records, errors) = shared::spool::read_all(root);
    let read = started.elapsed();
    let n = records.len();
    for e in errors {
        tracing::warn!("skipping a spooled container record: {e}");
    }
    for record in records {
        match shared::procfs::ns_inode(root, record.pid, "mnt") {
            Ok(mntns) if mntns == record.mntns => {
                collection.add(record, Source::Spool);
            }
            _ => {
                tracing::debug!(
                    id = record.runtime.container_id,
                    "spooled container is gone; dropping its record"
                );
                let _ = shared::spool::remove(root, &record.runtime.container_id);
            }
        }
    }
    tracing::debug!(records = n, ?read, took = ?started.elapsed(), "spool loaded");
}
