//! The socket every tracer process listens on for container records
//! (`/run/ig/tracers/ig-<pid>-<n>.sock`, root only). A record is in the
//! collection, and so in every subscribed filter map, before the answer is
//! written: an acknowledged container is traced from its first exec.
//!
//! It runs on its own threads, not on the gadget's event loop, so that a
//! slow terminal or a busy drain never delays a container start.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use shared::hookproto::{Ack, MAX_LINE, Message, VERSION, tracers_dir};

use super::SourceError;
use crate::collection::{Collection, Source};

/// How long a source may take to send its line.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Listener {
    path: PathBuf,
    stop: Arc<AtomicBool>,
}

impl Listener {
    pub fn start(root: &Path, collection: Arc<Collection>) -> Result<Self, SourceError> {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = tracers_dir(root);
        let path = dir.join(format!("ig-{}-{}.sock", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let err = |source| SourceError::Listen { path: path.clone(), source };
        std::fs::create_dir_all(&dir).map_err(err)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(err)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        std::thread::Builder::new()
            .name("ig-listener".into())
            .spawn(move || accept_loop(listener, collection, stop2))
            .map_err(err)?;
        tracing::debug!(path = %path.display(), "listening for container records");
        Ok(Self { path, stop })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::fs::remove_file(&self.path);
        // Wake the blocking accept so the thread sees the flag.
        let _ = UnixStream::connect(&self.path);
    }
}

fn accept_loop(listener: UnixListener, collection: Arc<Collection>, stop: Arc<AtomicBool>) {
    for conn in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        match conn {
            Ok(stream) => {
                let collection = collection.clone();
                // One thread per connection: a source that stalls holds only itself.
                let _ = std::thread::Builder::new()
                    .name("ig-source".into())
                    .spawn(move || serve(stream, &collection));
            }
            Err(e) => tracing::warn!("accepting a container source: {e}"),
        }
    }
}

fn serve(stream: UnixStream, collection: &Collection) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    let peer = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
        .map(|c| format!("pid {} uid {}", c.pid(), c.uid()))
        .unwrap_or_default();
    let mut line = Vec::new();
    let read = BufReader::new(&stream).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut line);
    let ack = match read {
        Ok(0) => return,
        Ok(_) if line.len() > MAX_LINE => {
            Ack { ok: false, error: format!("message longer than {MAX_LINE} bytes") }
        }
        Ok(_) => handle(&line, collection),
        Err(e) => Ack { ok: false, error: format!("reading: {e}") },
    };
    if !ack.ok {
        tracing::warn!(peer, "refused a container message: {}", ack.error);
    }
    let mut out = serde_json::to_vec(&ack).expect("acks serialize");
    out.push(b'\n');
    let _ = (&stream).write_all(&out);
}

/// Applies one message to the collection and says how it went.
pub fn handle(line: &[u8], collection: &Collection) -> Ack {
    match serde_json::from_slice::<Message>(line) {
        Ok(Message::Add { version, record, source }) if version == VERSION => {
            tracing::debug!(
                id = record.runtime.container_id,
                mntns = record.mntns,
                ?source,
                "container added"
            );
            collection.add(*record, Source::from_wire(source.as_deref()));
            Ack { ok: true, error: String::new() }
        }
        Ok(Message::Remove { version, container_id }) if version == VERSION => {
            tracing::debug!(id = container_id, "container removed");
            collection.remove(&container_id);
            Ack { ok: true, error: String::new() }
        }
        Ok(Message::Add { version, .. } | Message::Remove { version, .. }) => {
            Ack { ok: false, error: format!("unsupported version {version} (this tracer speaks {VERSION})") }
        }
        Err(e) => Ack { ok: false, error: format!("malformed message: {e}") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_add_remove_and_garbage() {
        let c = Collection::new();
        let mut r = shared::ContainerRecord::default();
        r.runtime.container_id = "x".into();
        let add = serde_json::to_vec(&Message::Add { version: VERSION, record: Box::new(r), source: None })
            .unwrap();
        assert!(handle(&add, &c).ok);
        assert_eq!(c.len(), 1);
        let rm = serde_json::to_vec(&Message::Remove { version: VERSION, container_id: "x".into() }).unwrap();
        assert!(handle(&rm, &c).ok);
        assert!(c.is_empty());
        let bad = handle(b"\x00garbage", &c);
        assert!(!bad.ok && bad.error.contains("malformed"));
        let v9 = handle(br#"{"kind":"remove","version":9,"containerId":"x"}"#, &c);
        assert!(!v9.ok && v9.error.contains("version 9"));
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_get_an_error_never_a_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let c = Collection::new();
            let ack = handle(&bytes, &c);
            proptest::prop_assert!(!ack.ok);
            proptest::prop_assert!(c.is_empty());
        }
    }
}
