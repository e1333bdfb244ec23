//! The spool: one JSON file per container under /run/ig/containers, written
//! by every container source at creation and removed when the container
//! goes, so that a tracer started later still learns it. Written atomically
//! (temporary file, then rename), so a reader never sees half a record.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
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
    let dir_path = spool_dir(root);
    let (Ok(dir), Ok(entries)) = (std::fs::File::open(&dir_path), std::fs::read_dir(&dir_path)) else {
        return (records, errors);
    };
    // One buffer for every file: with 1,000 containers at start-up, no
    // allocation per record.
    let mut buf = Vec::with_capacity(4096);
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.as_bytes().ends_with(b".json") {
            continue;
        }
        buf.clear();
        match read_at(&dir, &name, &mut buf)
            .map_err(|e| e.to_string())
            .and_then(|()| serde_json::from_slice::<ContainerRecord>(&buf).map_err(|e| e.to_string()))
        {
            Ok(r) => records.push(r),
            Err(e) => errors.push(format!("{}: {e}", dir_path.join(&name).display())),
        }
    }
    (records, errors)
}

/// The whole of file `name` in `dir`, appended to `buf`: opened relative to
/// the directory (opening by full path walks it each time, 1,000 records at
/// start-up) and read until end of file: four system calls.
fn read_at(dir: &std::fs::File, name: &std::ffi::OsStr, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let c_name = std::ffi::CString::new(name.as_bytes())?;
    // SAFETY: a valid directory fd and NUL-terminated name; the result is
    // a new fd or -1.
    let fd = unsafe {
        libc::openat(dir.as_raw_fd(), c_name.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW)
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd; nothing else owns it.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    crate::procfs::read_until_eof(&mut file, buf)
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
