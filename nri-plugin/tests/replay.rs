//! Replays bytes recorded from real containerds (1.7.24 and 2.1.9) through
//! the mux, ttrpc and NRI decoding, and through the plugin itself.
// An integration test: its helpers may unwrap too (a failure is the test's).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;

use ig_nri::mux::{Demux, PLUGIN_CONN, RUNTIME_CONN};
use ig_nri::plugin::{PluginConfig, serve_stream};
use ig_nri::proto::{self, event};
use ig_nri::records::Sink;
use ig_nri::ttrpc::{self, Parser};
use prost::Message;

/// One recorded session (fixtures/README.md says how each was made).
struct Session {
    bytes: &'static [u8],
    runtime_version: &'static str,
}

const V1_7: Session =
    Session { bytes: include_bytes!("fixtures/containerd-1.7.24-session.bin"), runtime_version: "1.7.24" };
const V2: Session =
    Session { bytes: include_bytes!("fixtures/containerd-2.1.9-session.bin"), runtime_version: "2.1.9" };

/// (connection, ttrpc message) in arrival order, fed in awkward pieces.
fn messages(bytes: &[u8]) -> Vec<(u32, ttrpc::Message)> {
    let mut demux = Demux::default();
    let mut conns = [Parser::default(), Parser::default(), Parser::default()];
    let mut out = Vec::new();
    for piece in bytes.chunks(7) {
        for (conn, payload) in demux.feed(piece).expect("valid mux frames") {
            for m in conns[conn as usize].feed(&payload).expect("valid ttrpc") {
                out.push((conn, m));
            }
        }
    }
    assert_eq!(demux.pending(), 0);
    out
}

/// The fields of a ConfigureRequest that NRI 0.8 (containerd 2.x) added
/// after ours: the runtime's timeouts, in milliseconds. ig-nri ignores them.
#[derive(Clone, PartialEq, prost::Message)]
struct ConfigureTimeouts {
    #[prost(int64, tag = "4")]
    registration_timeout: i64,
    #[prost(int64, tag = "5")]
    request_timeout: i64,
}

fn configure_request(session: &Session) -> (proto::ConfigureRequest, ConfigureTimeouts) {
    let msgs = messages(session.bytes);
    let (_, m) = msgs.iter().find(|(c, _)| *c == PLUGIN_CONN).expect("a first request");
    let req = proto::Request::decode(m.data.as_slice()).unwrap();
    assert_eq!(req.method, "Configure");
    (
        proto::ConfigureRequest::decode(req.payload.as_slice()).unwrap(),
        ConfigureTimeouts::decode(req.payload.as_slice()).unwrap(),
    )
}

#[test]
fn containerd_1_7_configures_without_timeouts() {
    let (req, timeouts) = configure_request(&V1_7);
    assert_eq!(req.runtime_name, "containerd");
    assert!(req.runtime_version.starts_with(V1_7.runtime_version), "{}", req.runtime_version);
    assert_eq!(timeouts, ConfigureTimeouts::default());
}

#[test]
fn containerd_2_configures_with_its_timeouts_which_the_plugin_ignores() {
    let (req, timeouts) = configure_request(&V2);
    assert_eq!(req.runtime_name, "containerd");
    assert!(req.runtime_version.starts_with(V2.runtime_version), "{}", req.runtime_version);
    // containerd 2.x's defaults: 5 s to register, 2 s per request.
    assert_eq!(timeouts, ConfigureTimeouts { registration_timeout: 5000, request_timeout: 2000 });
}

#[test]
fn a_recorded_containerd_1_7_session_decodes() {
    a_recorded_session_decodes(&V1_7);
}

#[test]
fn a_recorded_containerd_2_session_decodes() {
    a_recorded_session_decodes(&V2);
}

fn a_recorded_session_decodes(session: &Session) {
    let msgs = messages(session.bytes);
    // conn 2: the answer to RegisterPlugin (stream 1), OK.
    let (_, reg) = msgs.iter().find(|(c, _)| *c == RUNTIME_CONN).expect("register answer");
    assert_eq!((reg.stream_id, reg.kind), (1, ttrpc::TYPE_RESPONSE));
    assert_eq!(proto::Response::decode(reg.data.as_slice()).unwrap().status.filter(|s| s.code != 0), None);

    let mut methods = Vec::new();
    let mut events = BTreeSet::new();
    let mut started = None;
    for (_, m) in msgs.iter().filter(|(c, _)| *c == PLUGIN_CONN) {
        assert_eq!(m.kind, ttrpc::TYPE_REQUEST);
        assert_eq!(m.stream_id % 2, 1, "client streams are odd");
        let req = proto::Request::decode(m.data.as_slice()).unwrap();
        assert_eq!(req.service, proto::PLUGIN_SERVICE);
        if req.method == "StateChange" {
            let ev = proto::StateChangeEvent::decode(req.payload.as_slice()).unwrap();
            if ev.event == event::START_CONTAINER {
                started = Some(ev.clone());
            }
            events.insert(ev.event);
        }
        methods.push(req.method);
    }
    assert_eq!(&methods[..2], ["Configure", "Synchronize"]);
    assert!(methods.iter().any(|m| m == "StopContainer"), "{methods:?}");
    // Exactly the events of mask 0x667 that a pod's life produces.
    let want = [
        event::RUN_POD_SANDBOX,
        event::START_CONTAINER,
        event::POST_START_CONTAINER,
        event::REMOVE_CONTAINER,
        event::STOP_POD_SANDBOX,
        event::REMOVE_POD_SANDBOX,
    ];
    assert_eq!(events, want.into_iter().collect::<BTreeSet<_>>());
    let started = started.expect("START_CONTAINER");
    let (pod, c) = (started.pod.unwrap(), started.container.unwrap());
    assert_eq!(
        (pod.namespace.as_str(), pod.name.as_str(), pod.uid.as_str()),
        ("rec-ns", "rec-pod", "rec-uid")
    );
    assert_eq!(pod.labels["app"], "rec");
    assert_eq!(c.name, "rec-ctr");
    assert!(c.pid > 0, "the init pid is known at START_CONTAINER");
    assert_eq!(c.args, ["/bin/sleep", "30"]);
}

