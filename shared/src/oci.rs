//! The two inputs an OCI hook gets: the runtime state on stdin and the
//! bundle's config.json. Only the fields the record needs are read, and
//! unknown fields are ignored: runc, crun and others add their own (crun's
//! `root`), and a strict full-spec parser would fail a hook over them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Largest state or config.json accepted; a real one is a few KiB.
pub const MAX_INPUT: u64 = 4 << 20;

/// The runtime-spec State a runtime writes to a hook's stdin.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct State {
    pub id: String,
    pub status: String,
    /// Absent at poststop.
    pub pid: Option<u32>,
    pub bundle: String,
    pub annotations: BTreeMap<String, String>,
}

/// The parts of config.json the record uses.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    pub annotations: BTreeMap<String, String>,
    pub process: Option<Process>,
    pub linux: Option<Linux>,
    pub root: Option<Root>,
}

/// The container's root filesystem.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Root {
    /// Absolute, or relative to the bundle.
    pub path: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Process {
    pub args: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Linux {
    pub namespaces: Vec<Namespace>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("the OCI state on stdin is not valid JSON")]
    State(#[source] serde_json::Error),
    #[error("the OCI state has no container id")]
    NoId,
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_INPUT} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path} is not valid JSON")]
    Config {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

pub fn parse_state(bytes: &[u8]) -> Result<State, OciError> {
    let state: State = serde_json::from_slice(bytes).map_err(OciError::State)?;
    if state.id.is_empty() {
        return Err(OciError::NoId);
    }
    Ok(state)
}

pub fn parse_config(bytes: &[u8], path: &Path) -> Result<Config, OciError> {
    serde_json::from_slice(bytes).map_err(|source| OciError::Config { path: path.to_path_buf(), source })
}

/// Reads `<bundle>/config.json`, refusing absurd sizes and anything but a
/// regular file: a FIFO there would block the reader for ever, a device
/// never ends. Opened non-blocking so even the open cannot wait.
pub fn read_config(bundle: &Path) -> Result<Config, OciError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let path = bundle.join("config.json");
    let read = |source| OciError::Read { path: path.clone(), source };
    let file =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&path).map_err(read)?;
    let meta = file.metadata().map_err(read)?;
    if !meta.is_file() {
        return Err(read(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file")));
    }
    if meta.len() > MAX_INPUT {
        return Err(OciError::TooLarge { path });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // take(): a file that grows while it is read still stops at the limit.
    file.take(MAX_INPUT + 1).read_to_end(&mut bytes).map_err(read)?;
    if bytes.len() as u64 > MAX_INPUT {
        return Err(OciError::TooLarge { path });
    }
    parse_config(&bytes, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_runc_and_crun_states() {
        let runc = br#"{"ociVersion":"1.0.2-dev","id":"c1","status":"creating","pid":5607,"bundle":"/b"}"#;
        let s = parse_state(runc).unwrap();
        assert_eq!((s.id.as_str(), s.pid, s.bundle.as_str()), ("c1", Some(5607), "/b"));
        let crun = br#"{"ociVersion":"1.0","id":"c2","status":"created","pid":9,"bundle":"/b","root":"/r","annotations":{"a":"b"}}"#;
        assert_eq!(parse_state(crun).unwrap().annotations["a"], "b");
        let stopped = br#"{"ociVersion":"1.0.2-dev","id":"c1","status":"stopped","bundle":"/b"}"#;
        assert_eq!(parse_state(stopped).unwrap().pid, None);
    }

    #[test]
    fn refuses_garbage_and_missing_ids() {
        assert!(matches!(parse_state(b"\x00\xffnot json"), Err(OciError::State(_))));
        assert!(matches!(parse_state(br#"{"status":"creating"}"#), Err(OciError::NoId)));
    }

    #[test]
    fn parses_the_config_fields_it_needs() {
        let cfg = br#"{"ociVersion":"1.0.2","process":{"args":["/bin/sh","-c","x"],"cwd":"/"},
            "annotations":{"io.kubernetes.cri.container-type":"container"},
            "linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/proc/1/ns/net"}]}}"#;
        let c = parse_config(cfg, Path::new("config.json")).unwrap();
        assert_eq!(c.process.unwrap().args, vec!["/bin/sh", "-c", "x"]);
        assert_eq!(c.linux.unwrap().namespaces[1].path, "/proc/1/ns/net");
    }

    #[test]
    fn a_fifo_or_a_huge_config_is_an_error_at_once() {
        let dir = std::env::temp_dir().join(format!("oci-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("config.json");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let started = std::time::Instant::now();
        let err = read_config(&dir).unwrap_err();
        assert!(matches!(err, OciError::Read { .. }), "{err:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        std::fs::remove_file(&fifo).unwrap();
        let f = std::fs::File::create(&fifo).unwrap();
        f.set_len(100 << 20).unwrap();
        assert!(matches!(read_config(&dir), Err(OciError::TooLarge { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_deeply_nested_state_is_an_error_not_a_crash() {
        let mut deep = String::from(r#"{"id":"x","annotations":"#);
        deep.push_str(&"[".repeat(100_000));
        assert!(matches!(parse_state(deep.as_bytes()), Err(OciError::State(_))));
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic_the_parsers(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_state(&bytes);
            let _ = parse_config(&bytes, Path::new("config.json"));
        }

        #[test]
        fn random_json_values_never_panic_the_parsers(
            id in ".{0,20}", pid in proptest::option::of(proptest::num::u32::ANY), status in ".{0,10}",
            key in ".{0,10}", value in ".{0,10}",
        ) {
            let v = serde_json::json!({"id": id, "pid": pid, "status": status, "bundle": key, "annotations": {key.clone(): value}});
            let bytes = serde_json::to_vec(&v).unwrap();
            if let Ok(s) = parse_state(&bytes) {
                proptest::prop_assert_eq!(s.pid, pid);
            }
            let _ = parse_config(&bytes, Path::new("config.json"));
        }
    }
}
