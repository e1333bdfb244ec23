//! Types every crate uses: the container record and its metadata, and the
//! event envelope keys shared by every gadget's JSON.

pub mod container;

pub use container::{ContainerRecord, K8sMetadata, RuntimeMetadata};
