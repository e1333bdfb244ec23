//! dockerd, and podman through its Docker-compatible API: the running
//! containers with their names, images and init pids; and, for a docker
//! container the fanotify watcher sees starting, its name from dockerd's
//! data root on disk (asking dockerd then could wait on the very start the
//! watcher is holding: dockerd locks a container while it starts it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bollard::Docker;
use shared::{ContainerRecord, K8sMetadata, RuntimeMetadata};

use super::RuntimeError;

pub struct Found {
    pub records: Vec<ContainerRecord>,
    /// `DockerRootDir` (docker only).
    pub data_root: Option<PathBuf>,
}

/// Seconds bollard waits for one request.
const REQUEST_TIMEOUT_S: u64 = 2;

pub async fn enumerate(root: &Path, socket: &Path, runtime_name: &str) -> Result<Found, RuntimeError> {
    let address = socket.display().to_string();
    let err = |e| RuntimeError::Docker(address.clone(), e);
    let docker = Docker::connect_with_unix(&address, REQUEST_TIMEOUT_S, bollard::API_DEFAULT_VERSION)
        .map_err(err)?
        .negotiate_version()
        .await
        .map_err(err)?;
    let data_root = if runtime_name == "docker" {
        docker.info().await.map_err(err)?.docker_root_dir.map(|d| shared::hookproto::on_host(root, d))
    } else {
        None
    };
    let mut records = Vec::new();
    for summary in docker.list_containers(None).await.map_err(err)? {
        let Some(id) = summary.id else { continue };
        let inspect = match docker.inspect_container(&id, None).await {
            Ok(i) => i,
            Err(e) => {
                tracing::debug!(id, "{runtime_name} inspect: {e}");
                continue;
            }
        };
        let Some(pid) = inspect.state.as_ref().and_then(|s| s.pid).filter(|&p| p > 0) else { continue };
        let name = inspect.name.unwrap_or_default().trim_start_matches('/').to_string();
        let config = inspect.config.unwrap_or_default();
        let image = config.image.unwrap_or_default();
        let labels = config.labels.unwrap_or_default();
        let info = match shared::procfs::process_info(root, pid as u32) {
            Ok(i) => i,
            Err(e) => {
                tracing::debug!(id, "{}", shared::error_chain(&e));
                continue;
            }
        };
        let runtime = RuntimeMetadata {
            runtime_name: runtime_name.into(),
            container_id: id,
            container_name: name,
            container_image_name: image,
        };
        records.push(ContainerRecord::new(runtime, k8s_from_labels(&labels), pid as u32, info));
    }
    Ok(Found { records, data_root })
}

/// Kubernetes metadata that dockershim and cri-dockerd put in labels.
fn k8s_from_labels(labels: &std::collections::HashMap<String, String>) -> K8sMetadata {
    let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
    K8sMetadata {
        namespace: get("io.kubernetes.pod.namespace"),
        pod_name: get("io.kubernetes.pod.name"),
        container_name: get("io.kubernetes.container.name"),
        pod_uid: get("io.kubernetes.pod.uid"),
        pod_labels: BTreeMap::new(),
    }
}

/// Name and image of docker container `id` from `<data_root>/containers/<id>/config.v2.json`.
pub fn name_on_disk(data_root: &Path, id: &str) -> Option<(String, String)> {
    if id.contains('/') {
        return None;
    }
    let path = data_root.join("containers").join(id).join("config.v2.json");
    let meta = std::fs::metadata(&path).ok()?;
    if meta.len() > shared::oci::MAX_INPUT {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    let name = v["Name"].as_str()?.trim_start_matches('/').to_string();
    let image = v["Config"]["Image"].as_str().unwrap_or_default().to_string();
    Some((name, image))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_from_the_data_root() {
        let root = std::env::temp_dir().join(format!("ig-docker-root-{}", std::process::id()));
        let dir = root.join("containers/abc");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.v2.json"), r#"{"Name":"/web","Config":{"Image":"busybox:1"}}"#)
            .unwrap();
        assert_eq!(name_on_disk(&root, "abc"), Some(("web".into(), "busybox:1".into())));
        assert_eq!(name_on_disk(&root, "none"), None);
        assert_eq!(name_on_disk(&root, "../containers/abc"), None);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
