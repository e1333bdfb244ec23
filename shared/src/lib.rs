//! Types every crate uses: the container record and its metadata, the wire
//! format between container sources and tracers, the spool, and /proc reads.

pub mod container;
pub mod hookproto;
pub mod notify;
pub mod procfs;
pub mod spool;

pub use container::{ContainerRecord, K8sMetadata, RuntimeMetadata};
