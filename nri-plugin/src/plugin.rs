//! One connection to containerd's NRI socket: serve the Plugin service on
//! conn 1 (from before registering: containerd may call Configure before we
//! read its answer to RegisterPlugin), register on conn 2, then answer every
//! request at once. A container starting is recorded before the answer, so
//! its first exec is traced; nothing we answer can fail a pod or container.

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message as _;

use crate::mux::{self, Demux, MuxError, PLUGIN_CONN, RUNTIME_CONN};
use crate::proto::{self, event};
use crate::records::{self, Pods, Sink};
use crate::ttrpc::{self, Parser, TtrpcError};

/// How long containerd has to answer RegisterPlugin.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum NriError {
    #[error("connecting to {path}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("socket I/O")]
    Io(#[from] std::io::Error),
    #[error("bad mux frame")]
    Mux(#[from] MuxError),
    #[error("bad ttrpc frame")]
    Ttrpc(#[from] TtrpcError),
    #[error("containerd refused the registration: {0}")]
    Refused(String),
    #[error("no answer to RegisterPlugin within {REGISTER_TIMEOUT:?}")]
    RegisterTimeout,
    #[error("containerd closed the connection")]
    Closed,
}

#[derive(Clone, Debug)]
pub struct PluginConfig {
    pub socket: PathBuf,
    pub name: String,
    /// Two digits, "00"-"99": the plugin's order among NRI plugins.
    pub idx: String,
    pub root: PathBuf,
}

/// Connects, registers and serves until the connection ends; the reason it
/// ended is the error.
pub fn serve(cfg: &PluginConfig, sink: &mut dyn Sink) -> NriError {
    let stream = match UnixStream::connect(&cfg.socket) {
        Ok(s) => s,
        Err(source) => return NriError::Connect { path: cfg.socket.clone(), source },
    };
    match serve_stream(stream, cfg, sink) {
        Ok(()) => NriError::Closed,
        Err(e) => e,
    }
}

/// Serves for ever, reconnecting with back-off (100 ms doubling to 5 s)
/// whenever containerd goes away: it re-creates the socket when it restarts.
pub fn serve_forever(cfg: &PluginConfig, sink: &mut dyn Sink) -> ! {
    let mut backoff = std::time::Duration::from_millis(100);
    loop {
        let started = std::time::Instant::now();
        let reason = serve(cfg, sink);
        // A connection that lived a while was healthy: retry fast again.
        if started.elapsed() > std::time::Duration::from_secs(10) {
            backoff = std::time::Duration::from_millis(100);
        }
        tracing::warn!("NRI connection ended: {}; reconnecting in {backoff:?}", shared::error_chain(&reason));
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
    }
}

pub fn serve_stream(stream: UnixStream, cfg: &PluginConfig, sink: &mut dyn Sink) -> Result<(), NriError> {
    let writer = Arc::new(Mutex::new(stream.try_clone()?));
    let (registered_tx, registered_rx) = channel();
    // Register from another thread while this one already serves conn 1.
    let register_writer = writer.clone();
    let register =
        proto::RegisterPluginRequest { plugin_name: cfg.name.clone(), plugin_idx: cfg.idx.clone() };
    let stream_for_timeout = stream.try_clone()?;
    // No thread, no timeout: the connection is refused rather than served
    // without the bound on registration.
    std::thread::Builder::new().name("nri-register".into()).spawn(move || {
        let req = proto::Request {
            service: proto::RUNTIME_SERVICE.into(),
            method: "RegisterPlugin".into(),
            payload: register.encode_to_vec(),
            timeout_nano: REGISTER_TIMEOUT.as_nanos() as i64,
        };
        let frame = ttrpc::encode(1, ttrpc::TYPE_REQUEST, &req.encode_to_vec());
        let sent = mux::write_frames(&mut *lock(&register_writer), RUNTIME_CONN, &frame);
        if sent.is_err() || registered_rx.recv_timeout(REGISTER_TIMEOUT).is_err() {
            // Unblock the reader: the connection is useless unregistered.
            let _ = stream_for_timeout.shutdown(std::net::Shutdown::Both);
        }
    })?;
    let mut conn = Connection {
        writer,
        cfg: cfg.clone(),
        pods: Pods::default(),
        recorded: HashSet::new(),
        registered: Some(registered_tx),
    };
    conn.read_loop(stream, sink)
}

/// The socket's writer; a writer that panicked mid-frame leaves a stream
/// the next read or write reports broken, so poisoning adds nothing.
fn lock(writer: &Mutex<UnixStream>) -> std::sync::MutexGuard<'_, UnixStream> {
    writer.lock().unwrap_or_else(|e| e.into_inner())
}

struct Connection {
    writer: Arc<Mutex<UnixStream>>,
    cfg: PluginConfig,
    pods: Pods,
    /// Containers already handed on: POST_START repeats START.
    recorded: HashSet<String>,
    registered: Option<Sender<()>>,
}

impl Connection {
    fn read_loop(&mut self, mut stream: UnixStream, sink: &mut dyn Sink) -> Result<(), NriError> {
        let mut demux = Demux::default();
        let (mut plugin_conn, mut runtime_conn) = (Parser::default(), Parser::default());
        let mut buf = vec![0u8; 64 * 1024];
        // IG_NRI_RECORD=FILE keeps what the runtime sent, for replay tests.
        let mut record = std::env::var_os("IG_NRI_RECORD").and_then(|p| std::fs::File::create(p).ok());
        loop {
            let n = match stream.read(&mut buf) {
                Ok(n) => n,
                // Linux resets rather than ends a connection closed while
                // our own frames sit unread in the peer's buffer: the same
                // close as an end of file.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
                Err(e) => return Err(e.into()),
            };
            if let Some(f) = record.as_mut() {
                let _ = std::io::Write::write_all(f, &buf[..n]);
            }
            if n == 0 {
                return if self.registered.is_some() { Err(NriError::RegisterTimeout) } else { Ok(()) };
            }
            for (conn, payload) in demux.feed(&buf[..n])? {
                if conn == PLUGIN_CONN {
                    for msg in plugin_conn.feed(&payload)? {
                        self.on_request(msg, sink)?;
                    }
                } else {
                    for msg in runtime_conn.feed(&payload)? {
                        self.on_runtime_response(msg)?;
                    }
                }
            }
        }
    }

    /// conn 2 carries only the answer to our RegisterPlugin.
    fn on_runtime_response(&mut self, msg: ttrpc::Message) -> Result<(), NriError> {
        if msg.kind != ttrpc::TYPE_RESPONSE || msg.stream_id != 1 {
            tracing::debug!(
                stream = msg.stream_id,
                kind = msg.kind,
                "unexpected message on the runtime connection"
            );
            return Ok(());
        }
        let resp = proto::Response::decode(msg.data.as_slice()).unwrap_or_default();
        if let Some(status) = resp.status.filter(|s| s.code != 0) {
            return Err(NriError::Refused(format!("code {}: {}", status.code, status.message)));
        }
        if let Some(tx) = self.registered.take() {
            let _ = tx.send(());
            tracing::info!(name = self.cfg.name, idx = self.cfg.idx, "registered with the runtime");
        }
        Ok(())
    }

    fn on_request(&mut self, msg: ttrpc::Message, sink: &mut dyn Sink) -> Result<(), NriError> {
        if msg.kind != ttrpc::TYPE_REQUEST {
            return Ok(());
        }
        let response = match proto::Request::decode(msg.data.as_slice()) {
            Ok(req) if req.service == proto::PLUGIN_SERVICE => self.dispatch(&req.method, &req.payload, sink),
            Ok(req) => unimplemented(&format!("unknown service {}", req.service)),
            // An undecodable request still gets an OK answer: an error could fail a pod.
            Err(e) => {
                tracing::warn!("undecodable ttrpc request: {e}");
                ok(Vec::new())
            }
        };
        let frame = ttrpc::encode(msg.stream_id, ttrpc::TYPE_RESPONSE, &response.encode_to_vec());
        mux::write_frames(&mut *lock(&self.writer), PLUGIN_CONN, &frame)?;
        Ok(())
    }

    fn dispatch(&mut self, method: &str, payload: &[u8], sink: &mut dyn Sink) -> proto::Response {
        match method {
            "Configure" => {
                let req = proto::ConfigureRequest::decode(payload).unwrap_or_default();
                tracing::info!(runtime = req.runtime_name, version = req.runtime_version, "configured");
                ok(proto::ConfigureResponse { events: event::READ_ONLY_MASK }.encode_to_vec())
            }
            "Synchronize" => {
                let req = proto::SynchronizeRequest::decode(payload).unwrap_or_default();
                self.synchronize(&req, sink);
                ok(proto::SynchronizeResponse { more: req.more }.encode_to_vec())
            }
            "StateChange" => {
                if let Ok(ev) = proto::StateChangeEvent::decode(payload) {
                    self.state_change(ev, sink);
                }
                ok(Vec::new())
            }
            "StopContainer" => {
                if let Ok(req) = proto::ContainerRequest::decode(payload)
                    && let Some(c) = req.container
                {
                    self.remove(&c.id, sink);
                }
                ok(Vec::new())
            }
            // Not subscribed to, but answered harmlessly if they come.
            "CreateContainer" | "UpdateContainer" | "Shutdown" => ok(Vec::new()),
            other => unimplemented(&format!("unknown method {other}")),
        }
    }

    fn synchronize(&mut self, req: &proto::SynchronizeRequest, sink: &mut dyn Sink) {
        for pod in &req.pods {
            self.pods.put(pod);
        }
        let mut added = 0;
        for c in req.containers.iter().filter(|c| c.state == proto::CONTAINER_RUNNING && c.pid > 0) {
            self.add(c, sink);
            added += 1;
        }
        tracing::info!(pods = req.pods.len(), containers = req.containers.len(), added, "synchronized");
    }

    fn state_change(&mut self, ev: proto::StateChangeEvent, sink: &mut dyn Sink) {
        if let Some(pod) = &ev.pod {
            self.pods.put(pod);
        }
        match (ev.event, ev.container) {
            (event::START_CONTAINER | event::POST_START_CONTAINER, Some(c)) if c.pid > 0 => {
                self.add(&c, sink)
            }
            (event::STOP_CONTAINER | event::REMOVE_CONTAINER, Some(c)) => self.remove(&c.id, sink),
            (event::REMOVE_POD_SANDBOX, _) => {
                if let Some(pod) = ev.pod {
                    self.pods.forget(&pod.id);
                }
            }
            _ => {}
        }
    }

    fn remove(&mut self, id: &str, sink: &mut dyn Sink) {
        // STOP_CONTAINER then REMOVE_CONTAINER: say it once.
        if self.recorded.remove(id) {
            sink.remove(id);
        }
    }

    fn add(&mut self, c: &proto::Container, sink: &mut dyn Sink) {
        if self.recorded.contains(&c.id) {
            return;
        }
        let started = std::time::Instant::now();
        match records::record(&self.cfg.root, self.pods.get(&c.pod_sandbox_id), c) {
            Ok(r) => {
                sink.add(r);
                self.recorded.insert(c.id.clone());
                tracing::debug!(id = c.id, took = ?started.elapsed(), "container recorded");
            }
            Err(e) => tracing::warn!("{e}: {:?}", std::error::Error::source(&e).map(|s| s.to_string())),
        }
    }
}

fn ok(payload: Vec<u8>) -> proto::Response {
    proto::Response { status: None, payload }
}

fn unimplemented(message: &str) -> proto::Response {
    proto::Response {
        status: Some(proto::Status { code: proto::UNIMPLEMENTED, message: message.to_string() }),
        payload: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use prost::Message as _;

    use super::*;

    /// Records what the plugin hands on.
    #[derive(Clone, Default)]
    struct RecordingSink(Arc<Mutex<Vec<String>>>);

    impl Sink for RecordingSink {
        fn add(&mut self, record: shared::ContainerRecord) {
            self.0
                .lock()
                .unwrap()
                .push(format!("+{}/{}", record.k8s.pod_name, record.runtime.container_name));
        }
        fn remove(&mut self, container_id: &str) {
            self.0.lock().unwrap().push(format!("-{container_id}"));
        }
    }

    fn cfg() -> PluginConfig {
        PluginConfig { socket: PathBuf::new(), name: "ig".into(), idx: "90".into(), root: PathBuf::from("/") }
    }

    /// The runtime's side of the socket, scripted by the test (a mock of containerd).
    struct MockRuntime {
        stream: UnixStream,
        demux: Demux,
        conns: [Parser; 3],
        next_stream: u32,
    }

    impl MockRuntime {
        fn call(&mut self, method: &str, payload: Vec<u8>) -> proto::Response {
            let req = proto::Request {
                service: proto::PLUGIN_SERVICE.into(),
                method: method.into(),
                payload,
                timeout_nano: 2_000_000_000,
            };
            let id = self.next_stream;
            self.next_stream += 2;
            mux::write_frames(
                &mut self.stream,
                PLUGIN_CONN,
                &ttrpc::encode(id, ttrpc::TYPE_REQUEST, &req.encode_to_vec()),
            )
            .unwrap();
            let msg = self.next_message(PLUGIN_CONN);
            assert_eq!((msg.stream_id, msg.kind), (id, ttrpc::TYPE_RESPONSE));
            proto::Response::decode(msg.data.as_slice()).unwrap()
        }

        fn next_message(&mut self, want_conn: u32) -> ttrpc::Message {
            let mut buf = [0u8; 4096];
            loop {
                let n = self.stream.read(&mut buf).unwrap();
                assert!(n > 0, "plugin closed the connection");
                for (conn, payload) in self.demux.feed(&buf[..n]).unwrap() {
                    let mut msgs = self.conns[conn as usize].feed(&payload).unwrap();
                    if conn == want_conn && !msgs.is_empty() {
                        return msgs.remove(0);
                    }
                }
            }
        }
    }

    #[test]
    fn a_scripted_runtime_session() {
        let (plugin_end, runtime_end) = UnixStream::pair().unwrap();
        let sink = RecordingSink::default();
        let mut plugin_sink = sink.clone();
        let plugin = std::thread::spawn(move || serve_stream(plugin_end, &cfg(), &mut plugin_sink));
        let mut rt = MockRuntime {
            stream: runtime_end,
            demux: Demux::default(),
            conns: Default::default(),
            next_stream: 1,
        };

        // The plugin registers first, on conn 2.
        let reg = rt.next_message(RUNTIME_CONN);
        let req = proto::Request::decode(reg.data.as_slice()).unwrap();
        assert_eq!((req.service.as_str(), req.method.as_str()), (proto::RUNTIME_SERVICE, "RegisterPlugin"));
        let r = proto::RegisterPluginRequest::decode(req.payload.as_slice()).unwrap();
        assert_eq!((r.plugin_name.as_str(), r.plugin_idx.as_str()), ("ig", "90"));

        // Configure may come before the registration answer: it is served anyway.
        let conf = rt.call("Configure", proto::ConfigureRequest::default().encode_to_vec());
        let events = proto::ConfigureResponse::decode(conf.payload.as_slice()).unwrap().events;
        assert_eq!(events, 0x667);
        let ok = proto::Response::default().encode_to_vec();
        mux::write_frames(&mut rt.stream, RUNTIME_CONN, &ttrpc::encode(1, ttrpc::TYPE_RESPONSE, &ok))
            .unwrap();

        let pod = proto::PodSandbox { id: "p1".into(), name: "web-0".into(), ..Default::default() };
        let running = proto::Container {
            id: "c1".into(),
            pod_sandbox_id: "p1".into(),
            name: "app".into(),
            state: proto::CONTAINER_RUNNING,
            pid: std::process::id(),
            ..Default::default()
        };
        let sync =
            proto::SynchronizeRequest { pods: vec![pod.clone()], containers: vec![running], more: true };
        let resp = rt.call("Synchronize", sync.encode_to_vec());
        assert!(proto::SynchronizeResponse::decode(resp.payload.as_slice()).unwrap().more, "more is echoed");

        let started = proto::Container {
            id: "c2".into(),
            pod_sandbox_id: "p1".into(),
            name: "side".into(),
            pid: std::process::id(),
            ..Default::default()
        };
        let ev = proto::StateChangeEvent {
            event: event::START_CONTAINER,
            pod: Some(pod),
            container: Some(started),
        };
        assert_eq!(rt.call("StateChange", ev.encode_to_vec()).status, None);
        let stop = proto::ContainerRequest {
            pod: None,
            container: Some(proto::Container { id: "c1".into(), ..Default::default() }),
        };
        assert_eq!(rt.call("StopContainer", stop.encode_to_vec()).status, None);

        let unknown = rt.call("NoSuchMethod", Vec::new());
        assert_eq!(unknown.status.unwrap().code, proto::UNIMPLEMENTED);
        let garbage_payload = rt.call("StateChange", vec![0xff, 0xff, 0xff]);
        assert_eq!(garbage_payload.status, None, "an undecodable event still gets OK");

        drop(rt);
        let end = plugin.join().unwrap();
        assert!(end.is_ok(), "{end:?}");
        assert_eq!(*sink.0.lock().unwrap(), vec!["+web-0/app", "+web-0/side", "-c1"]);
    }

    fn serve_bytes(bytes: &[u8]) -> Result<(), NriError> {
        let (plugin_end, mut runtime_end) = UnixStream::pair().unwrap();
        let mut sink = RecordingSink::default();
        let plugin = std::thread::spawn(move || serve_stream(plugin_end, &cfg(), &mut sink));
        runtime_end.write_all(bytes).unwrap();
        drop(runtime_end);
        plugin.join().unwrap()
    }

    /// The runtime closes with our RegisterPlugin frame unread in its
    /// buffer: Linux then resets the connection instead of ending it.
    #[test]
    fn a_reset_from_the_runtime_is_a_close() {
        use std::os::fd::AsRawFd;
        let (plugin_end, runtime_end) = UnixStream::pair().unwrap();
        let mut sink = RecordingSink::default();
        let plugin = std::thread::spawn(move || serve_stream(plugin_end, &cfg(), &mut sink));
        let mut pfd = libc::pollfd { fd: runtime_end.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        assert_eq!(unsafe { libc::poll(&mut pfd, 1, 5000) }, 1, "the plugin sent RegisterPlugin");
        drop(runtime_end);
        assert!(matches!(plugin.join().unwrap(), Err(NriError::RegisterTimeout)));
    }

    #[test]
    fn garbage_and_truncated_frames_end_the_connection_cleanly() {
        let started = std::time::Instant::now();
        assert!(matches!(serve_bytes(&[0, 0, 0, 9, 0, 0, 0, 1, 0]), Err(NriError::Mux(_))));
        assert!(matches!(serve_bytes(&[0, 0, 0, 1, 0xff, 0, 0, 0]), Err(NriError::Mux(_))));
        // a ttrpc header announcing 4 GiB
        let mut huge = vec![0, 0, 0, 1, 0, 0, 0, 10];
        huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 1, 0]);
        assert!(matches!(serve_bytes(&huge), Err(NriError::Ttrpc(_))));
        // half a frame, then the runtime goes away
        assert!(matches!(serve_bytes(&[0, 0, 0, 1, 0, 0, 0, 50, 1, 2, 3]), Err(NriError::RegisterTimeout)));
        assert!(started.elapsed() < std::time::Duration::from_secs(3), "no hang");
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic_or_hang(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = serve_bytes(&bytes);
        }
    }
}
