//! What every gadget's eBPF object shares (tracer/bpf/*.h): the names of
//! the common maps and load-time settings, and the macro that embeds a
//! gadget's object and its generated types (see build.rs).

/// Embeds the object build.rs compiled from `src/gadgets/<gadget>/program.bpf.c`
/// as `bpf::OBJECT` (deflated; `&OBJECT` is the object's bytes), and the
/// Rust mirror of its `program.h` as `bpf::*`.
#[macro_export]
macro_rules! bpf_object {
    ($gadget:ident) => {
        /// The gadget's eBPF object and the types of its `program.h`.
        pub mod bpf {
            #![allow(non_camel_case_types, non_upper_case_globals, dead_code)]
            include!(concat!(env!("OUT_DIR"), "/", stringify!($gadget), "_types.rs"));

            /// The object file, inflated on first use.
            pub static OBJECT: $crate::bpf::EmbeddedObject = $crate::bpf::EmbeddedObject::new(
                include_bytes!(concat!(env!("OUT_DIR"), "/", stringify!($gadget), ".bpf.o.z")),
            );
        }
    };
}

/// An eBPF object embedded deflated (build.rs), inflated once into an
/// 8-byte aligned buffer: aya parses ELF in place. Only the objects of the
/// gadgets a run uses are ever inflated.
pub struct EmbeddedObject {
    deflated: &'static [u8],
    /// The object in 8-byte words, and its length in bytes.
    inflated: std::sync::OnceLock<(Box<[u64]>, usize)>,
}

impl EmbeddedObject {
    pub const fn new(deflated: &'static [u8]) -> Self {
        Self { deflated, inflated: std::sync::OnceLock::new() }
    }
}

impl std::ops::Deref for EmbeddedObject {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        let (words, len) = self.inflated.get_or_init(|| {
            // Invariant: build.rs deflated these bytes itself; they are
            // part of this binary, not outside input.
            let object = miniz_oxide::inflate::decompress_to_vec(self.deflated)
                .expect("an embedded eBPF object that build.rs deflated");
            let mut words = vec![0u64; object.len().div_ceil(8)].into_boxed_slice();
            // SAFETY: the u64 slice's own memory viewed as bytes; any byte
            // value is a valid u64 bit pattern.
            let view =
                unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 8) };
            view[..object.len()].copy_from_slice(&object);
            (words, object.len())
        });
        // SAFETY: the same memory, read-only, no longer than the buffer
        // (len <= words.len() * 8).
        unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), *len) }
    }
}

/// The types of `bpf/types.h`: `ig_process`, embedded as `process` in
/// every event that names a task (decoded by crate::event_process).
mod common_types {
    #![allow(non_camel_case_types, dead_code)]
    include!(concat!(env!("OUT_DIR"), "/common_types.rs"));
}
pub use common_types::{IG_TASK_COMM_LEN, ig_process};

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

#[cfg(test)]
mod tests {
    /// Every embedded object inflates to the ELF build.rs compiled, 8-byte
    /// aligned for aya, and the same bytes on every use.
    #[test]
    fn embedded_objects_inflate_to_aligned_elf() {
        for object in [
            &crate::gadgets::trace_exec::bpf::OBJECT,
            &crate::gadgets::trace_open::bpf::OBJECT,
            &crate::gadgets::traceloop::bpf::OBJECT,
        ] {
            let bytes: &[u8] = object;
            assert_eq!(&bytes[..4], b"\x7fELF");
            assert_eq!(bytes.as_ptr() as usize % 8, 0);
            let again: &[u8] = object;
            assert_eq!(bytes.as_ptr(), again.as_ptr(), "inflated once");
        }
    }
}
