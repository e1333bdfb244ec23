//! Bytes from containerd's NRI socket, end to end through the plugin: the
//! connection mux, ttrpc framing, the protobuf messages, and the records
//! built from them. The input is everything the runtime sends; then it
//! stops sending (its end stays open, so the plugin's answers are taken).
#![no_main]

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use ig_nri::plugin::{PluginConfig, serve_stream};
use ig_nri::records::Sink;

/// Counts what the plugin hands on, checking each record names a container.
struct CheckingSink;

impl Sink for CheckingSink {
    fn add(&mut self, record: shared::ContainerRecord) {
        assert!(!record.runtime.container_id.is_empty(), "a record names its container");
    }
    fn remove(&mut self, _container_id: &str) {}
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Bigger inputs would not fit the socket buffer before the plugin reads.
    if data.len() > 64 << 10 {
        return;
    }
    let cfg = PluginConfig {
        socket: PathBuf::new(),
        name: "ig".into(),
        idx: "90".into(),
        // No /proc under it: records fail to build instead of reading the host.
        root: PathBuf::from("/nonexistent/ig-fuzz"),
    };
    let (plugin_end, mut runtime_end) = UnixStream::pair().expect("socketpair");
    runtime_end.write_all(data).expect("fits the socket buffer");
    runtime_end.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let _ = serve_stream(plugin_end, &cfg, &mut CheckingSink);
    drop(runtime_end);
});
