//! `ig-nri`: a containerd NRI plugin. Our own bindings: the multiplexer,
//! ttrpc framing and the NRI messages we use (prost structs with the wire
//! field numbers). It learns every CRI container as it starts (pid known,
//! process not yet running), with its Kubernetes pod, and hands the record
//! to the spool and every running tracer before answering containerd.

pub mod mux;
pub mod plugin;
pub mod proto;
pub mod records;
pub mod ttrpc;
