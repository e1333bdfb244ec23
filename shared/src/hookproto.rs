//! How container sources (ig-hook, ig-nri) hand records to every running
//! tracer, and the spool they always write so that a tracer started later
//! still learns the containers.
//!
//! Each tracer process listens on its own unix socket in [`TRACERS_DIR`]
//! (`ig-<pid>.sock`, root only). A source connects to every socket there and
//! writes one JSON line ([`Message`]); the tracer puts the container in its
//! collection and its filter maps, then answers one JSON line ([`Ack`]).
//! Newline-delimited JSON: trivial to produce from any language, to read in
//! a log, and to bound (a line longer than [`MAX_LINE`] is refused).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ContainerRecord;

/// Wire version; a tracer refuses messages of another major version.
pub const VERSION: u32 = 1;
/// Longest accepted message line (a record with large annotations fits).
pub const MAX_LINE: usize = 1 << 20;
/// Directory of the tracers' sockets, relative to the host root.
pub const TRACERS_DIR: &str = "run/ig/tracers";
/// Directory of spooled container records, relative to the host root.
pub const SPOOL_DIR: &str = "run/ig/containers";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Message {
    /// A container is being created: its process exists but has not run.
    #[serde(rename = "add")]
    Add {
        version: u32,
        record: Box<ContainerRecord>,
        /// Who tells: "hook" or "nri" (a tracer's metrics count records per
        /// source); absent from older senders.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
    },
    /// A container is gone.
    #[serde(rename = "remove")]
    Remove {
        version: u32,
        #[serde(rename = "containerId")]
        container_id: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// The host root (`HOST_ROOT`, default `/`), under which /run and /proc are.
pub fn host_root() -> PathBuf {
    std::env::var_os("HOST_ROOT").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"))
}

/// A host path (absolute, as the host sees it) under the host root: where
/// ig finds it when it runs with the host at `HOST_ROOT`.
pub fn on_host(root: &Path, host_path: impl AsRef<Path>) -> PathBuf {
    let p = host_path.as_ref();
    root.join(p.strip_prefix("/").unwrap_or(p))
}

pub fn tracers_dir(root: &Path) -> PathBuf {
    root.join(TRACERS_DIR)
}

pub fn spool_dir(root: &Path) -> PathBuf {
    root.join(SPOOL_DIR)
}

/// The spool file of one container. Ids come from the runtime; anything that
/// could escape the directory is replaced.
pub fn spool_file(root: &Path, container_id: &str) -> PathBuf {
    let safe: String = container_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect();
    let safe = if safe.is_empty() || safe.starts_with('.') { format!("_{safe}") } else { safe };
    spool_dir(root).join(format!("{safe}.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_tagged_json_lines() {
        let m = Message::Remove { version: VERSION, container_id: "abc".into() };
        let line = serde_json::to_string(&m).unwrap();
        assert_eq!(line, r#"{"kind":"remove","version":1,"containerId":"abc"}"#);
        assert_eq!(serde_json::from_str::<Message>(&line).unwrap(), m);
        let add = Message::Add { version: VERSION, record: Box::default(), source: None };
        let back: Message = serde_json::from_str(&serde_json::to_string(&add).unwrap()).unwrap();
        assert_eq!(back, add);
    }

    #[test]
    fn spool_names_cannot_escape_the_directory() {
        let root = Path::new("/");
        assert_eq!(spool_file(root, "abc-1"), Path::new("/run/ig/containers/abc-1.json"));
        assert_eq!(spool_file(root, "../../etc/x"), Path::new("/run/ig/containers/_.._.._etc_x.json"));
        assert_eq!(spool_file(root, ""), Path::new("/run/ig/containers/_.json"));
    }
}
