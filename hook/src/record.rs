//! Building the container record from the state, the config and /proc.

use std::path::Path;

use shared::ContainerRecord;
use shared::procfs::{self, ProcError};
use shared::{K8sMetadata, RuntimeMetadata};

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
    Ok(ContainerRecord {
        runtime: RuntimeMetadata {
            runtime_name: identity.runtime_name,
            container_id: state.id.clone(),
            container_name: identity.container_name,
            container_image_name: identity.image_name,
        },
        k8s: K8sMetadata { ..identity.k8s },
        pid,
        mntns: info.mntns,
        netns: info.netns,
        host_network: info.host_network,
        cgroup_path: info.cgroups.v2_dir,
        cgroup_id: info.cgroups.id,
        cgroup_v2: info.cgroups.v2,
        bundle: state.bundle.clone(),
        annotations,
    })
}
