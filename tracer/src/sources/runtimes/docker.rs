//! dockerd, and podman through its Docker-compatible API: the running
//! containers with their names, images and init pids; and, for a docker
//! container the fanotify watcher sees starting, its name from dockerd's
//! data root on disk (asking dockerd then could wait on the very start the
//! watcher is holding: dockerd locks a container while it starts it).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use shared::{ContainerRecord, K8sMetadata, RuntimeMetadata};

use super::RuntimeError;

pub struct Found {
    pub records: Vec<ContainerRecord>,
    /// `DockerRootDir` (docker only).
    pub data_root: Option<PathBuf>,
}

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// A larger answer is refused (a list of thousands of containers is a few MB).
const MAX_BODY: usize = 64 << 20;

/// The Docker Engine API's answers ig reads: three GETs of JSON, over one
/// HTTP/1.1 connection. Unversioned paths: dockerd and podman serve them at
/// their own API version, and ig reads only fields every version has.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("connecting to the socket")]
    Connect(#[source] std::io::Error),
    #[error("HTTP")]
    Http(#[from] hyper::Error),
    #[error("GET {0}: no answer within {REQUEST_TIMEOUT:?}")]
    Timeout(String),
    #[error("GET {path}: HTTP {status}: {body}")]
    Status { path: String, status: u16, body: String },
    #[error("GET {0}: reading the body")]
    Body(String, #[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("GET {0}: the body is not JSON")]
    Json(String, #[source] serde_json::Error),
}

struct Api {
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
}

impl Api {
    async fn connect(socket: &Path) -> Result<Self, ApiError> {
        let stream = tokio::time::timeout(REQUEST_TIMEOUT, tokio::net::UnixStream::connect(socket))
            .await
            .map_err(|_| ApiError::Timeout("(connecting)".into()))?
            .map_err(ApiError::Connect)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        // Drives the connection; ends when `sender` is dropped.
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("docker API connection: {e}");
            }
        });
        Ok(Api { sender })
    }

    async fn get(&mut self, path: &str) -> Result<Value, ApiError> {
        let req = hyper::Request::get(path)
            .header(hyper::header::HOST, "docker")
            .body(Empty::new())
            .expect("a GET request is well-formed");
        let fetch = async {
            self.sender.ready().await?;
            let resp = self.sender.send_request(req).await?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| ApiError::Body(path.into(), e))?
                .to_bytes();
            Ok::<_, ApiError>((status, body))
        };
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, fetch)
            .await
            .map_err(|_| ApiError::Timeout(path.into()))??;
        if !status.is_success() {
            let body = String::from_utf8_lossy(&body[..body.len().min(512)]).trim().to_string();
            return Err(ApiError::Status { path: path.into(), status: status.as_u16(), body });
        }
        serde_json::from_slice(&body).map_err(|e| ApiError::Json(path.into(), e))
    }
}

pub async fn enumerate(root: &Path, socket: &Path, runtime_name: &str) -> Result<Found, RuntimeError> {
    let address = socket.display().to_string();
    let err = |e| RuntimeError::Docker(address.clone(), e);
    let mut api = Api::connect(socket).await.map_err(err)?;
    let data_root = if runtime_name == "docker" {
        let info = api.get("/info").await.map_err(err)?;
        info["DockerRootDir"].as_str().map(|d| shared::hookproto::on_host(root, d))
    } else {
        None
    };
    let mut records = Vec::new();
    let list = api.get("/containers/json").await.map_err(err)?;
    for summary in list.as_array().into_iter().flatten() {
        let Some(id) = summary["Id"].as_str().filter(|id| id.bytes().all(|b| b.is_ascii_alphanumeric()))
        else {
            continue;
        };
        let inspect = match api.get(&format!("/containers/{id}/json")).await {
            Ok(i) => i,
            Err(e) => {
                tracing::debug!(id, "{runtime_name} inspect: {}", shared::error_chain(&e));
                continue;
            }
        };
        let Some(pid) = inspect["State"]["Pid"].as_u64().filter(|&p| p > 0 && p <= u32::MAX.into()) else {
            continue;
        };
        let name = inspect["Name"].as_str().unwrap_or_default().trim_start_matches('/').to_string();
        let config = &inspect["Config"];
        let image = config["Image"].as_str().unwrap_or_default().to_string();
        let labels: HashMap<String, String> = config["Labels"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect();
        let info = match shared::procfs::process_info(root, pid as u32) {
            Ok(i) => i,
            Err(e) => {
                tracing::debug!(id, "{}", shared::error_chain(&e));
                continue;
            }
        };
        let runtime = RuntimeMetadata {
            runtime_name: runtime_name.into(),
            container_id: id.to_string(),
            container_name: name,
            container_image_name: image,
        };
        records.push(ContainerRecord::new(runtime, k8s_from_labels(&labels), pid as u32, info));
    }
    Ok(Found { records, data_root })
}

/// Kubernetes metadata that dockershim and cri-dockerd put in labels.
fn k8s_from_labels(labels: &HashMap<String, String>) -> K8sMetadata {
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
