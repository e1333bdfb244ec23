//! A line from ig-hook (or any local process) on the tracer's hook socket,
//! applied to a container collection as the listener does.
#![no_main]

use std::sync::{Arc, OnceLock};

use tracer::collection::Collection;

fn collection() -> &'static Arc<Collection> {
    static COLLECTION: OnceLock<Arc<Collection>> = OnceLock::new();
    COLLECTION.get_or_init(Collection::new)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for line in data.split(|&b| b == b'\n') {
        let ack = tracer::sources::listener::handle(line, collection());
        assert!(ack.ok || !ack.error.is_empty(), "a refusal says why");
    }
});
