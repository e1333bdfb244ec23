//! The protobuf messages we exchange, as prost structs with the wire field
//! numbers of ttrpc and of NRI `nri.pkg.api.v1alpha1` (v0.6.1, what
//! containerd 1.7.24 speaks; later versions only add fields, and proto3
//! skips the ones we do not declare). Derived with prost instead of
//! generated from .proto files: no protoc, and only what we use.

use std::collections::BTreeMap;

/// ttrpc's request envelope.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    #[prost(string, tag = "1")]
    pub service: String,
    #[prost(string, tag = "2")]
    pub method: String,
    #[prost(bytes = "vec", tag = "3")]
    pub payload: Vec<u8>,
    #[prost(int64, tag = "4")]
    pub timeout_nano: i64,
}

/// ttrpc's response envelope.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Response {
    #[prost(message, optional, tag = "1")]
    pub status: Option<Status>,
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
}

/// google.rpc.Status.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// gRPC status code for an unknown service or method.
pub const UNIMPLEMENTED: i32 = 12;

#[derive(Clone, PartialEq, prost::Message)]
pub struct RegisterPluginRequest {
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    #[prost(string, tag = "2")]
    pub plugin_idx: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ConfigureRequest {
    #[prost(string, tag = "1")]
    pub config: String,
    #[prost(string, tag = "2")]
    pub runtime_name: String,
    #[prost(string, tag = "3")]
    pub runtime_version: String,
}

/// There is no field 1.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConfigureResponse {
    #[prost(int32, tag = "2")]
    pub events: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SynchronizeRequest {
    #[prost(message, repeated, tag = "1")]
    pub pods: Vec<PodSandbox>,
    #[prost(message, repeated, tag = "2")]
    pub containers: Vec<Container>,
    #[prost(bool, tag = "3")]
    pub more: bool,
}

/// Field 1 (container updates) stays empty: we never adjust anything.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SynchronizeResponse {
    #[prost(bool, tag = "2")]
    pub more: bool,
}

/// StateChange's argument, and the shape of the Create/Update/Stop
/// requests too (pod = 1, container = 2 there; event = 1 here).
#[derive(Clone, PartialEq, prost::Message)]
pub struct StateChangeEvent {
    #[prost(int32, tag = "1")]
    pub event: i32,
    #[prost(message, optional, tag = "2")]
    pub pod: Option<PodSandbox>,
    #[prost(message, optional, tag = "3")]
    pub container: Option<Container>,
}

/// CreateContainerRequest, UpdateContainerRequest, StopContainerRequest.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerRequest {
    #[prost(message, optional, tag = "1")]
    pub pod: Option<PodSandbox>,
    #[prost(message, optional, tag = "2")]
    pub container: Option<Container>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSandbox {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub uid: String,
    #[prost(string, tag = "4")]
    pub namespace: String,
    #[prost(btree_map = "string, string", tag = "5")]
    pub labels: BTreeMap<String, String>,
    #[prost(btree_map = "string, string", tag = "6")]
    pub annotations: BTreeMap<String, String>,
    #[prost(uint32, tag = "9")]
    pub pid: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Container {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub pod_sandbox_id: String,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(int32, tag = "4")]
    pub state: i32,
    #[prost(btree_map = "string, string", tag = "5")]
    pub labels: BTreeMap<String, String>,
    #[prost(btree_map = "string, string", tag = "6")]
    pub annotations: BTreeMap<String, String>,
    #[prost(string, repeated, tag = "7")]
    pub args: Vec<String>,
    #[prost(uint32, tag = "12")]
    pub pid: u32,
}

/// NRI events (the Event enum).
pub mod event {
    pub const RUN_POD_SANDBOX: i32 = 1;
    pub const STOP_POD_SANDBOX: i32 = 2;
    pub const REMOVE_POD_SANDBOX: i32 = 3;
    pub const CREATE_CONTAINER: i32 = 4;
    pub const POST_CREATE_CONTAINER: i32 = 5;
    pub const START_CONTAINER: i32 = 6;
    pub const POST_START_CONTAINER: i32 = 7;
    pub const UPDATE_CONTAINER: i32 = 8;
    pub const POST_UPDATE_CONTAINER: i32 = 9;
    pub const STOP_CONTAINER: i32 = 10;
    pub const REMOVE_CONTAINER: i32 = 11;

    /// The subscription bit of an event: bit (e - 1).
    pub const fn bit(e: i32) -> i32 {
        1 << (e - 1)
    }

    /// What we subscribe to (0x667): no blocking CreateContainer or
    /// UpdateContainer calls, and no POST_CREATE_CONTAINER (no pid yet, and
    /// every subscribed event is a round trip on the container's start path).
    pub const READ_ONLY_MASK: i32 = bit(RUN_POD_SANDBOX)
        | bit(STOP_POD_SANDBOX)
        | bit(REMOVE_POD_SANDBOX)
        | bit(START_CONTAINER)
        | bit(POST_START_CONTAINER)
        | bit(STOP_CONTAINER)
        | bit(REMOVE_CONTAINER);
}

/// ContainerState RUNNING.
pub const CONTAINER_RUNNING: i32 = 3;

pub const RUNTIME_SERVICE: &str = "nri.pkg.api.v1alpha1.Runtime";
pub const PLUGIN_SERVICE: &str = "nri.pkg.api.v1alpha1.Plugin";

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn the_read_only_mask_is_0x667() {
        assert_eq!(event::READ_ONLY_MASK, 0x667);
        assert_eq!(event::READ_ONLY_MASK & !0x7ff, 0, "containerd 1.7 drops plugins asking for more");
    }

    #[test]
    fn configure_response_uses_field_2() {
        // field 2, varint: key 0x10, then 0x667 as a varint
        assert_eq!(ConfigureResponse { events: 0x667 }.encode_to_vec(), vec![0x10, 0xe7, 0x0c]);
    }

    #[test]
    fn decodes_a_container_and_skips_unknown_fields() {
        let c = Container { id: "c1".into(), name: "app".into(), pid: 42, state: 3, ..Default::default() };
        let mut bytes = c.encode_to_vec();
        // field 14 (v0.10+ created_at, int64 42): must be skipped
        bytes.extend_from_slice(&[0x70, 42]);
        assert_eq!(Container::decode(bytes.as_slice()).unwrap(), c);
    }
}
