//! Types every crate uses: the container record and its metadata, the wire
//! format between container sources and tracers, the spool, /proc reads, and
//! what a container source learns from an OCI bundle (state, config.json,
//! who manages the container and its names).

pub mod container;
pub mod daemonproto;
pub mod hookproto;
pub mod identity;
pub mod notify;
pub mod oci;
pub mod procfs;
pub mod record;
pub mod spool;

pub use container::{ContainerRecord, K8sMetadata, RuntimeMetadata};

/// An error with its causes, `a: b: c`, for logs and messages.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
