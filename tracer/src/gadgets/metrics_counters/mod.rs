//! The daemon's in-kernel counters: per mount namespace, execs, opens,
//! signals, OOM kills, TCP connects (and their failures), accepts and bytes,
//! capability denials, counted by the kernel with no event sent
//! (program.bpf.c), read at each scrape. Not a gadget of the command line:
//! `ig daemon --metrics-address` loads it.

use std::fmt::Write as _;
use std::mem::{offset_of, size_of};

use self::bpf::{
    IG_COUNTER_CAPABILITY_DENIALS, IG_COUNTER_EXECS, IG_COUNTER_FAILED_EXECS, IG_COUNTER_FAILED_OPENS,
    IG_COUNTER_FAILED_TCP_CONNECTS, IG_COUNTER_OOM_KILLS, IG_COUNTER_OPENS, IG_COUNTER_SIGNALS,
    IG_COUNTER_TCP_ACCEPTS, IG_COUNTER_TCP_CONNECTS, IG_COUNTER_TCP_RECEIVED_BYTES,
    IG_COUNTER_TCP_SENT_BYTES, OBJECT, ig_counter_key as Key,
};
use crate::metrics::Count;
use crate::session::{Attachment, GadgetProgram, Global, Session, SessionError, SessionOptions, Variant};

crate::bpf_object!(metrics_counters);

const COUNTERS_MAP: &str = "ig_counters";
const KEY: usize = size_of::<Key>();

/// Every variant's attachments: these, then the variant's own way of
/// seeing capability checks.
macro_rules! counted_everywhere {
    ($($own:expr),* $(,)?) => {
        &[
            Attachment::syscall("ig_count_execve", "sys_exit_execve"),
            Attachment::syscall("ig_count_execveat", "sys_exit_execveat"),
            Attachment::syscall("ig_count_open", "sys_exit_open"),
            Attachment::syscall("ig_count_openat", "sys_exit_openat"),
            Attachment::syscall("ig_count_openat2", "sys_exit_openat2").optional(),
            Attachment::syscall("ig_count_kill", "sys_exit_kill"),
            Attachment::syscall("ig_count_tkill", "sys_exit_tkill"),
            Attachment::syscall("ig_count_tgkill", "sys_exit_tgkill"),
            Attachment::syscall("ig_count_accept", "sys_exit_accept"),
            Attachment::syscall("ig_count_accept4", "sys_exit_accept4"),
            Attachment::tracepoint("ig_count_tcp_state", "sock", "inet_sock_set_state"),
            Attachment::tracepoint("ig_count_oom_kill", "oom", "mark_victim"),
            // Bytes only where the kernel has these (6.3+).
            Attachment::tracepoint("ig_count_send", "sock", "sock_send_length").optional(),
            Attachment::tracepoint("ig_count_recv", "sock", "sock_recv_length").optional(),
            $($own),*
        ]
    };
}

/// Where no variant sees capability checks, everything else is still counted.
const NO_CAPABILITIES: &str = "no capability checks";

/// Cheapest first among those that see the caller's CAP_OPT_NOAUDIT (see
/// program.bpf.c); the tracepoint counts every denial.
const VARIANTS: &[Variant] = &[
    Variant::new("fexit", counted_everywhere![Attachment::fexit("ig_count_cap_fexit", "cap_capable")]),
    Variant::new(
        "tracepoint",
        counted_everywhere![
            Attachment::tracepoint("ig_count_cap_tracepoint", "capability", "cap_capable").since("6.16")
        ],
    ),
    Variant::new(
        "kprobe",
        counted_everywhere![
            Attachment::kprobe("ig_count_cap_entry", "cap_capable"),
            Attachment::kretprobe("ig_count_cap_exit", "cap_capable"),
        ],
    ),
    Variant::new(NO_CAPABILITIES, counted_everywhere![]),
];

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
pub const COUNTED: [(u32, Count); 12] = [
    (IG_COUNTER_EXECS, Count::Execs),
    (IG_COUNTER_FAILED_EXECS, Count::FailedExecs),
    (IG_COUNTER_OPENS, Count::FileOpens),
    (IG_COUNTER_FAILED_OPENS, Count::FailedFileOpens),
    (IG_COUNTER_SIGNALS, Count::Signals),
    (IG_COUNTER_TCP_CONNECTS, Count::TcpConnects),
    (IG_COUNTER_FAILED_TCP_CONNECTS, Count::FailedTcpConnects),
    (IG_COUNTER_TCP_SENT_BYTES, Count::TcpSentBytes),
    (IG_COUNTER_TCP_RECEIVED_BYTES, Count::TcpReceivedBytes),
    (IG_COUNTER_TCP_ACCEPTS, Count::TcpAccepts),
    (IG_COUNTER_OOM_KILLS, Count::OomKills),
    (IG_COUNTER_CAPABILITY_DENIALS, Count::CapabilityDenials),
];