/// What the plugin handed on: records added, container ids removed.
#[derive(Default)]
struct Recorded {
    added: Vec<shared::ContainerRecord>,
    removed: Vec<String>,
}
impl Sink for Recorded {
    fn add(&mut self, r: shared::ContainerRecord) {
        self.added.push(r);
    }
    fn remove(&mut self, id: &str) {
        self.removed.push(id.to_string());
    }
}

#[test]
fn the_plugin_answers_every_request_of_containerd_1_7() {
    the_plugin_answers_every_recorded_request(&V1_7);
}

#[test]
fn the_plugin_answers_every_request_of_containerd_2() {
    the_plugin_answers_every_recorded_request(&V2);
}

/// The recorded container's init pid and id (from its START_CONTAINER).
fn started_container(session: &Session) -> (u32, String) {
    messages(session.bytes)
        .into_iter()
        .filter(|(c, _)| *c == PLUGIN_CONN)
        .map(|(_, m)| proto::Request::decode(m.data.as_slice()).unwrap())
        .filter(|r| r.method == "StateChange")
        .map(|r| proto::StateChangeEvent::decode(r.payload.as_slice()).unwrap())
        .find(|ev| ev.event == event::START_CONTAINER)
        .and_then(|ev| ev.container)
        .map(|c| (c.pid, c.id))
        .expect("a START_CONTAINER")
}

fn the_plugin_answers_every_recorded_request(session: &Session) {
    // The recorded pid is long gone: under the plugin's root, its /proc
    // entry is this test's own process, so the record is built for real.
    let (pid, id) = started_container(session);
    let root = std::env::temp_dir().join(format!("ig-nri-replay-{}-{pid}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("proc")).unwrap();
    for p in [pid, 1] {
        let own = if p == 1 { "/proc/1".to_string() } else { format!("/proc/{}", std::process::id()) };
        std::os::unix::fs::symlink(own, root.join(format!("proc/{p}"))).unwrap();
    }
    let cfg =
        PluginConfig { socket: Default::default(), name: "ig".into(), idx: "90".into(), root: root.clone() };
    let (plugin_end, mut runtime_end) = UnixStream::pair().unwrap();
    let plugin = std::thread::spawn(move || {
        let mut sink = Recorded::default();
        serve_stream(plugin_end, &cfg, &mut sink).map(|()| sink)
    });
    runtime_end.write_all(session.bytes).unwrap();
    runtime_end.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answers = Vec::new();
    runtime_end.read_to_end(&mut answers).unwrap();
    let sink = plugin.join().unwrap().expect("the session ends cleanly");
    let [rec] = &sink.added[..] else { panic!("one container recorded: {:?}", sink.added) };
    assert_eq!(rec.runtime.container_id, id);
    assert_eq!((rec.runtime.container_name.as_str(), rec.pid), ("rec-ctr", pid));
    assert_eq!((rec.k8s.namespace.as_str(), rec.k8s.pod_name.as_str()), ("rec-ns", "rec-pod"));
    assert_eq!(rec.runtime.container_image_name, "localhost/ig-busybox:latest");
    // The pod's own labels: containerd's io.cri-containerd.kind is not one.
    assert_eq!(rec.k8s.pod_labels, [("app".to_string(), "rec".to_string())].into());
    assert_eq!(rec.mntns, std::fs::metadata("/proc/self/ns/mnt").map(|m| m.ino()).unwrap());
    assert_eq!(sink.removed, [id], "removed once, at STOP_CONTAINER");
    std::fs::remove_dir_all(&root).unwrap();

    let requests = messages(session.bytes).into_iter().filter(|(c, _)| *c == PLUGIN_CONN).count();
    let replies: Vec<_> = messages(&answers).into_iter().filter(|(c, _)| *c == PLUGIN_CONN).collect();
    assert_eq!(replies.len(), requests, "one answer per request");
    for (_, r) in &replies {
        let resp = proto::Response::decode(r.data.as_slice()).unwrap();
        assert_eq!(resp.status, None, "every answer is OK");
    }
    let first = proto::Response::decode(replies[0].1.data.as_slice()).unwrap();
    assert_eq!(proto::ConfigureResponse::decode(first.payload.as_slice()).unwrap().events, 0x667);
}
