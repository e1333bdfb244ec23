//! What a client sends `ig daemon`: frames, the JSON request in them, and
//! the command line the daemon parses out of the request.
#![no_main]

use clap::Parser as _;
use shared::daemonproto::{self as proto, Kind, MAX_REQUEST};
use tracer::daemon::RemoteCli;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut input = data;
    while let Ok(Some((kind, payload))) = proto::read_frame(&mut input, MAX_REQUEST) {
        match kind {
            Kind::Request => {
                if let Ok(request) = proto::parse_request(&payload) {
                    let args = std::iter::once("ig".to_string()).chain(request.args);
                    let _ = RemoteCli::try_parse_from(args);
                }
            }
            Kind::Exit => {
                let _ = proto::parse_json::<proto::Exit>(kind, &payload);
            }
            _ => {}
        }
    }
    if let Ok(header) = <[u8; 5]>::try_from(&data[..data.len().min(5)]) {
        let _ = proto::parse_header(header, MAX_REQUEST);
    }
});
