//! The tracer: gadgets (eBPF programs plus their userspace half), the
//! container collection, and the `ig` command line. Integration tests drive
//! the same library.

pub mod cli;
pub mod collection;
pub mod event;
pub mod gadgets;
pub mod kernel;
pub mod output;
pub mod raw;
pub mod run;
pub mod session;
pub mod sources;
