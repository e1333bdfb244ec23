//! Keeping the runtime binaries marked. A fanotify mark is on an inode: a
//! package upgrade that renames a new runc over the old one leaves the new
//! file unmarked, and a runtime installed after ig started was never marked.
//! So the directories of the candidate paths are watched with inotify, and
//! whenever a file appears in one (created or moved in), every candidate is
//! resolved again and whatever is not marked yet gets its mark.

use std::collections::HashSet;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::fanotify::{Fanotify, MarkFlags, MaskFlags};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::binaries;

#[derive(Debug, thiserror::Error)]
#[error("this kernel has no fanotify permission events (CONFIG_FANOTIFY_ACCESS_PERMISSIONS)")]
pub struct NoPermissionEvents;

pub struct Marks {
    root: PathBuf,
    candidates: Vec<String>,
    /// (device, inode) of every binary marked so far.
    marked: HashSet<(u64, u64)>,
    /// None when inotify could not be set up: marks are then made once.
    inotify: Option<Inotify>,
}

impl Marks {
    /// Watches the directories the candidates live in (those that exist).
    pub fn new(root: &Path, candidates: Vec<String>) -> Self {
        let inotify = match Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC) {
            Ok(i) => Some(i),
            Err(e) => {
                tracing::warn!(
                    "inotify: {e}; a runtime binary replaced or installed later will not be watched"
                );
                None
            }
        };
        let mut dirs = HashSet::new();
        if let Some(inotify) = &inotify {
            for dir in binaries::directories(root, &candidates) {
                match inotify.add_watch(&dir, AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO) {
                    Ok(wd) => {
                        dirs.insert(wd);
                    }
                    Err(e) => tracing::debug!(dir = %dir.display(), "not watching this directory: {e}"),
                }
            }
        }
        tracing::debug!(directories = dirs.len(), "watching runtime directories");
        Self { root: root.to_path_buf(), candidates, marked: HashSet::new(), inotify }
    }

    /// Whether there is anything to watch now or later.
    pub fn is_empty(&self) -> bool {
        self.marked.is_empty() && self.inotify.is_none()
    }

    pub fn inotify_fd(&self) -> Option<BorrowedFd<'_>> {
        self.inotify.as_ref().map(AsFd::as_fd)
    }

    /// Reads what inotify has; true when a file appeared somewhere watched.
    pub fn drain(&mut self) -> bool {
        let Some(inotify) = &self.inotify else { return false };
        let mut appeared = false;
        loop {
            match inotify.read_events() {
                Ok(events) if !events.is_empty() => appeared = true,
                Ok(_) | Err(Errno::EAGAIN) => return appeared,
                Err(Errno::EINTR) => {}
                Err(e) => {
                    tracing::warn!("reading inotify events: {e}");
                    return appeared;
                }
            }
        }
    }

    /// Marks every candidate binary not marked yet; returns the ones newly marked.
    pub fn refresh(&mut self, fan: &Fanotify) -> Result<Vec<PathBuf>, NoPermissionEvents> {
        let mut new = Vec::new();
        for host_path in &self.candidates {
            let Some(path) = binaries::resolve(&self.root, host_path) else { continue };
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            if self.marked.contains(&(meta.dev(), meta.ino())) {
                continue;
            }
            match fan.mark(
                MarkFlags::FAN_MARK_ADD,
                MaskFlags::FAN_OPEN_EXEC_PERM,
                nix::fcntl::AT_FDCWD,
                Some(&path),
            ) {
                Ok(()) => {
                    self.marked.insert((meta.dev(), meta.ino()));
                    new.push(path);
                }
                Err(Errno::EINVAL) => return Err(NoPermissionEvents),
                Err(e) => tracing::warn!(path = %path.display(), "cannot watch this runtime binary: {e}"),
            }
        }
        Ok(new)
    }
}
