//! The Kubernetes Container Runtime Interface (gRPC, `runtime.v1`), spoken
//! to containerd (whose CRI plugin keeps its containers in the "k8s.io"
//! namespace) and to CRI-O: the running containers with their pods. The
//! messages are written out by hand with their field numbers from the CRI
//! `api.proto`; only the fields used here.

use std::collections::HashMap;
use std::path::Path;

use shared::{ContainerRecord, K8sMetadata, RuntimeMetadata};

use super::RuntimeError;
use super::grpc_unix::Client;

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListContainersRequest {
    #[prost(message, optional, tag = "1")]
    pub filter: Option<ContainerFilter>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerFilter {
    #[prost(message, optional, tag = "2")]
    pub state: Option<ContainerStateValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerStateValue {
    #[prost(int32, tag = "1")]
    pub state: i32,
}

/// `ContainerState.CONTAINER_RUNNING`.
pub const CONTAINER_RUNNING: i32 = 1;

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListContainersResponse {
    #[prost(message, repeated, tag = "1")]
    pub containers: Vec<Container>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Container {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub pod_sandbox_id: String,
    #[prost(message, optional, tag = "3")]
    pub metadata: Option<ContainerMetadata>,
    #[prost(message, optional, tag = "4")]
    pub image: Option<ImageSpec>,
    #[prost(int32, tag = "6")]
    pub state: i32,
    #[prost(map = "string, string", tag = "8")]
    pub labels: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerMetadata {
    #[prost(string, tag = "1")]
    pub name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageSpec {
    #[prost(string, tag = "1")]
    pub image: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerStatusRequest {
    #[prost(string, tag = "1")]
    pub container_id: String,
    #[prost(bool, tag = "2")]
    pub verbose: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerStatusResponse {
    /// Verbose info; containerd and CRI-O put a JSON document with the
    /// container's `pid` under "info".
    #[prost(map = "string, string", tag = "2")]
    pub info: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListPodSandboxRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListPodSandboxResponse {
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<PodSandbox>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSandbox {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(message, optional, tag = "2")]
    pub metadata: Option<PodSandboxMetadata>,
    #[prost(map = "string, string", tag = "5")]
    pub labels: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSandboxMetadata {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub uid: String,
    #[prost(string, tag = "3")]
    pub namespace: String,
}

const SERVICE: &str = "/runtime.v1.RuntimeService/";

/// A CRI method's full name.
fn method(name: &str) -> String {
    format!("{SERVICE}{name}")
}

/// The running containers of a CRI runtime, as records named `runtime_name`.
pub async fn enumerate(
    root: &Path,
    socket: &Path,
    runtime_name: &str,
) -> Result<Vec<ContainerRecord>, RuntimeError> {
    let err = |e: String| RuntimeError::Cri(socket.display().to_string(), e);
    let mut client = Client::connect(socket).await.map_err(|e| err(shared::error_chain(&e)))?;
    let pods: ListPodSandboxResponse = client
        .call(&method("ListPodSandbox"), &[], ListPodSandboxRequest {})
        .await
        .map_err(|e| err(e.message().to_string()))?;
    let pods: HashMap<String, PodSandbox> = pods.items.into_iter().map(|p| (p.id.clone(), p)).collect();
    let request = ListContainersRequest {
        filter: Some(ContainerFilter { state: Some(ContainerStateValue { state: CONTAINER_RUNNING }) }),
    };
    let list: ListContainersResponse = client
        .call(&method("ListContainers"), &[], request)
        .await
        .map_err(|e| err(e.message().to_string()))?;
    let mut records = Vec::new();
    for c in list.containers {
        let status: ContainerStatusResponse = match client
            .call(
                &method("ContainerStatus"),
                &[],
                ContainerStatusRequest { container_id: c.id.clone(), verbose: true },
            )
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(id = c.id, "{runtime_name} ContainerStatus: {}", e.message());
                continue;
            }
        };
        let Some(pid) = pid_from_info(&status.info) else {
            tracing::debug!(id = c.id, "{runtime_name}: no pid in the verbose status");
            continue;
        };
        let info = match shared::procfs::process_info(root, pid) {
            Ok(i) => i,
            Err(e) => {
                tracing::debug!(id = c.id, "{}", shared::error_chain(&e));
                continue;
            }
        };
        let name = c.metadata.map(|m| m.name).unwrap_or_default();
        let k8s = k8s_metadata(&name, pods.get(&c.pod_sandbox_id));
        let runtime = RuntimeMetadata {
            runtime_name: runtime_name.into(),
            container_id: c.id,
            container_name: name,
            container_image_name: c.image.map(|i| i.image).unwrap_or_default(),
        };
        records.push(ContainerRecord::new(runtime, k8s, pid, info));
    }
    Ok(records)
}

/// The pod of a container; pod labels without the kubelet's own.
fn k8s_metadata(container_name: &str, pod: Option<&PodSandbox>) -> K8sMetadata {
    let Some(pod) = pod else { return K8sMetadata::default() };
    let meta = pod.metadata.clone().unwrap_or_default();
    K8sMetadata {
        namespace: meta.namespace,
        pod_name: meta.name,
        container_name: container_name.into(),
        pod_uid: meta.uid,
        pod_labels: shared::container::pod_labels(&pod.labels),
    }
}

/// `pid` from the verbose status's "info" JSON document.
fn pid_from_info(info: &HashMap<String, String>) -> Option<u32> {
    let v: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
    v["pid"].as_u64().and_then(|p| u32::try_from(p).ok()).filter(|&p| p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn pid_from_the_verbose_info() {
        let mut info = HashMap::new();
        info.insert("info".to_string(), r#"{"sandboxID":"x","pid":4242,"runtimeSpec":{}}"#.to_string());
        assert_eq!(pid_from_info(&info), Some(4242));
        info.insert("info".into(), r#"{"pid":0}"#.into());
        assert_eq!(pid_from_info(&info), None);
        info.insert("info".into(), "not json".into());
        assert_eq!(pid_from_info(&info), None);
        assert_eq!(pid_from_info(&HashMap::new()), None);
    }

    #[test]
    fn the_running_filter_encodes_as_the_cri_expects() {
        // filter (1) { state (2) { state (1) = 1 } }
        let req = ListContainersRequest {
            filter: Some(ContainerFilter { state: Some(ContainerStateValue { state: CONTAINER_RUNNING }) }),
        };
        assert_eq!(req.encode_to_vec(), vec![0x0a, 0x04, 0x12, 0x02, 0x08, 0x01]);
    }

    #[test]
    fn pod_labels_leave_out_the_kubelets_own() {
        let pod = PodSandbox {
            id: "p".into(),
            metadata: Some(PodSandboxMetadata {
                name: "web".into(),
                uid: "u".into(),
                namespace: "ns".into(),
            }),
            labels: [("app", "web"), ("io.kubernetes.pod.name", "web")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let k = k8s_metadata("c", Some(&pod));
        assert_eq!((k.namespace.as_str(), k.pod_name.as_str(), k.pod_uid.as_str()), ("ns", "web", "u"));
        assert_eq!(k.pod_labels.len(), 1);
    }
}
