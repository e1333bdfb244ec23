//! The hook's log file: runc swallows a hook's output unless it fails, so
//! every decision worth knowing goes to a file. Kept small by rotating once
//! it passes a megabyte.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

const MAX_LOG_BYTES: u64 = 1 << 20;

pub struct Log {
    path: PathBuf,
    prefix: String,
}

impl Log {
    pub fn new(path: &Path, stage: &str) -> Self {
        Self { path: path.to_path_buf(), prefix: format!("ig-hook[{}] {stage}", std::process::id()) }
    }

    pub fn set_container(&mut self, id: &str) {
        self.prefix.push_str(&format!(" id={id}"));
    }

    /// Appends a line; a log that cannot be written must not fail the hook.
    pub fn line(&self, msg: &str) {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() > MAX_LOG_BYTES) {
            let _ = std::fs::rename(&self.path, self.path.with_extension("log.1"));
        }
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let text = format!("{}.{:03} {}: {msg}\n", now.as_secs(), now.subsec_millis(), self.prefix);
        // O_NONBLOCK: a log path that is a FIFO nobody reads fails at once
        // instead of holding the hook (no effect on a regular file).
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.path);
        if let Ok(mut f) = file {
            let _ = f.write_all(text.as_bytes());
        }
    }
}
