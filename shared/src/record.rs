//! Building the container record from the state, the config and /proc.

use std::path::Path;

use crate::ContainerRecord;
use crate::RuntimeMetadata;
use crate::procfs::{self, ProcError};

use crate::identity::Identity;
use crate::oci::State;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the OCI state of {id} has no pid (status {status:?})")]
    NoPid { id: String, status: String },
    #[error("the container process is gone")]
    Proc(#[from] ProcError),
}

pub fn build(
    root: &Path,
    state: &State,
    identity: Identity,
    annotations: std::collections::BTreeMap<String, String>,
) -> Result<ContainerRecord, RecordError> {
    let pid =
        state.pid.ok_or_else(|| RecordError::NoPid { id: state.id.clone(), status: state.status.clone() })?;
    let info = procfs::process_info(root, pid)?;
    let runtime = RuntimeMetadata {
        runtime_name: identity.runtime_name,
        container_id: state.id.clone(),
        container_name: identity.container_name,
        container_image_name: identity.image_name,
    };
    Ok(ContainerRecord {
        bundle: state.bundle.clone(),
        annotations,
        ..ContainerRecord::new(runtime, identity.k8s, pid, info)
    })
}
