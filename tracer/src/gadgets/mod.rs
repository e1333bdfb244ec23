//! The gadgets: each module owns its event type, its columns and its JSON,
//! and names its eBPF object and attach points.

#[cfg(test)]
mod golden;
pub mod snapshot_process;
pub mod snapshot_socket;
pub mod top_file;
pub mod top_tcp;
pub mod trace_bind;
pub mod trace_capabilities;
pub mod trace_dns;
pub mod trace_exec;
pub mod trace_mount;
pub mod trace_oomkill;
pub mod trace_open;
pub mod trace_signal;
pub mod trace_sni;
pub mod trace_tcp;
pub mod trace_tcpconnect;

use serde::Serialize;

use crate::event::{Clock, HasCommon, Value};
use crate::raw::DecodeError;
use crate::session::GadgetProgram;

/// Horizontal alignment of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// One column of a gadget's table: also the name filters (`-F`) refer to.
pub struct Column<E> {
    /// Lower camel case, as in JSON (`runtime.containerName`, `pid`).
    pub name: &'static str,
    pub visible: bool,
    /// Starting width; it grows up to `max_width` as longer values come.
    pub width: usize,
    /// 0: no limit (the last column takes the rest of the terminal).
    pub max_width: usize,
    pub align: Align,
    pub get: for<'a> fn(&'a E) -> Value<'a>,
}

impl<E> Column<E> {
    pub const fn new(name: &'static str, width: usize, get: for<'a> fn(&'a E) -> Value<'a>) -> Self {
        Self { name, visible: true, width, max_width: width, align: Align::Left, get }
    }

    pub const fn hidden(mut self) -> Self {
        self.visible = false;
        self
    }

    pub const fn max(mut self, max_width: usize) -> Self {
        self.max_width = max_width;
        self
    }

    pub const fn right(mut self) -> Self {
        self.align = Align::Right;
        self
    }
}

/// The userspace half of a gadget.
pub trait Gadget: GadgetProgram {
    type Event: Serialize + HasCommon;

    /// Every column, the container ones first, hidden ones included.
    fn columns(&self) -> Vec<Column<Self::Event>>;

    fn decode(&self, raw: &[u8], clock: &Clock) -> Result<Self::Event, DecodeError>;

    /// A userspace check after decoding (e.g. `--prefixes`); true by default.
    fn wants(&self, _event: &Self::Event) -> bool {
        true
    }
}

/// The container columns every gadget starts with.
pub fn container_columns<E: HasCommon>() -> Vec<Column<E>> {
    fn s(v: &str) -> Value<'_> {
        Value::from(v)
    }
    vec![
        Column::new("runtime.containerName", 20, |e: &E| s(&e.common().runtime().container_name)).max(40),
        Column::new("runtime.runtimeName", 10, |e: &E| s(&e.common().runtime().runtime_name)).hidden(),
        Column::new("runtime.containerId", 13, |e: &E| s(&e.common().runtime().container_id))
            .hidden()
            .max(64),
        Column::new("runtime.containerImageName", 30, |e: &E| s(&e.common().runtime().container_image_name))
            .hidden()
            .max(80),
        Column::new("k8s.namespace", 16, |e: &E| k8s_field(e, |k| &k.namespace)).hidden().max(40),
        Column::new("k8s.podName", 16, |e: &E| k8s_field(e, |k| &k.pod_name)).hidden().max(60),
        Column::new("k8s.containerName", 16, |e: &E| k8s_field(e, |k| &k.container_name)).hidden().max(40),
        Column::new("k8s.podUID", 36, |e: &E| k8s_field(e, |k| &k.pod_uid)).hidden(),
        Column::new("timestamp", 19, |e: &E| Value::from(e.common().timestamp)).hidden(),
        Column::new("mntns", 10, |e: &E| Value::from(e.common().mntns)).hidden(),
    ]
}

fn k8s_field<E: HasCommon>(e: &E, f: fn(&shared::K8sMetadata) -> &String) -> Value<'_> {
    match &e.common().container {
        Some(c) => Value::from(f(&c.k8s).as_str()),
        None => Value::from(""),
    }
}
