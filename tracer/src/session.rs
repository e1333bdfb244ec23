//! One gadget run in the kernel: its programs loaded and attached, its ring
//! buffer, its loss counters and its mount-namespace filter map. Dropping the
//! session detaches the programs and frees the maps.

use std::sync::{Arc, Mutex};

use crate::bpf::{EVENTS_MAP, FILTER_BY_MNTNS, MNTNS_FILTER_MAP, STATS_MAP, Stat, WAKEUP_BYTES};
use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::{RawTracePoint, TracePoint};
use aya::{Ebpf, EbpfLoader};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Default ring buffer: deep enough for ~0.2 s of an open storm at 200k
/// events/s, small enough to keep the tracer's RSS low (its pages count).
pub const DEFAULT_RING_BYTES: u32 = 4 * 1024 * 1024;
/// Pending bytes at which a writer wakes the reader (see ebpf/include/buffer.h).
pub const DEFAULT_WAKEUP_BYTES: u64 = 256 * 1024;

/// One tracepoint a gadget attaches to.
#[derive(Clone, Copy, Debug)]
pub struct Attachment {
    pub program: &'static str,
    /// The tracefs category; empty for a raw tracepoint.
    pub category: &'static str,
    pub name: &'static str,
    /// Absent on some architectures or kernels (e.g. `open` on arm64): skipped.
    pub optional: bool,
}

impl Attachment {
    /// A tracepoint of the `syscalls` category (`sys_enter_*`, `sys_exit_*`).
    pub const fn syscall(program: &'static str, name: &'static str) -> Self {
        Self { program, category: "syscalls", name, optional: false }
    }

    pub const fn tracepoint(program: &'static str, category: &'static str, name: &'static str) -> Self {
        Self { program, category, name, optional: false }
    }

    /// A raw tracepoint: the arguments as the kernel passes them, without the
    /// trace record a classic tracepoint fills first (cheaper on hot paths
    /// such as every packet).
    pub const fn raw(program: &'static str, name: &'static str) -> Self {
        Self { program, category: "", name, optional: false }
    }

    fn is_raw(&self) -> bool {
        self.category.is_empty()
    }

    /// Skipped when the kernel does not have it.
    pub const fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
}

/// What a gadget's eBPF side is: its object, its load-time settings and its
/// attach points.
pub trait GadgetProgram {
    fn object(&self) -> &'static [u8];
    fn attachments(&self) -> &'static [Attachment];
    /// Gadget-specific `const volatile` settings; none by default.
    fn globals(&self) -> Vec<(&'static str, Global)> {
        Vec::new()
    }
}

