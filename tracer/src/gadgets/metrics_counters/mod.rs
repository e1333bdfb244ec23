//! The daemon's in-kernel counters: per mount namespace, execs, opens,
//! signals, TCP connects (and their failures) and TCP bytes, counted by the kernel
//! with no event sent (program.bpf.c), read at each scrape. Not a gadget
//! of the command line: `ig daemon --metrics-address` loads it.

use std::mem::{offset_of, size_of};

use self::bpf::{
    IG_COUNTER_EXECS, IG_COUNTER_FAILED_EXECS, IG_COUNTER_FAILED_OPENS, IG_COUNTER_FAILED_TCP_CONNECTS,
    IG_COUNTER_OPENS, IG_COUNTER_SIGNALS, IG_COUNTER_TCP_CONNECTS, IG_COUNTER_TCP_RECEIVED_BYTES,
    IG_COUNTER_TCP_SENT_BYTES, OBJECT, ig_counter_key as Key,
};
use crate::metrics::Count;
use crate::session::{Attachment, GadgetProgram, Global, Session, SessionError, SessionOptions, Variant};

crate::bpf_object!(metrics_counters);

const COUNTERS_MAP: &str = "ig_counters";
const KEY: usize = size_of::<Key>();

const ATTACHMENTS: &[Attachment] = &[
    Attachment::syscall("ig_count_execve", "sys_exit_execve"),
    Attachment::syscall("ig_count_execveat", "sys_exit_execveat"),
    Attachment::syscall("ig_count_open", "sys_exit_open"),
    Attachment::syscall("ig_count_openat", "sys_exit_openat"),
    Attachment::syscall("ig_count_openat2", "sys_exit_openat2").optional(),
    Attachment::syscall("ig_count_kill", "sys_exit_kill"),
    Attachment::syscall("ig_count_tkill", "sys_exit_tkill"),
    Attachment::syscall("ig_count_tgkill", "sys_exit_tgkill"),
    Attachment::tracepoint("ig_count_tcp_state", "sock", "inet_sock_set_state"),
    // Bytes only where the kernel has these (6.3+).
    Attachment::tracepoint("ig_count_send", "sock", "sock_send_length").optional(),
    Attachment::tracepoint("ig_count_recv", "sock", "sock_recv_length").optional(),
];

const VARIANTS: &[Variant] = &[Variant::new("tracepoint", ATTACHMENTS)];

/// The program, for `Session::load`.
pub struct MetricsCounters;

impl GadgetProgram for MetricsCounters {
    fn object(&self) -> &'static [u8] {
        &OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }

    fn globals(&self) -> Vec<(&'static str, Global)> {
        Vec::new()
    }
}

/// What the kernel counts, and which metric each counter is.
pub const COUNTED: [(u32, Count); 9] = [
    (IG_COUNTER_EXECS, Count::Execs),
    (IG_COUNTER_FAILED_EXECS, Count::FailedExecs),
    (IG_COUNTER_OPENS, Count::FileOpens),
    (IG_COUNTER_FAILED_OPENS, Count::FailedFileOpens),
    (IG_COUNTER_SIGNALS, Count::Signals),
    (IG_COUNTER_TCP_CONNECTS, Count::TcpConnects),
    (IG_COUNTER_FAILED_TCP_CONNECTS, Count::FailedTcpConnects),
    (IG_COUNTER_TCP_SENT_BYTES, Count::TcpSentBytes),
    (IG_COUNTER_TCP_RECEIVED_BYTES, Count::TcpReceivedBytes),
];

/// Whether this kernel lets the counters count TCP bytes.
pub fn counts_tcp_bytes() -> bool {
    crate::session::KernelHooks::probe().has_tracepoint("sock", "sock_send_length")
}

/// The loaded counters.
pub struct KernelCounters {
    session: Session,
}

impl KernelCounters {
    pub fn load() -> Result<Self, SessionError> {
        // No events: the smallest ring the kernel takes.
        let opts = SessionOptions { ring_bytes: 4096, ..Default::default() };
        Ok(Self { session: Session::load(&MetricsCounters, &opts)? })
    }

    /// (mount namespace, metric, total since loaded) for every counter.
    pub fn read(&mut self) -> Result<Vec<(u64, Count, u64)>, SessionError> {
        let entries = self.session.per_cpu_sums::<KEY>(COUNTERS_MAP)?;
        Ok(entries
            .into_iter()
            .filter_map(|(key, n)| {
                let (mntns, counter) = decode(&key);
                let count = COUNTED.iter().find(|(c, _)| *c == counter)?.1;
                Some((mntns, count, n))
            })
            .collect())
    }

    /// Drops the counters of these mount namespaces (gone containers).
    pub fn forget(&mut self, mntns: &[u64]) -> Result<(), SessionError> {
        let keys: Vec<[u8; KEY]> = self
            .session
            .per_cpu_sums::<KEY>(COUNTERS_MAP)?
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| mntns.contains(&decode(k).0))
            .collect();
        self.session.remove_keys::<KEY, 8>(COUNTERS_MAP, &keys)
    }

    /// Counts the kernel could not keep: its map was full.
    pub fn lost(&self) -> u64 {
        self.session.lost()
    }
}

fn decode(key: &[u8; KEY]) -> (u64, u32) {
    let at = |o: usize, n: usize| &key[o..o + n];
    let mntns = u64::from_ne_bytes(at(offset_of!(Key, mntns_id), 8).try_into().expect("8 bytes"));
    let counter = u32::from_ne_bytes(at(offset_of!(Key, counter), 4).try_into().expect("4 bytes"));
    (mntns, counter)
}
