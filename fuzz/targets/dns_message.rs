//! A DNS message as trace dns reads it off a packet (queries and answers,
//! compressed names included).
#![no_main]

use tracer::gadgets::trace_dns::message;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = message::parse(data) {
        // Names print as text: whatever the labels hold.
        let _ = format!("{msg:?}");
    }
});
