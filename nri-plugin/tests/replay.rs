//! Replays bytes recorded from a real containerd 1.7.24 through the mux,
//! ttrpc and NRI decoding, and through the plugin itself.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use ig_nri::mux::{Demux, PLUGIN_CONN, RUNTIME_CONN};
use ig_nri::plugin::{PluginConfig, serve_stream};
use ig_nri::proto::{self, event};
use ig_nri::records::Sink;
use ig_nri::ttrpc::{self, Parser};
use prost::Message;

const SESSION: &[u8] = include_bytes!("fixtures/containerd-1.7.24-session.bin");

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

#[test]
fn a_recorded_containerd_session_decodes() {
    let msgs = messages(SESSION);
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

struct NoSink;
impl Sink for NoSink {
    fn add(&mut self, _: shared::ContainerRecord) {}
    fn remove(&mut self, _: &str) {}
}

#[test]
fn the_plugin_answers_every_recorded_request() {
    let (plugin_end, mut runtime_end) = UnixStream::pair().unwrap();
    let cfg =
        PluginConfig { socket: Default::default(), name: "ig".into(), idx: "90".into(), root: "/".into() };
    let plugin = std::thread::spawn(move || serve_stream(plugin_end, &cfg, &mut NoSink));
    runtime_end.write_all(SESSION).unwrap();
    runtime_end.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answers = Vec::new();
    runtime_end.read_to_end(&mut answers).unwrap();
    plugin.join().unwrap().expect("the session ends cleanly");

    let requests = messages(SESSION).into_iter().filter(|(c, _)| *c == PLUGIN_CONN).count();
    let replies: Vec<_> = messages(&answers).into_iter().filter(|(c, _)| *c == PLUGIN_CONN).collect();
    assert_eq!(replies.len(), requests, "one answer per request");
    for (_, r) in &replies {
        let resp = proto::Response::decode(r.data.as_slice()).unwrap();
        assert_eq!(resp.status, None, "every answer is OK");
    }
    let first = proto::Response::decode(replies[0].1.data.as_slice()).unwrap();
    assert_eq!(proto::ConfigureResponse::decode(first.payload.as_slice()).unwrap().events, 0x667);
}
