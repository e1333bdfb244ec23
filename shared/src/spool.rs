//! The spool: one JSON file per container under /run/ig/containers, written
//! by every container source at creation and removed when the container
//! goes, so that a tracer started later still learns it. Written atomically
//! (temporary file, then rename), so a reader never sees half a record.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::ContainerRecord;
use crate::hookproto::{spool_dir, spool_file};

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("removing {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub fn write(root: &Path, record: &ContainerRecord) -> Result<PathBuf, SpoolError> {
    let dir = spool_dir(root);
    let path = spool_file(root, &record.runtime.container_id);
    // Its own temporary name per record and process: two records written at
    // once (threads of one plugin) never share one.
    let tmp = dir.join(format!(".{}.{}.tmp", record.runtime.container_id, std::process::id()));
    let err = |source| SpoolError::Write { path: path.clone(), source };
    std::fs::create_dir_all(&dir).map_err(err)?;
    let body = serde_json::to_vec(record).map_err(|e| err(std::io::Error::other(e)))?;
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(&body).map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(path)
}

/// Removes a container's record; one that is not there is not an error.
pub fn remove(root: &Path, container_id: &str) -> Result<(), SpoolError> {
    let path = spool_file(root, container_id);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SpoolError::Remove { path, source: e }),
        _ => Ok(()),
    }
}

/// Every record in the spool; unreadable or malformed files are returned as
/// errors next to the good records, never dropped silently.
pub fn read_all(root: &Path) -> (Vec<ContainerRecord>, Vec<String>) {
    let (mut records, mut errors) = (Vec::new(), Vec::new());
    let Ok(entries) = std::fs::read_dir(spool_dir(root)) else {
        return (records, errors);
    };
    // One buffer for every file: with 1,000 containers at start-up, no
    // allocation and no size query (stat) per record.
    let mut buf = Vec::with_capacity(4096);
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        buf.clear();
        match std::fs::File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut buf))
            .map_err(|e| e.to_string())
            .and_then(|_| serde_json::from_slice::<ContainerRecord>(&buf).map_err(|e| e.to_string()))
        {
            Ok(r) => records.push(r),
            Err(e) => errors.push(format!("{}: {e}", path.display())),
        }
    }
    (records, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records written at once from threads of one process each land
    /// whole under their own name.
    #[test]
    fn records_written_at_once_never_mix() {
        let root = std::env::temp_dir().join(format!("ig-spool-threads-{}", std::process::id()));
        let writers: Vec<_> = (0..8u64)
            .map(|i| {
                let root = root.clone();
                std::thread::spawn(move || {
                    let mut r = ContainerRecord::default();
                    r.runtime.container_id = format!("c{i}");
                    r.mntns = i;
                    for _ in 0..50 {
                        write(&root, &r).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let (mut records, errors) = read_all(&root);
        assert!(errors.is_empty(), "{errors:?}");
        records.sort_by_key(|r| r.mntns);
        let got: Vec<(String, u64)> =
            records.iter().map(|r| (r.runtime.container_id.clone(), r.mntns)).collect();
        let want: Vec<(String, u64)> = (0..8).map(|i| (format!("c{i}"), i)).collect();
        assert_eq!(got, want);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn writes_reads_and_removes() {
        let root = std::env::temp_dir().join(format!("ig-spool-test-{}", std::process::id()));
        let mut r = ContainerRecord::default();
        r.runtime.container_id = "abc".into();
        r.mntns = 42;
        write(&root, &r).unwrap();
        std::fs::write(spool_dir(&root).join("broken.json"), b"{not json").unwrap();
        let (records, errors) = read_all(&root);
        assert_eq!(records, vec![r]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        remove(&root, "abc").unwrap();
        remove(&root, "abc").unwrap();
        assert!(read_all(&root).0.is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
