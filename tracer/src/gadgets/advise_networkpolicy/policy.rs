//! Kubernetes NetworkPolicies (networking.k8s.io/v1) from the connections
//! pods made: one per pod, selecting it by its labels, allowing ingress
//! from and egress to exactly the peers and ports seen. A peer that is a
//! pod (or a Service, in the original's logs) is named by its namespace
//! and labels; any other by its address alone (an ipBlock of one address).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::connection::{Connection, HOST, OUTGOING, PodRef, REMOTE_OTHER};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicy {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: Metadata,
    pub spec: Spec,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Metadata {
    pub name: String,
    pub namespace: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    pub pod_selector: LabelSelector,
    pub policy_types: [&'static str; 2],
    /// Absent: no ingress allowed (none was seen).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<IngressRule>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<EgressRule>,
}

/// `{}` (every pod) when it has no labels.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IngressRule {
    pub from: Vec<PolicyPeer>,
    pub ports: Vec<PolicyPort>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EgressRule {
    pub to: Vec<PolicyPeer>,
    pub ports: Vec<PolicyPort>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyPeer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_block: Option<IpBlock>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct IpBlock {
    pub cidr: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PolicyPort {
    pub port: u16,
    pub protocol: &'static str,
}

/// The label every namespace carries with its own name (Kubernetes 1.21+).
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A peer of a connection as a rule names it.
fn peer(c: &Connection) -> Option<PolicyPeer> {
    if c.remote_kind.is_empty() || c.remote_kind == REMOTE_OTHER {
        let addr: std::net::IpAddr = c.remote_addr.parse().ok()?;
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        return Some(PolicyPeer {
            ip_block: Some(IpBlock { cidr: format!("{addr}/{bits}") }),
            namespace_selector: None,
            pod_selector: None,
        });
    }
    Some(PolicyPeer {
        ip_block: None,
        namespace_selector: Some(LabelSelector {
            match_labels: [(NAMESPACE_NAME_LABEL.to_string(), c.remote_namespace.clone())].into(),
        }),
        pod_selector: Some(LabelSelector { match_labels: c.remote_labels.clone() }),
    })
}

fn protocol(proto: &str) -> Option<&'static str> {
    match proto.to_ascii_lowercase().as_str() {
        "tcp" => Some("TCP"),
        "udp" => Some("UDP"),
        "sctp" => Some("SCTP"),
        _ => None,
    }
}

/// What one pod was seen doing.
#[derive(Default)]
struct Seen {
    ingress: BTreeMap<PolicyPeer, BTreeSet<PolicyPort>>,
    egress: BTreeMap<PolicyPeer, BTreeSet<PolicyPort>>,
}

/// One rule per peer, with every port seen with it, in a stable order.
fn rules(seen: BTreeMap<PolicyPeer, BTreeSet<PolicyPort>>) -> Vec<(Vec<PolicyPeer>, Vec<PolicyPort>)> {
    seen.into_iter().map(|(peer, ports)| (vec![peer], ports.into_iter().collect())).collect()
}

/// The policies of `connections`, one per pod, by namespace and name;
/// and what was skipped, for the user.
pub fn policies(connections: &[Connection]) -> (Vec<NetworkPolicy>, Vec<String>) {
    let mut pods: BTreeMap<(String, String), (PodRef, Seen)> = BTreeMap::new();
    let mut skipped = BTreeSet::new();
    for c in connections {
        let (Some(peer), Some(protocol)) = (peer(c), protocol(&c.proto)) else {
            skipped.insert(format!(
                "{}/{}: a connection to {} ({} {}) names no peer or protocol a policy knows",
                c.namespace, c.pod, c.remote_addr, c.proto, c.port
            ));
            continue;
        };
        let port = PolicyPort { port: c.port, protocol };
        let (pod, seen) = pods
            .entry((c.namespace.clone(), c.pod.clone()))
            .or_insert_with(|| (c.pod_ref(), Seen::default()));
        // A pod's labels are the same on every line; a later line with
        // labels completes one without.
        if pod.labels.is_empty() {
            pod.labels = c.pod_labels.clone();
        }
        match c.pkt_type.as_str() {
            OUTGOING => seen.egress.entry(peer).or_default().insert(port),
            HOST => seen.ingress.entry(peer).or_default().insert(port),
            other => {
                skipped.insert(format!(
                    "{}/{}: pktType {other:?} is neither OUTGOING nor HOST",
                    c.namespace, c.pod
                ));
                false
            }
        };
    }
    let mut out = Vec::new();
    for ((namespace, name), (pod, seen)) in pods {
        if pod.labels.is_empty() {
            skipped.insert(format!(
                "{namespace}/{name}: the pod has no labels: its policy selects every pod of namespace {namespace}"
            ));
        }
        out.push(NetworkPolicy {
            api_version: "networking.k8s.io/v1",
            kind: "NetworkPolicy",
            metadata: Metadata { name: policy_name(&name), namespace },
            spec: Spec {
                pod_selector: LabelSelector { match_labels: pod.labels },
                policy_types: ["Ingress", "Egress"],
                ingress: rules(seen.ingress)
                    .into_iter()
                    .map(|(from, ports)| IngressRule { from, ports })
                    .collect(),
                egress: rules(seen.egress).into_iter().map(|(to, ports)| EgressRule { to, ports }).collect(),
            },
        });
    }
    (out, skipped.into_iter().collect())
}

/// `<pod>-network`, cut to the 253 characters of an object name.
fn policy_name(pod: &str) -> String {
    const SUFFIX: &str = "-network";
    let mut name: String = pod.chars().take(253 - SUFFIX.len()).collect();
    name.push_str(SUFFIX);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(pod: &str, pkt: &str, proto: &str, port: u16, remote: &str) -> Connection {
        Connection {
            namespace: "shop".into(),
            pod: pod.into(),
            pod_labels: [("app".into(), pod.into())].into(),
            pkt_type: pkt.into(),
            proto: proto.into(),
            port,
            remote_kind: REMOTE_OTHER.into(),
            remote_addr: remote.into(),
            ..Default::default()
        }
    }

    #[test]
    fn one_policy_per_pod_with_a_rule_per_peer_and_its_ports() {
        let mut to_db = conn("web", OUTGOING, "tcp", 5432, "10.1.0.7");
        to_db.set_remote(Some(&PodRef {
            namespace: "data".into(),
            name: "db-0".into(),
            labels: [("app".into(), "db".into())].into(),
        }));
        let log = vec![
            to_db.clone(),
            to_db.clone(),
            conn("web", OUTGOING, "udp", 53, "10.96.0.10"),
            conn("web", OUTGOING, "tcp", 443, "10.96.0.10"),
            conn("web", HOST, "tcp", 8080, "192.168.1.5"),
            conn("web", OUTGOING, "icmp", 0, "10.0.0.1"),
            conn("web", HOST, "tcp", 8080, "fd00::5"),
        ];
        let (policies, skipped) = policies(&log);
        assert_eq!(policies.len(), 1);
        let p = &policies[0];
        assert_eq!(p.metadata.name, "web-network");
        assert_eq!(p.metadata.namespace, "shop");
        assert_eq!(p.spec.pod_selector.match_labels["app"], "web");
        assert_eq!(p.spec.egress.len(), 2, "{:?}", p.spec.egress);
        let db = p.spec.egress.iter().find(|r| r.to[0].pod_selector.is_some()).unwrap();
        assert_eq!(db.ports, vec![PolicyPort { port: 5432, protocol: "TCP" }]);
        assert_eq!(db.to[0].namespace_selector.as_ref().unwrap().match_labels[NAMESPACE_NAME_LABEL], "data");
        assert_eq!(db.to[0].pod_selector.as_ref().unwrap().match_labels["app"], "db");
        let dns = p.spec.egress.iter().find(|r| r.to[0].ip_block.is_some()).unwrap();
        assert_eq!(dns.to[0].ip_block.as_ref().unwrap().cidr, "10.96.0.10/32");
        assert_eq!(
            dns.ports,
            vec![PolicyPort { port: 53, protocol: "UDP" }, PolicyPort { port: 443, protocol: "TCP" }]
        );
        let cidrs: Vec<&str> =
            p.spec.ingress.iter().map(|r| r.from[0].ip_block.as_ref().unwrap().cidr.as_str()).collect();
        assert_eq!(cidrs, ["192.168.1.5/32", "fd00::5/128"]);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(skipped[0].contains("icmp"));
    }

    #[test]
    fn a_pod_without_labels_selects_its_namespace_and_says_so() {
        let mut c = conn("lonely", OUTGOING, "tcp", 80, "10.0.0.9");
        c.pod_labels.clear();
        let (policies, skipped) = policies(&[c]);
        let json = serde_json::to_value(&policies[0]).unwrap();
        assert_eq!(json["spec"]["podSelector"], serde_json::json!({}));
        assert!(json["spec"].get("ingress").is_none(), "no ingress seen: none allowed");
        assert_eq!(json["spec"]["policyTypes"], serde_json::json!(["Ingress", "Egress"]));
        assert!(skipped[0].contains("no labels"), "{skipped:?}");
    }
}
