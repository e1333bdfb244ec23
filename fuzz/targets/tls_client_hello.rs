//! The first bytes of a TLS connection, where trace sni looks for the
//! ClientHello's server_name.
#![no_main]

use tracer::gadgets::trace_sni::hello;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(Some(name)) = hello::server_name(data) {
        assert!(name.chars().count() < data.len(), "the name comes from the record");
    }
});
