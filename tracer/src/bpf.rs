//! What every gadget's eBPF object shares (tracer/bpf/*.h): the names of
//! the common maps and load-time settings, and the macro that embeds a
//! gadget's object and its generated types (see build.rs).

/// Embeds the object build.rs compiled from `src/gadgets/<gadget>/program.bpf.c`
/// as `bpf::OBJECT`, and the Rust mirror of its `program.h` as `bpf::*`.
#[macro_export]
macro_rules! bpf_object {
    ($gadget:ident) => {
        /// The gadget's eBPF object and the types of its `program.h`.
        pub mod bpf {
            #![allow(non_camel_case_types, non_upper_case_globals, dead_code)]
            include!(concat!(env!("OUT_DIR"), "/", stringify!($gadget), "_types.rs"));

            /// An 8-byte aligned copy of the object file: aya parses ELF in place.
            pub static OBJECT: &[u8] =
                aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/", stringify!($gadget), ".bpf.o"));
        }
    };
}

/// The ring buffer every program writes events to.
pub const EVENTS_MAP: &str = "gadget_events";
/// Per-cpu counters indexed by [`Stat`].
pub const STATS_MAP: &str = "gadget_stats";
/// Allowed mount namespace ids (u64 -> u8).
pub const MNTNS_FILTER_MAP: &str = "gadget_mntns_filter";
/// Load-time switch: filter by `MNTNS_FILTER_MAP`.
pub const FILTER_BY_MNTNS: &str = "gadget_filter_by_mntns";
/// The filter map lists the namespaces to drop rather than those to keep.
pub const MNTNS_FILTER_EXCLUDES: &str = "gadget_mntns_filter_excludes";
/// Load-time: pending bytes that force a reader wake-up (0: every event).
pub const WAKEUP_BYTES: &str = "gadget_wakeup_bytes";
/// Load-time: drop failed calls in the kernel.
pub const IGNORE_ERRORS: &str = "gadget_ignore_errors";

/// Indexes of the per-cpu statistics array (enum ig_stat in types.h).
#[derive(Clone, Copy, Debug)]
#[repr(u32)]
pub enum Stat {
    Lost = 0,
}