/// Whether this kernel lets the counters count TCP bytes.
pub fn counts_tcp_bytes() -> bool {
    crate::session::KernelHooks::probe().has_tracepoint("sock", "sock_send_length")
}

/// What the loaded counters count on this kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelCounting {
    pub counted: Vec<Count>,
    /// How capability checks are seen (fexit, tracepoint, kprobe), if at all.
    pub capability_checks: Option<&'static str>,
}

impl KernelCounting {
    /// The daemon's log line: what is counted in the kernel, and what this
    /// kernel keeps from it (the gadgets that run count those instead).
    pub fn describe(&self) -> String {
        let mut text = String::from(
            "counting in the kernel: execs, file opens, signals, OOM kills, TCP connects and accepts",
        );
        let mut missing = Vec::new();
        if self.counted.contains(&Count::TcpSentBytes) {
            text.push_str(", TCP bytes");
        } else {
            missing.push("TCP bytes (they need the tracepoint sock/sock_send_length, Linux 6.3+)");
        }
        match self.capability_checks {
            Some(how) => {
                let _ = write!(text, ", capability denials (by {how})");
            }
            None => missing.push(
                "capability denials (they need fexit, the tracepoint capability/cap_capable (Linux 6.16+) or kprobes)",
            ),
        }
        if !missing.is_empty() {
            text.push_str("; not in the kernel, counted by the gadgets that run: ");
            text.push_str(&missing.join(", "));
        }
        text
    }
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

    /// What these counters keep on this kernel.
    pub fn counting(&self) -> KernelCounting {
        let capability_checks = Some(self.session.variant()).filter(|v| *v != NO_CAPABILITIES);
        let bytes = counts_tcp_bytes();
        let counted = COUNTED
            .iter()
            .map(|(_, c)| *c)
            .filter(|c| match c {
                Count::TcpSentBytes | Count::TcpReceivedBytes => bytes,
                Count::CapabilityDenials => capability_checks.is_some(),
                _ => true,
            })
            .collect();
        KernelCounting { counted, capability_checks }
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

    /// Moves one mount namespace's counters out of the kernel's map and
    /// returns them: one lookup per metric, not a walk of the whole map
    /// (this runs as each container starts, before its source is answered).
    pub fn take(&mut self, mntns: u64) -> Result<Vec<(Count, u64)>, SessionError> {
        let mut taken = Vec::new();
        let mut keys = Vec::new();
        for (counter, count) in COUNTED {
            let key = encode(mntns, counter);
            let Some(per_cpu) = self.session.per_cpu_value::<KEY, 8>(COUNTERS_MAP, &key)? else { continue };
            taken.push((count, per_cpu.iter().map(|v| u64::from_ne_bytes(*v)).sum()));
            keys.push(key);
        }
        self.session.remove_keys::<KEY, 8>(COUNTERS_MAP, &keys)?;
        Ok(taken)
    }

    /// Counts the kernel could not keep: its map was full.
    pub fn lost(&self) -> u64 {
        self.session.lost()
    }
}

fn encode(mntns: u64, counter: u32) -> [u8; KEY] {
    let mut key = [0u8; KEY];
    key[offset_of!(Key, mntns_id)..][..8].copy_from_slice(&mntns.to_ne_bytes());
    key[offset_of!(Key, counter)..][..4].copy_from_slice(&counter.to_ne_bytes());
    key
}

fn decode(key: &[u8; KEY]) -> (u64, u32) {
    let at = |o: usize, n: usize| &key[o..o + n];
    let mntns = u64::from_ne_bytes(at(offset_of!(Key, mntns_id), 8).try_into().expect("8 bytes"));
    let counter = u32::from_ne_bytes(at(offset_of!(Key, counter), 4).try_into().expect("4 bytes"));
    (mntns, counter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_encoded_decodes_to_its_namespace_and_counter() {
        assert_eq!(decode(&encode(4026532174, 3)), (4026532174, 3));
        assert_eq!(encode(1, 2)[offset_of!(Key, pad)..], [0u8; 4], "the padding the kernel zeroes");
    }

    #[test]
    fn the_log_line_says_what_the_kernel_keeps_from_the_counters() {
        let all = KernelCounting {
            counted: COUNTED.iter().map(|(_, c)| *c).collect(),
            capability_checks: Some("fexit"),
        };
        assert_eq!(
            all.describe(),
            "counting in the kernel: execs, file opens, signals, OOM kills, TCP connects and accepts, TCP bytes, capability denials (by fexit)"
        );
        let old = KernelCounting {
            counted: all
                .counted
                .iter()
                .copied()
                .filter(|c| {
                    !matches!(c, Count::TcpSentBytes | Count::TcpReceivedBytes | Count::CapabilityDenials)
                })
                .collect(),
            capability_checks: None,
        };
        let text = old.describe();
        assert!(text.contains("not in the kernel, counted by the gadgets that run: TCP bytes (they need the tracepoint sock/sock_send_length, Linux 6.3+), capability denials"), "{text}");
    }
}
