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
    let mntns = procfs::ns_inode(root, pid, "mnt")?;
    let netns = procfs::ns_inode(root, pid, "net")?;
    let host_netns = procfs::ns_inode(root, 1, "net").unwrap_or(0);
    let cgroups = procfs::cgroups(root, pid)?;
    Ok(ContainerRecord {
        runtime: RuntimeMetadata {
            runtime_name: identity.runtime_name,
            container_id: state.id.clone(),
            container_name: identity.container_name,
            container_image_name: identity.image_name,
        },
        k8s: K8sMetadata { ..identity.k8s },
        pid,
        mntns,
        netns,
        host_network: netns == host_netns,
        cgroup_path: cgroups.v2_dir,
        cgroup_id: cgroups.id,
        cgroup_v2: cgroups.v2,
        bundle: state.bundle.clone(),
        annotations,
    })
}
