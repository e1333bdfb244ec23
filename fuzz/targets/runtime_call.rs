//! The arguments of an exec of runc or crun that the fanotify watcher holds:
//! which container it creates or starts, with which bundle and pid file.
//! Input: NUL-separated argv, as /proc/<pid>/cmdline or the exec's memory.
#![no_main]

use std::path::Path;

use tracer::sources::fanotify::runtime_call::{self, RuntimeCall};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let argv: Vec<String> =
        data.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    match runtime_call::parse(&argv, Path::new("/run/caller")) {
        RuntimeCall::Create { id, bundle, .. } => {
            assert!(!id.is_empty(), "create names its container");
            assert!(bundle.is_absolute(), "a bundle is taken against the caller's cwd");
        }
        RuntimeCall::Start { id } => assert!(!id.is_empty(), "start names its container"),
        RuntimeCall::Other => {}
    }
});