/// The value of a `const volatile` setting, typed as in the C program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Global {
    Bool(bool),
    U32(u32),
    I32(i32),
    U64(u64),
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("loading the eBPF object")]
    Load(#[source] Box<aya::EbpfError>),
    #[error("eBPF object has no map {0}")]
    MissingMap(&'static str),
    #[error("eBPF object has no program {0}")]
    MissingProgram(&'static str),
    #[error("opening map {name}")]
    Map {
        name: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },
    #[error("loading program {program}")]
    Program {
        program: &'static str,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("attaching {program} to tracepoint {category}/{name}")]
    Attach {
        program: &'static str,
        category: &'static str,
        name: &'static str,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("watching the ring buffer")]
    Poll(#[source] std::io::Error),
}

/// How to load a session.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// Only tasks whose mount namespace is in the filter map are traced.
    pub filter_by_mntns: bool,
    /// Ring buffer size: a power of two, at least one page.
    pub ring_bytes: u32,
    /// See [`DEFAULT_WAKEUP_BYTES`]; 0 wakes the reader for every event.
    pub wakeup_bytes: u64,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self { filter_by_mntns: true, ring_bytes: DEFAULT_RING_BYTES, wakeup_bytes: DEFAULT_WAKEUP_BYTES }
    }
}

/// The mount-namespace filter map of a session, shared with whatever learns
/// about containers (it adds a container's mntns before acknowledging it).
#[derive(Clone)]
pub struct MntnsFilter {
    map: Arc<Mutex<BpfHashMap<MapData, u64, u8>>>,
}

impl MntnsFilter {
    pub fn allow(&self, mntns: u64) -> Result<(), aya::maps::MapError> {
        self.map.lock().expect("filter lock").insert(mntns, 1, 0)
    }

    /// Removes a namespace; removing one that is not there is not an error.
    pub fn disallow(&self, mntns: u64) -> Result<(), aya::maps::MapError> {
        match self.map.lock().expect("filter lock").remove(&mntns) {
            Err(aya::maps::MapError::KeyNotFound) => Ok(()),
            // aya reports a missing key on delete as the raw ENOENT.
            Err(aya::maps::MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {
                Ok(())
            }
            other => other,
        }
    }
}

/// One key and value of a map, as raw bytes.
pub type MapEntry<const K: usize, const V: usize> = ([u8; K], [u8; V]);

pub struct Session {
    // Field order matters for drop: the ring buffer and maps go before the
    // Ebpf that owns the programs (dropping it detaches them).
    ring: AsyncFd<RingBuf<MapData>>,
    stats: PerCpuArray<MapData, u64>,
    filter: MntnsFilter,
    _bpf: Ebpf,
}

impl Session {
    pub fn load(program: &dyn GadgetProgram, opts: &SessionOptions) -> Result<Self, SessionError> {
        let started = std::time::Instant::now();
        let (object, globals) = (program.object(), program.globals());
        let mut bpf = crate::object_btf::with_object_btf(object, || load_object(object, &globals, opts))
            .map_err(|e| SessionError::Load(Box::new(e)))?;
        tracing::debug!(took = ?started.elapsed(), "object parsed and relocated");

        for a in program.attachments() {
            if a.is_raw() {
                attach_raw(&mut bpf, a)?;
                continue;
            }
            let prog: &mut TracePoint = bpf
                .program_mut(a.program)
                .ok_or(SessionError::MissingProgram(a.program))?
                .try_into()
                .map_err(|source| SessionError::Program { program: a.program, source: Box::new(source) })?;
            if a.optional && !tracepoint_exists(a.category, a.name) {
                tracing::debug!("tracepoint {}/{} not on this kernel, skipped", a.category, a.name);
                continue;
            }
            prog.load()
                .map_err(|source| SessionError::Program { program: a.program, source: Box::new(source) })?;
            prog.attach(a.category, a.name).map_err(|source| SessionError::Attach {
                program: a.program,
                category: a.category,
                name: a.name,
                source: Box::new(source),
            })?;
        }

        tracing::debug!(took = ?started.elapsed(), "programs loaded and attached");
        let ring = RingBuf::try_from(take_map(&mut bpf, EVENTS_MAP)?)
            .map_err(|source| SessionError::Map { name: EVENTS_MAP, source: Box::new(source) })?;
        let stats = PerCpuArray::try_from(take_map(&mut bpf, STATS_MAP)?)
            .map_err(|source| SessionError::Map { name: STATS_MAP, source: Box::new(source) })?;
        let filter = BpfHashMap::try_from(take_map(&mut bpf, MNTNS_FILTER_MAP)?)
            .map_err(|source| SessionError::Map { name: MNTNS_FILTER_MAP, source: Box::new(source) })?;
        // SAFETY: the RingBuf owns its fd, and the AsyncFd owns the RingBuf,
        // so the fd stays open for as long as it is registered.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| SessionError::Poll(e.into_parts().1))?;
        Ok(Self { ring, stats, filter: MntnsFilter { map: Arc::new(Mutex::new(filter)) }, _bpf: bpf })
    }

    pub fn filter(&self) -> MntnsFilter {
        self.filter.clone()
    }

    /// Waits until the kernel wakes the reader (a batch is pending).
    pub async fn readable(&self) -> std::io::Result<()> {
        let mut guard = self.ring.readable().await?;
        guard.clear_ready();
        Ok(())
    }

    /// Hands every pending event to `f`; returns how many there were.
    pub fn drain(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        let ring = self.ring.get_mut();
        let mut n = 0;
        while let Some(item) = ring.next() {
            f(&item);
            n += 1;
        }
        n
    }

    /// Reads and removes every entry of the hash map `name` (the `top`
    /// gadgets' counters). An entry the kernel adds meanwhile is read next
    /// time; one it updates between the read and the removal loses that
    /// update, as with any read-then-clear of a live map.
    pub fn take_entries<const K: usize, const V: usize>(
        &mut self,
        name: &'static str,
    ) -> Result<Vec<MapEntry<K, V>>, SessionError> {
        let map = self._bpf.map_mut(name).ok_or(SessionError::MissingMap(name))?;
        let mut hash: BpfHashMap<&mut MapData, [u8; K], [u8; V]> = BpfHashMap::try_from(map)
            .map_err(|source| SessionError::Map { name, source: Box::new(source) })?;
        let keys: Vec<[u8; K]> = hash.keys().filter_map(Result::ok).collect();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            if let Ok(value) = hash.get(&key, 0) {
                out.push((key, value));
            }
            let _ = hash.remove(&key);
        }
        Ok(out)
    }

    /// Events the kernel could not write since the session started.
    pub fn lost(&self) -> u64 {
        self.stat(Stat::Lost)
    }

    fn stat(&self, stat: Stat) -> u64 {
        match self.stats.get(&(stat as u32), 0) {
            Ok(values) => values.iter().sum(),
            Err(e) => {
                tracing::warn!("reading {STATS_MAP}: {e}");
                0
            }
        }
    }
}

/// Parses, relocates and loads `object` with the session's settings (the
/// programs are not attached yet).
fn load_object(
    object: &[u8],
    globals: &[(&'static str, Global)],
    opts: &SessionOptions,
) -> Result<Ebpf, aya::EbpfError> {
    let filter_flag = u8::from(opts.filter_by_mntns);
    let mut loader = EbpfLoader::new();
    loader
        // Task-local storage has no userspace API in aya 0.14, and needs none.
        .allow_unsupported_maps()
        .override_global(FILTER_BY_MNTNS, &filter_flag, true)
        .override_global(WAKEUP_BYTES, &opts.wakeup_bytes, true)
        .map_max_entries(EVENTS_MAP, opts.ring_bytes);
    // Keep the bytes alive for as long as the loader borrows them.
    let bools: Vec<(&str, u8)> = globals
        .iter()
        .filter_map(|(n, g)| if let Global::Bool(b) = g { Some((*n, u8::from(*b))) } else { None })
        .collect();
    for (name, value) in &bools {
        loader.override_global(name, value, true);
    }
    for (name, value) in globals {
        match value {
            Global::Bool(_) => {}
            Global::U32(v) => {
                loader.override_global(name, v, true);
            }
            Global::I32(v) => {
                loader.override_global(name, v, true);
            }
            Global::U64(v) => {
                loader.override_global(name, v, true);
            }
        }
    }
    loader.load(object)
}

fn attach_raw(bpf: &mut Ebpf, a: &Attachment) -> Result<(), SessionError> {
    let prog: &mut RawTracePoint = bpf
        .program_mut(a.program)
        .ok_or(SessionError::MissingProgram(a.program))?
        .try_into()
        .map_err(|source| SessionError::Program { program: a.program, source: Box::new(source) })?;
    prog.load().map_err(|source| SessionError::Program { program: a.program, source: Box::new(source) })?;
    prog.attach(a.name).map_err(|source| SessionError::Attach {
        program: a.program,
        category: "raw",
        name: a.name,
        source: Box::new(source),
    })?;
    Ok(())
}

fn take_map(bpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, SessionError> {
    bpf.take_map(name).ok_or(SessionError::MissingMap(name))
}

fn tracepoint_exists(category: &str, name: &str) -> bool {
    ["/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"]
        .iter()
        .any(|root| std::path::Path::new(root).join(category).join(name).exists())
}
