//! One connection a pod opened or accepted, as `--connections` writes it
//! (one JSON object per line) and `--input` reads it back. The keys are
//! those of the original's network-policy monitor log, so its logs can be
//! read too; ours add the local end and the remote port.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::EventCommon;

/// A pod as a policy names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// `remoteKind`: what the other end is.
pub const REMOTE_POD: &str = "pod";
/// A Service, in logs of the original (it asked the Kubernetes API).
pub const REMOTE_SERVICE: &str = "svc";
pub const REMOTE_OTHER: &str = "other";

/// `pktType` of a connection the pod opened (its first packet left).
pub const OUTGOING: &str = "OUTGOING";
/// `pktType` of one the peer opened (its first packet arrived).
pub const HOST: &str = "HOST";

/// The fields a policy is built from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Connection {
    pub namespace: String,
    pub pod: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_labels: BTreeMap<String, String>,
    /// OUTGOING or HOST.
    pub pkt_type: String,
    /// tcp or udp.
    pub proto: String,
    /// The port connected to: the remote one for OUTGOING, the pod's own for HOST.
    pub port: u16,
    /// pod, svc or other.
    pub remote_kind: String,
    pub remote_addr: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub remote_namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub remote_name: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub remote_labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub local_addr: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub local_port: u16,
    #[serde(skip_serializing_if = "is_zero")]
    pub remote_port: u16,
}

fn is_zero(p: &u16) -> bool {
    *p == 0
}

impl Connection {
    pub fn pod_ref(&self) -> PodRef {
        PodRef { namespace: self.namespace.clone(), name: self.pod.clone(), labels: self.pod_labels.clone() }
    }

    /// Names the remote end as `pod` (None: an address only).
    pub fn set_remote(&mut self, pod: Option<&PodRef>) {
        match pod {
            Some(p) => {
                self.remote_kind = REMOTE_POD.into();
                self.remote_namespace = p.namespace.clone();
                self.remote_name = p.name.clone();
                self.remote_labels = p.labels.clone();
            }
            None => {
                self.remote_kind = REMOTE_OTHER.into();
                self.remote_namespace.clear();
                self.remote_name.clear();
                self.remote_labels.clear();
            }
        }
    }
}

/// A connection as shown while the gadget runs: the envelope every event
/// has, the task that sent the first packet where known, then the fields.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionEvent {
    #[serde(flatten)]
    pub common: EventCommon,
    pub netnsid: u64,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub pid: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub comm: String,
    #[serde(flatten)]
    pub connection: Connection,
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

/// Reads a connection log: one JSON object per line; lines of another
/// `type` than normal (warnings) and blank lines are skipped. A line that
/// is not a connection is an error naming its number.
pub fn read_log(text: &str) -> Result<Vec<Connection>, LogError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| LogError { line: i + 1, reason: e.to_string() })?;
        if value.get("type").and_then(|t| t.as_str()).is_some_and(|t| t != "normal") {
            continue;
        }
        let c: Connection =
            serde_json::from_value(value).map_err(|e| LogError { line: i + 1, reason: e.to_string() })?;
        if c.pod.is_empty() || c.namespace.is_empty() {
            return Err(LogError { line: i + 1, reason: "no pod or namespace".into() });
        }
        out.push(c);
    }
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
#[error("line {line}: not a connection: {reason}")]
pub struct LogError {
    pub line: usize,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_of_the_original_reads_and_warnings_are_skipped() {
        let text = r#"{"type":"normal","namespace":"demo","pod":"web","pktType":"OUTGOING","proto":"udp","port":53,"remoteKind":"svc","remoteAddr":"10.96.0.10","remoteNamespace":"kube-system","remoteName":"kube-dns","remoteLabels":{"k8s-app":"kube-dns"}}

{"type":"warn","message":"3 events lost"}
"#;
        let log = read_log(text).unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].remote_labels["k8s-app"], "kube-dns");
        assert_eq!(log[0].port, 53);
        assert!(log[0].pod_labels.is_empty());
        let err = read_log("{\"type\":\"normal\",\"port\":\"x\"}").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(read_log("{\"namespace\":\"a\"}").unwrap_err().reason.contains("no pod"));
        assert!(read_log("not json").is_err());
    }

    #[test]
    fn what_is_written_reads_back() {
        let mut c = Connection {
            namespace: "a".into(),
            pod: "p".into(),
            pkt_type: OUTGOING.into(),
            proto: "tcp".into(),
            port: 80,
            remote_addr: "10.0.0.2".into(),
            local_addr: "10.0.0.1".into(),
            local_port: 40000,
            remote_port: 80,
            ..Default::default()
        };
        c.set_remote(Some(&PodRef {
            namespace: "b".into(),
            name: "q".into(),
            labels: [("app".into(), "q".into())].into(),
        }));
        let line = serde_json::to_string(&c).unwrap();
        assert_eq!(read_log(&line).unwrap(), vec![c]);
    }
}
