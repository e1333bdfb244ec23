//! The OCI state a runtime writes on ig-hook's stdin and the bundle's
//! config.json, then the names ig-hook derives from their annotations.
//! Input: the state, a NUL byte, the config.
#![no_main]

use std::path::Path;

use shared::identity::{self, NameSource};

/// No containers storage and no conmon: the names come from the input alone.
struct InputOnly;

impl NameSource for InputOnly {
    fn podman_storage(&self, _id: &str, _bundle: &Path) -> Option<(String, String)> {
        None
    }
    fn conmon_name(&self) -> Option<String> {
        None
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (state, config) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let config = shared::oci::parse_config(config, Path::new("config.json")).unwrap_or_default();
    if let Ok(state) = shared::oci::parse_state(state) {
        let annotations = identity::annotations(&state, &config);
        let _ = identity::identify(&state, &annotations, &InputOnly);
        let _ = identity::containerd_namespace(&state.bundle);
    }
});
