//! The tracer: gadgets (eBPF programs plus their userspace half), the
//! container collection, and the `ig` command line. Integration tests drive
//! the same library.

pub mod bpf;
pub mod btf_cache;
pub mod btf_subset;
pub mod cli;
pub mod client;
pub mod collection;
pub mod config;
pub mod container_root;
pub mod daemon;
pub mod dbus;
pub mod event;
pub mod event_process;
pub mod gadgets;
pub mod io;
pub mod kernel;
pub mod kernel_info;
pub mod logging;
pub mod metrics;
pub mod names;
pub mod object_btf;
pub mod otlp;
pub mod output;
pub mod pem;
pub mod process_filter;
pub mod profile;
pub mod raw;
pub mod run;
pub mod run_frame;
pub mod sdunit;
pub mod selector;
pub mod session;
pub mod snapshot;
pub mod sources;
pub mod syscalls;
pub mod tcp;
pub mod top;
pub mod unowned;
pub mod uprobe;
