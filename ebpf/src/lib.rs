//! The eBPF programs of every gadget, compiled from C by `build.rs` and
//! embedded, with the Rust mirror of each gadget's event struct generated
//! from its C header (one definition, no hand-kept copy).

/// An 8-byte aligned copy of an object file: aya parses ELF in place.
macro_rules! embed_object {
    ($name:literal) => {
        aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/", $name, ".bpf.o"))
    };
}

/// `snapshot process`: a task iterator (iter/task).
pub mod snapshot_process {
    #![allow(non_camel_case_types, non_upper_case_globals, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/snapshot_process_types.rs"));

    pub static OBJECT: &[u8] = embed_object!("snapshot_process");
}

/// `trace bind`: the bind syscall tracepoints.
pub mod trace_bind {
    #![allow(non_camel_case_types, non_upper_case_globals, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/trace_bind_types.rs"));

    pub static OBJECT: &[u8] = embed_object!("trace_bind");
}

/// `trace capabilities`: the capability/cap_capable tracepoint.
pub mod trace_capabilities {
    #![allow(non_camel_case_types, non_upper_case_globals, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/trace_capabilities_types.rs"));

    pub static OBJECT: &[u8] = embed_object!("trace_capabilities");
}

/// `trace dns`: the net_dev_queue and netif_receive_skb raw tracepoints, and sys_enter_bind.
pub mod trace_dns {
    #![allow(non_camel_case_types, non_upper_case_globals, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/trace_dns_types.rs"));

    pub static OBJECT: &[u8] = embed_object!("trace_dns");
}

/// `trace sni`: the write/writev/sendto/sendmsg syscall tracepoints.
pub mod trace_sni {
    #![allow(non_camel_case_types, non_upper_case_globals, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/trace_sni_types.rs"));

    pub static OBJECT: &[u8] = embed_object!("trace_sni");
}

/// `trace exec`: sched_process_exec plus the execve/execveat syscall tracepoints.
pub mod trace_exec {
    #![allow(non_camel_case_types, non_upper_case_globals, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/trace_exec_types.rs"));

    pub static OBJECT: &[u8] = embed_object!("trace_exec");
}

/// `trace open`: the open, openat and openat2 syscall tracepoints.
pub mod trace_open {
    #![allow(non_camel_case_types, non_upper_case_globals, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/trace_open_types.rs"));

    pub static OBJECT: &[u8] = embed_object!("trace_open");
}

/// `trace mount`: the mount and umount syscall tracepoints.
pub mod trace_mount {
    #![allow(non_camel_case_types, non_upper_case_globals, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/trace_mount_types.rs"));

    pub static OBJECT: &[u8] = embed_object!("trace_mount");
}

/// `trace oomkill`: the oom/mark_victim tracepoint.
pub mod trace_oomkill {
    #![allow(non_camel_case_types, non_upper_case_globals, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/trace_oomkill_types.rs"));

    pub static OBJECT: &[u8] = embed_object!("trace_oomkill");
}

/// `trace signal`: the kill, tkill and tgkill syscall tracepoints.
pub mod trace_signal {
    #![allow(non_camel_case_types, non_upper_case_globals, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/trace_signal_types.rs"));

    pub static OBJECT: &[u8] = embed_object!("trace_signal");
}

/// `trace tcp`: connect, accept and close syscall tracepoints.
pub mod trace_tcp {
    #![allow(non_camel_case_types, non_upper_case_globals, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/trace_tcp_types.rs"));

    pub static OBJECT: &[u8] = embed_object!("trace_tcp");
}

/// `trace tcpconnect`: connect tracepoints and sock/inet_sock_set_state.
pub mod trace_tcpconnect {
    #![allow(non_camel_case_types, non_upper_case_globals, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/trace_tcpconnect_types.rs"));

    pub static OBJECT: &[u8] = embed_object!("trace_tcpconnect");
}

/// Names shared by every gadget object (see ebpf/include/).
pub mod common {
    /// The ring buffer every program writes events to.
    pub const EVENTS_MAP: &str = "gadget_events";
    /// Per-cpu counters indexed by [`Stat`].
    pub const STATS_MAP: &str = "gadget_stats";
    /// Allowed mount namespace ids (u64 -> u8).
    pub const MNTNS_FILTER_MAP: &str = "gadget_mntns_filter";
    /// Load-time switch: filter by `MNTNS_FILTER_MAP`.
    pub const FILTER_BY_MNTNS: &str = "gadget_filter_by_mntns";
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
}

/// `top file`: the read/write syscall tracepoints, counters in a hash map.
pub mod top_file {
    #![allow(non_camel_case_types, non_upper_case_globals, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/top_file_types.rs"));

    pub static OBJECT: &[u8] = embed_object!("top_file");
}

/// `top tcp`: the sock_send_length/sock_recv_length tracepoints, counters in a hash map.
pub mod top_tcp {
    #![allow(non_camel_case_types, non_upper_case_globals, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/top_tcp_types.rs"));

    pub static OBJECT: &[u8] = embed_object!("top_tcp");
}
