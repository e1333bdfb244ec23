//! One gadget run in the kernel: its programs loaded and attached, its ring
//! buffer, its loss counters and its mount-namespace filter map. Dropping the
//! session detaches the programs and frees the maps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::bpf::{
    EVENTS_MAP, FILTER_BY_MNTNS, MNTNS_FILTER_EXCLUDES, MNTNS_FILTER_MAP, STATS_MAP, Stat, WAKEUP_BYTES,
};
use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::{FEntry, FExit, KProbe, PerfEvent, ProgramFd, RawTracePoint, TracePoint, UProbe};
use aya::{Ebpf, EbpfLoader};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Default ring buffer: deep enough for ~0.2 s of an open storm at 200k
/// events/s, small enough to keep the tracer's RSS low (its pages count).
pub const DEFAULT_RING_BYTES: u32 = 4 * 1024 * 1024;
/// Pending bytes at which a writer wakes the reader (see ebpf/include/buffer.h).
pub const DEFAULT_WAKEUP_BYTES: u64 = 256 * 1024;

/// Where in the kernel a program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// A tracefs tracepoint, `category/name`.
    Tracepoint { category: &'static str, name: &'static str },
    /// A raw tracepoint: the arguments as the kernel passes them, without
    /// the trace record a classic tracepoint fills first (cheaper on hot
    /// paths such as every packet).
    Raw { name: &'static str },
    /// A kprobe on a kernel function's entry.
    Kprobe { function: &'static str },
    /// A kretprobe on a kernel function's return.
    Kretprobe { function: &'static str },
    /// An fentry program on a kernel function's entry (a BPF trampoline:
    /// its arguments typed, cheaper than a kprobe's breakpoint).
    Fentry { function: &'static str },
    /// An fexit program on a kernel function's return (a BPF trampoline:
    /// the arguments and the result, at the cost of a call).
    Fexit { function: &'static str },
    /// A perf cpu-clock event on every online CPU, sampling at the
    /// session's `sample_hz` (a `perf_event` program).
    CpuClock,
    /// A uprobe on a library function's entry: loaded with the session,
    /// attached by the gadget to each library file it finds (uprobe.rs).
    Uprobe { function: &'static str },
    /// A uretprobe on library functions' returns, attached the same way.
    Uretprobe,
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hook::Tracepoint { category, name } => write!(f, "tracepoint {category}/{name}"),
            Hook::Raw { name } => write!(f, "raw tracepoint {name}"),
            Hook::Kprobe { function } => write!(f, "kprobe {function}"),
            Hook::Kretprobe { function } => write!(f, "kretprobe {function}"),
            Hook::Fentry { function } => write!(f, "fentry {function}"),
            Hook::Fexit { function } => write!(f, "fexit {function}"),
            Hook::CpuClock => write!(f, "perf cpu-clock events"),
            Hook::Uprobe { function } => write!(f, "uprobe {function}"),
            Hook::Uretprobe => write!(f, "uretprobe"),
        }
    }
}

/// One program of a gadget and where it attaches.
#[derive(Clone, Copy, Debug)]
pub struct Attachment {
    pub program: &'static str,
    pub hook: Hook,
    /// Absent on some architectures or kernels (e.g. `open` on arm64): skipped.
    pub optional: bool,
    /// The first Linux release that has the hook, for the message where it is missing.
    pub since: Option<&'static str>,
}

impl Attachment {
    const fn new(program: &'static str, hook: Hook) -> Self {
        Self { program, hook, optional: false, since: None }
    }

    /// A tracepoint of the `syscalls` category (`sys_enter_*`, `sys_exit_*`).
    pub const fn syscall(program: &'static str, name: &'static str) -> Self {
        Self::new(program, Hook::Tracepoint { category: "syscalls", name })
    }

    pub const fn tracepoint(program: &'static str, category: &'static str, name: &'static str) -> Self {
        Self::new(program, Hook::Tracepoint { category, name })
    }

    pub const fn raw(program: &'static str, name: &'static str) -> Self {
        Self::new(program, Hook::Raw { name })
    }

    pub const fn kprobe(program: &'static str, function: &'static str) -> Self {
        Self::new(program, Hook::Kprobe { function })
    }

    pub const fn kretprobe(program: &'static str, function: &'static str) -> Self {
        Self::new(program, Hook::Kretprobe { function })
    }

    pub const fn fentry(program: &'static str, function: &'static str) -> Self {
        Self::new(program, Hook::Fentry { function })
    }

    pub const fn fexit(program: &'static str, function: &'static str) -> Self {
        Self::new(program, Hook::Fexit { function })
    }

    pub const fn cpu_clock(program: &'static str) -> Self {
        Self::new(program, Hook::CpuClock)
    }

    pub const fn uprobe(program: &'static str, function: &'static str) -> Self {
        Self::new(program, Hook::Uprobe { function })
    }

    pub const fn uretprobe(program: &'static str) -> Self {
        Self::new(program, Hook::Uretprobe)
    }

    /// Skipped when the kernel does not have it.
    pub const fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// Says where the hook first appeared (e.g. "6.3").
    pub const fn since(mut self, release: &'static str) -> Self {
        self.since = Some(release);
        self
    }
}

/// One way of running a gadget: a set of programs and their hooks. A
/// gadget lists its variants in order of preference; the first the running
/// kernel has (probed, never by version) is used.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    /// What `ig check` shows: "tracepoint", "kprobe", ...
    pub name: &'static str,
    pub attachments: &'static [Attachment],
}

impl Variant {
    pub const fn new(name: &'static str, attachments: &'static [Attachment]) -> Self {
        Self { name, attachments }
    }

    /// What the running kernel lacks for this variant, checked without
    /// loading anything; None when it has what can be checked so.
    pub fn missing(&self, kernel: &KernelHooks) -> Option<String> {
        self.attachments.iter().filter(|a| !a.optional).find_map(|a| kernel.missing(a))
    }
}

/// What the kernel offers programs to attach to, as tracefs shows it.
#[derive(Clone, Debug)]
pub struct KernelHooks {
    /// tracefs' events directory, if tracefs is mounted.
    pub events: Option<std::path::PathBuf>,
    /// kprobe_events exists: the kernel has kprobes (CONFIG_KPROBE_EVENTS).
    pub kprobes: bool,
    /// The uprobe perf event source exists (CONFIG_UPROBE_EVENTS).
    pub uprobes: bool,
    /// Why function tracing, which BPF trampolines (fentry, fexit) attach
    /// through, is not there or not allowed; None when it is.
    pub no_function_tracing: Option<String>,
}

impl KernelHooks {
    pub fn probe() -> Self {
        let tracefs = [crate::kernel::TRACEFS, crate::kernel::TRACEFS_LEGACY]
            .iter()
            .map(std::path::Path::new)
            .find(|p| p.join("events").is_dir());
        // Opened, never read (it lists every traceable function): a kernel
        // without CONFIG_FUNCTION_TRACER has no such file, and one that
        // forbids function tracing refuses the open (EPERM), as it refuses
        // trampolines.
        let no_function_tracing = match tracefs {
            None => Some("no tracefs".to_string()),
            Some(p) => std::fs::File::open(p.join("available_filter_functions"))
                .err()
                .map(|e| format!("tracefs available_filter_functions: {e}")),
        };
        Self {
            events: tracefs.map(|p| p.join("events")),
            kprobes: tracefs.is_some_and(|p| p.join("kprobe_events").exists()),
            uprobes: crate::uprobe::supported(),
            no_function_tracing,
        }
    }

    pub fn has_tracefs(&self) -> bool {
        self.events.is_some()
    }

    pub fn has_tracepoint(&self, category: &str, name: &str) -> bool {
        self.events.as_ref().is_some_and(|e| e.join(category).join(name).is_dir())
    }

    /// Why `a` cannot attach here, if that is known before trying.
    fn missing(&self, a: &Attachment) -> Option<String> {
        let since = a.since.map(|s| format!(" (Linux {s}+)")).unwrap_or_default();
        match a.hook {
            Hook::Tracepoint { category, name } if !self.has_tracepoint(category, name) => {
                Some(format!("no {category}/{name} tracepoint{since}"))
            }
            Hook::Kprobe { .. } | Hook::Kretprobe { .. } if !self.kprobes => {
                Some("no kprobes in this kernel (CONFIG_KPROBE_EVENTS)".into())
            }
            Hook::Uprobe { .. } | Hook::Uretprobe if !self.uprobes => {
                Some("no uprobes in this kernel (CONFIG_UPROBE_EVENTS)".into())
            }
            Hook::Fentry { .. } | Hook::Fexit { .. } => self
                .no_function_tracing
                .as_ref()
                .map(|why| format!("no function tracing for fentry/fexit ({why})")),
            // The sysctl exists exactly when the kernel has perf events.
            Hook::CpuClock if !std::path::Path::new("/proc/sys/kernel/perf_event_paranoid").exists() => {
                Some("no perf events in this kernel (CONFIG_PERF_EVENTS)".into())
            }
            _ => None,
        }
    }
}

/// What a gadget's eBPF side is: its object, its load-time settings and the
/// ways it can attach.
pub trait GadgetProgram {
    fn object(&self) -> &'static [u8];
    /// In order of preference.
    fn variants(&self) -> &'static [Variant];
    /// Gadget-specific `const volatile` settings; none by default.
    fn globals(&self) -> Vec<(&'static str, Global)> {
        Vec::new()
    }
}

/// The value of a `const volatile` setting, typed as in the C program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Global {
    Bool(bool),
    U8(u8),
    U16(u16),
    U32(u32),
    I32(i32),
    U64(u64),
    /// An address, as the kernel stores it (IPv4 in the first 4 bytes).
    Bytes16([u8; 16]),
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("loading the eBPF object")]
    Load(#[source] Box<aya::EbpfError>),
    #[error("eBPF object has no map {0}")]
    MissingMap(&'static str),
    /// Asked of a gadget that reads /proc and loads no program.
    #[error("this gadget reads /proc: it has no eBPF maps")]
    NoProgram,
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
    #[error("the kernel's verifier refused program {program}: {verdict}")]
    Verifier { program: &'static str, verdict: String },
    #[error("attaching {program} to {hook}")]
    Attach {
        program: &'static str,
        hook: Hook,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    /// Every variant was missing something or failed; why, for each.
    #[error("{}", unsupported(.0))]
    Unsupported(Vec<(&'static str, String)>),
    #[error("listing the online CPUs")]
    Cpus(#[source] std::io::Error),
    #[error("watching the ring buffer")]
    Poll(#[source] std::io::Error),
    #[error("finding the target of {program}")]
    Target {
        program: &'static str,
        #[source]
        source: crate::object_btf::FunctionBtfError,
    },
}

/// What the in-kernel mount-namespace filter does with its map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterMode {
    /// Every task passes (`--host` without a selection): no lookup at all.
    Off,
    /// Only tasks in a listed namespace pass: the selected containers.
    Only,
    /// Tasks in a listed namespace are dropped (`--host` with a selection:
    /// the containers not selected are listed).
    Except,
}

impl FilterMode {
    pub fn for_run(host: bool, selector: &crate::selector::ContainerSelector) -> Self {
        match (host, selector.is_empty()) {
            (false, _) => Self::Only,
            (true, true) => Self::Off,
            (true, false) => Self::Except,
        }
    }

    /// Whether a container of this selection goes into the map.
    pub fn lists(self, selected: bool) -> bool {
        match self {
            Self::Off => false,
            Self::Only => selected,
            Self::Except => !selected,
        }
    }
}

/// How to load a session.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    pub filter: FilterMode,
    /// --pid, --tid, --uid, --gid, --comm.
    pub process: crate::process_filter::ProcessFlags,
    /// Ring buffer size: a power of two, at least one page.
    pub ring_bytes: u32,
    /// See [`DEFAULT_WAKEUP_BYTES`]; 0 wakes the reader for every event.
    pub wakeup_bytes: u64,
    /// Samples per second of [`Hook::CpuClock`] attachments, on each CPU.
    pub sample_hz: u64,
}

/// perf's and BCC's default: off the common timer frequencies, so samples
/// do not beat in step with periodic work.
pub const DEFAULT_SAMPLE_HZ: u64 = 49;

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            filter: FilterMode::Only,
            process: Default::default(),
            ring_bytes: DEFAULT_RING_BYTES,
            wakeup_bytes: DEFAULT_WAKEUP_BYTES,
            sample_hz: DEFAULT_SAMPLE_HZ,
        }
    }
}

/// The mount-namespace filter map of a session, shared with whatever learns
/// about containers (it adds a container's mntns before acknowledging it).
/// What a listed namespace means is the session's [`FilterMode`].
#[derive(Clone)]
pub struct MntnsFilter {
    map: Arc<Mutex<BpfHashMap<MapData, u64, u8>>>,
}

impl MntnsFilter {
    pub fn add(&self, mntns: u64) -> Result<(), aya::maps::MapError> {
        self.map.lock().expect("filter lock").insert(mntns, 1, 0)
    }

    /// Removes a namespace; removing one that is not there is not an error.
    pub fn remove(&self, mntns: u64) -> Result<(), aya::maps::MapError> {
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
/// A per-CPU map entry as read: its key and each CPU's value.
pub type PerCpuEntry<const K: usize, const V: usize> = ([u8; K], Vec<[u8; V]>);

pub struct Session {
    // Field order matters for drop: the ring buffer and maps go before the
    // Ebpf that owns the programs (dropping it detaches them).
    ring: AsyncFd<RingBuf<MapData>>,
    stats: PerCpuArray<MapData, u64>,
    filter: MntnsFilter,
    variant: &'static str,
    _loaded: Loaded,
    _bpf: Ebpf,
}

/// eBPF programs attached and maps created by the sessions of this
/// process, for its metrics.
static PROGRAMS_LOADED: AtomicU64 = AtomicU64::new(0);
static MAPS_LOADED: AtomicU64 = AtomicU64::new(0);

/// One session's share of the counts, given back when it ends.
struct Loaded {
    programs: u64,
    maps: u64,
}

impl Loaded {
    fn count(programs: usize, maps: usize) -> Self {
        let (programs, maps) = (programs as u64, maps as u64);
        PROGRAMS_LOADED.fetch_add(programs, Ordering::Relaxed);
        MAPS_LOADED.fetch_add(maps, Ordering::Relaxed);
        Self { programs, maps }
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        PROGRAMS_LOADED.fetch_sub(self.programs, Ordering::Relaxed);
        MAPS_LOADED.fetch_sub(self.maps, Ordering::Relaxed);
    }
}

/// eBPF programs and maps the gadgets of this process hold now.
pub fn loaded_now() -> (u64, u64) {
    (PROGRAMS_LOADED.load(Ordering::Relaxed), MAPS_LOADED.load(Ordering::Relaxed))
}

/// Before Linux 5.11, BPF maps are charged to RLIMIT_MEMLOCK (64 KiB by
/// default there): a 4 MiB ring buffer would be refused. Later kernels
/// charge the memory cgroup instead and ignore the limit, so raising it is
/// harmless there. Done once; a refusal is left to the map creation to report.
pub fn raise_memlock_limit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
        // SAFETY: a valid rlimit for RLIMIT_MEMLOCK.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
            tracing::debug!("raising RLIMIT_MEMLOCK: {}", std::io::Error::last_os_error());
        }
    });
}

impl Session {
    pub fn load(program: &dyn GadgetProgram, opts: &SessionOptions) -> Result<Self, SessionError> {
        let started = std::time::Instant::now();
        raise_memlock_limit();
        let (object, globals) = (program.object(), program.globals());
        let mut bpf = crate::object_btf::with_object_btf(object, || load_object(object, &globals, opts))
            .map_err(|e| SessionError::Load(Box::new(e)))?;
        tracing::debug!(took = ?started.elapsed(), "object parsed and relocated");

        let variants = wanted_variants(program.variants(), std::env::var(VARIANT_ENV).ok().as_deref());
        let (variant, programs) = attach_first_variant(&mut bpf, &variants, &KernelHooks::probe(), opts)?;
        let loaded = Loaded::count(programs, bpf.maps().count());
        tracing::debug!(variant = variant.name, took = ?started.elapsed(), "programs loaded and attached");
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
        Ok(Self {
            ring,
            stats,
            filter: MntnsFilter { map: Arc::new(Mutex::new(filter)) },
            variant: variant.name,
            _loaded: loaded,
            _bpf: bpf,
        })
    }

    /// The variant the running kernel got (see [`Variant`]).
    pub fn variant(&self) -> &'static str {
        self.variant
    }

    /// A loaded program's own descriptor, for a gadget that attaches it
    /// itself (uprobes, per library file: uprobe.rs). The attachments hold
    /// it, so they outlive neither their links nor this session's maps.
    pub fn program_fd(&self, name: &'static str) -> Result<ProgramFd, SessionError> {
        let prog = self._bpf.program(name).ok_or(SessionError::MissingProgram(name))?;
        let fd =
            prog.fd().map_err(|source| SessionError::Program { program: name, source: Box::new(source) })?;
        fd.try_clone().map_err(|e| SessionError::Program {
            program: name,
            source: Box::new(aya::programs::ProgramError::IOError(e)),
        })
    }

    /// A handle of its own on hash map `name`, for what updates the map
    /// from outside the session (a collection callback): it holds a
    /// duplicate of the map's fd.
    pub fn hash_map<K: aya::Pod, V: aya::Pod>(
        &self,
        name: &'static str,
    ) -> Result<BpfHashMap<MapData, K, V>, SessionError> {
        use std::os::fd::AsFd;
        let map_err = |source: aya::maps::MapError| SessionError::Map { name, source: Box::new(source) };
        let fd = match self._bpf.map(name).ok_or(SessionError::MissingMap(name))? {
            aya::maps::Map::HashMap(m) | aya::maps::Map::LruHashMap(m) => m.fd().as_fd().try_clone_to_owned(),
            _ => return Err(map_err(aya::maps::MapError::InvalidName { name: name.into() })),
        };
        let fd = fd.map_err(|e| {
            map_err(aya::maps::MapError::SyscallError(aya::sys::SyscallError { call: "dup", io_error: e }))
        })?;
        let data = MapData::from_fd(fd).map_err(map_err)?;
        BpfHashMap::try_from(aya::maps::Map::HashMap(data)).map_err(map_err)
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

    /// Every entry of the per-CPU hash map `name`, its values summed over
    /// the CPUs (the in-kernel counters).
    pub fn per_cpu_sums<const K: usize>(
        &mut self,
        name: &'static str,
    ) -> Result<Vec<([u8; K], u64)>, SessionError> {
        let map = self._bpf.map_mut(name).ok_or(SessionError::MissingMap(name))?;
        let hash: aya::maps::PerCpuHashMap<&mut MapData, [u8; K], u64> =
            aya::maps::PerCpuHashMap::try_from(map)
                .map_err(|source| SessionError::Map { name, source: Box::new(source) })?;
        Ok(hash.iter().filter_map(Result::ok).map(|(k, values)| (k, values.iter().sum())).collect())
    }

    /// Every entry of the per-CPU hash map `name`, with each CPU's value
    /// (sets the kernel keeps per CPU, merged by the caller).
    pub fn per_cpu_values<const K: usize, const V: usize>(
        &mut self,
        name: &'static str,
    ) -> Result<Vec<PerCpuEntry<K, V>>, SessionError> {
        let map = self._bpf.map_mut(name).ok_or(SessionError::MissingMap(name))?;
        let hash: aya::maps::PerCpuHashMap<&mut MapData, [u8; K], [u8; V]> =
            aya::maps::PerCpuHashMap::try_from(map)
                .map_err(|source| SessionError::Map { name, source: Box::new(source) })?;
        Ok(hash
            .iter()
            .filter_map(Result::ok)
            .map(|(k, values)| (k, values.iter().copied().collect()))
            .collect())
    }

    /// The keys of the per-CPU hash map `name` (V: the size of its
    /// values, which aya checks).
    pub fn per_cpu_keys<const K: usize, const V: usize>(
        &mut self,
        name: &'static str,
    ) -> Result<Vec<[u8; K]>, SessionError> {
        let map = self._bpf.map_mut(name).ok_or(SessionError::MissingMap(name))?;
        let hash: aya::maps::PerCpuHashMap<&mut MapData, [u8; K], [u8; V]> =
            aya::maps::PerCpuHashMap::try_from(map)
                .map_err(|source| SessionError::Map { name, source: Box::new(source) })?;
        Ok(hash.keys().filter_map(Result::ok).collect())
    }

    /// One entry of the per-CPU hash map `name`: each CPU's value; None
    /// when it has no such key.
    pub fn per_cpu_value<const K: usize, const V: usize>(
        &mut self,
        name: &'static str,
        key: &[u8; K],
    ) -> Result<Option<Vec<[u8; V]>>, SessionError> {
        let map = self._bpf.map_mut(name).ok_or(SessionError::MissingMap(name))?;
        let hash: aya::maps::PerCpuHashMap<&mut MapData, [u8; K], [u8; V]> =
            aya::maps::PerCpuHashMap::try_from(map)
                .map_err(|source| SessionError::Map { name, source: Box::new(source) })?;
        Ok(hash.get(key, 0).ok().map(|values| values.iter().copied().collect()))
    }

    /// Every entry of the hash map `name`, left in place (a value the
    /// kernel changes meanwhile is read as it is then).
    pub fn entries<const K: usize, const V: usize>(
        &mut self,
        name: &'static str,
    ) -> Result<Vec<MapEntry<K, V>>, SessionError> {
        let map = self._bpf.map_mut(name).ok_or(SessionError::MissingMap(name))?;
        let hash: BpfHashMap<&mut MapData, [u8; K], [u8; V]> = BpfHashMap::try_from(map)
            .map_err(|source| SessionError::Map { name, source: Box::new(source) })?;
        Ok(hash.iter().filter_map(Result::ok).collect())
    }

    /// Sets these indexes of the array map `name` (a table the kernel side
    /// reads, filled once loaded).
    pub fn set_array<const V: usize>(
        &mut self,
        name: &'static str,
        values: &[(u32, [u8; V])],
    ) -> Result<(), SessionError> {
        let map = self._bpf.map_mut(name).ok_or(SessionError::MissingMap(name))?;
        let mut array: aya::maps::Array<&mut MapData, [u8; V]> = aya::maps::Array::try_from(map)
            .map_err(|source| SessionError::Map { name, source: Box::new(source) })?;
        for (index, value) in values {
            array
                .set(*index, *value, 0)
                .map_err(|source| SessionError::Map { name, source: Box::new(source) })?;
        }
        Ok(())
    }

    /// Removes these keys from the per-CPU hash map `name`, whose values
    /// are V bytes (those already gone are fine).
    pub fn remove_keys<const K: usize, const V: usize>(
        &mut self,
        name: &'static str,
        keys: &[[u8; K]],
    ) -> Result<(), SessionError> {
        let map = self._bpf.map_mut(name).ok_or(SessionError::MissingMap(name))?;
        let mut hash: aya::maps::PerCpuHashMap<&mut MapData, [u8; K], [u8; V]> =
            aya::maps::PerCpuHashMap::try_from(map)
                .map_err(|source| SessionError::Map { name, source: Box::new(source) })?;
        for key in keys {
            let _ = hash.remove(key);
        }
        Ok(())
    }

    /// The frames (instruction pointers, innermost first) of these stack
    /// ids in the stack-trace map `name`; an id it does not have is left out.
    pub fn stack_frames(
        &self,
        name: &'static str,
        ids: impl IntoIterator<Item = u32>,
    ) -> Result<std::collections::HashMap<u32, Vec<u64>>, SessionError> {
        let map = self._bpf.map(name).ok_or(SessionError::MissingMap(name))?;
        let stacks = aya::maps::StackTraceMap::try_from(map)
            .map_err(|source| SessionError::Map { name, source: Box::new(source) })?;
        Ok(ids
            .into_iter()
            .filter_map(|id| {
                let trace = stacks.get(&id, 0).ok()?;
                Some((id, trace.frames().iter().map(|f| f.ip).collect()))
            })
            .collect())
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
    let filter_flag = u8::from(opts.filter != FilterMode::Off);
    let excludes_flag = u8::from(opts.filter == FilterMode::Except);
    let process = opts.process.globals();
    let mut loader = EbpfLoader::new();
    process.apply(&mut loader);
    loader
        // Task-local storage has no userspace API in aya 0.14, and needs none.
        .allow_unsupported_maps()
        .override_global(FILTER_BY_MNTNS, &filter_flag, true)
        .override_global(MNTNS_FILTER_EXCLUDES, &excludes_flag, true)
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
            Global::U8(v) => {
                loader.override_global(name, v, true);
            }
            Global::U16(v) => {
                loader.override_global(name, v, true);
            }
            Global::Bytes16(v) => {
                loader.override_global(name, v, true);
            }
        }
    }
    loader.load(object)
}

/// `IG_GADGET_VARIANT=fexit` (say): a gadget that has a variant of that
/// name runs only as that, to compare variants (`bench open`) or to avoid
/// one; other gadgets run as usual.
pub const VARIANT_ENV: &str = "IG_GADGET_VARIANT";

fn wanted_variants(all: &'static [Variant], wanted: Option<&str>) -> Vec<&'static Variant> {
    match wanted {
        Some(name) if all.iter().any(|v| v.name == name) => all.iter().filter(|v| v.name == name).collect(),
        _ => all.iter().collect(),
    }
}

/// Loads and attaches the programs of the first variant the kernel takes.
/// A variant that fails half-way has what it loaded unloaded again, so only
/// the chosen one runs.
fn attach_first_variant(
    bpf: &mut Ebpf,
    variants: &[&'static Variant],
    kernel: &KernelHooks,
    opts: &SessionOptions,
) -> Result<(&'static Variant, usize), SessionError> {
    let mut reasons = Vec::new();
    for &v in variants {
        if let Some(missing) = v.missing(kernel) {
            tracing::debug!(variant = v.name, "skipped: {missing}");
            reasons.push((v.name, missing));
            continue;
        }
        let mut loaded = Vec::new();
        let attached = v.attachments.iter().try_for_each(|a| {
            if a.optional && kernel.missing(a).is_some() {
                tracing::debug!("{} not on this kernel, skipped", a.hook);
                return Ok(());
            }
            // One program may serve several hooks (the same code on two
            // tracepoints): loaded and counted once.
            if !loaded.contains(&a.program) {
                loaded.push(a.program);
            }
            attach_one(bpf, a, opts)
        });
        match attached {
            Ok(()) => return Ok((v, loaded.len())),
            // A gadget with a single way of running reports its own error.
            Err(e) if variants.len() == 1 => return Err(e),
            Err(e) => {
                tracing::debug!(variant = v.name, "failed: {}", shared::error_chain(&e));
                for name in loaded {
                    unload(bpf, name);
                }
                reasons.push((v.name, short_reason(&e)));
            }
        }
    }
    Err(SessionError::Unsupported(reasons))
}

fn program_error(program: &'static str, source: aya::programs::ProgramError) -> SessionError {
    match source {
        aya::programs::ProgramError::LoadError { verifier_log, .. } => {
            let log = verifier_log.to_string();
            // The whole log only with -v: it runs to thousands of lines.
            tracing::debug!(program, "verifier log:\n{log}");
            SessionError::Verifier { program, verdict: verifier_verdict(&log).to_string() }
        }
        source => SessionError::Program { program, source: Box::new(source) },
    }
}

fn attach_one(bpf: &mut Ebpf, a: &Attachment, opts: &SessionOptions) -> Result<(), SessionError> {
    let prog = bpf.program_mut(a.program).ok_or(SessionError::MissingProgram(a.program))?;
    let wrong_type = |source| SessionError::Program { program: a.program, source: Box::new(source) };
    let attach_error =
        |source| SessionError::Attach { program: a.program, hook: a.hook, source: Box::new(source) };
    match a.hook {
        Hook::Tracepoint { category, name } => {
            let p: &mut TracePoint = prog.try_into().map_err(wrong_type)?;
            if p.fd().is_err() {
                p.load().map_err(|e| program_error(a.program, e))?;
            }
            p.attach(category, name).map(drop).map_err(attach_error)
        }
        Hook::Raw { name } => {
            let p: &mut RawTracePoint = prog.try_into().map_err(wrong_type)?;
            if p.fd().is_err() {
                p.load().map_err(|e| program_error(a.program, e))?;
            }
            p.attach(name).map(drop).map_err(attach_error)
        }
        Hook::Kprobe { function } | Hook::Kretprobe { function } => {
            let p: &mut KProbe = prog.try_into().map_err(wrong_type)?;
            if p.fd().is_err() {
                p.load().map_err(|e| program_error(a.program, e))?;
            }
            p.attach(function, 0).map(drop).map_err(attach_error)
        }
        Hook::Fentry { function } => {
            let btf = crate::object_btf::function_btf(function)
                .map_err(|source| SessionError::Target { program: a.program, source })?;
            let p: &mut FEntry = prog.try_into().map_err(wrong_type)?;
            p.load(function, &btf).map_err(|e| program_error(a.program, e))?;
            p.attach().map(drop).map_err(attach_error)
        }
        Hook::Fexit { function } => {
            let btf = crate::object_btf::function_btf(function)
                .map_err(|source| SessionError::Target { program: a.program, source })?;
            let p: &mut FExit = prog.try_into().map_err(wrong_type)?;
            p.load(function, &btf).map_err(|e| program_error(a.program, e))?;
            p.attach().map(drop).map_err(attach_error)
        }
        Hook::CpuClock => {
            use aya::programs::perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent};
            let p: &mut PerfEvent = prog.try_into().map_err(wrong_type)?;
            p.load().map_err(|e| program_error(a.program, e))?;
            let cpus = aya::util::online_cpus().map_err(|(_, e)| SessionError::Cpus(e))?;
            for cpu in cpus {
                p.attach(
                    PerfEventConfig::Software(SoftwareEvent::CpuClock),
                    PerfEventScope::AllProcessesOneCpu { cpu },
                    SamplePolicy::Frequency(opts.sample_hz),
                    false,
                )
                .map_err(attach_error)?;
            }
            Ok(())
        }
        // Attached per library file by the gadget (see Session::program_fd).
        Hook::Uprobe { .. } | Hook::Uretprobe => {
            let p: &mut UProbe = prog.try_into().map_err(wrong_type)?;
            p.load().map_err(|e| program_error(a.program, e))
        }
    }
}

/// Detaches and unloads a program of a variant that was given up.
fn unload(bpf: &mut Ebpf, name: &str) {
    let result = match bpf.program_mut(name) {
        Some(aya::programs::Program::TracePoint(p)) => p.unload(),
        Some(aya::programs::Program::RawTracePoint(p)) => p.unload(),
        Some(aya::programs::Program::KProbe(p)) => p.unload(),
        Some(aya::programs::Program::FExit(p)) => p.unload(),
        Some(aya::programs::Program::FEntry(p)) => p.unload(),
        Some(aya::programs::Program::PerfEvent(p)) => p.unload(),
        Some(aya::programs::Program::UProbe(p)) => p.unload(),
        _ => Ok(()),
    };
    if let Err(e) = result {
        tracing::debug!(program = name, "unloading: {e}");
    }
}

/// The verifier's verdict: its last line before the statistics
/// ("verification time ...", "processed N insns"), not its first (often a
/// notice such as "reg type unsupported for arg#0").
pub fn verifier_verdict(log: &str) -> &str {
    let stats = |l: &str| l.starts_with("verification time") || l.starts_with("processed ");
    log.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take_while(|l| !stats(l))
        .last()
        .unwrap_or("(no verifier log)")
}

/// One line for a variant that failed.
fn short_reason(e: &SessionError) -> String {
    match e {
        SessionError::Attach { hook, source, .. } => format!("attaching {hook}: {source}"),
        SessionError::Target { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

fn unsupported(reasons: &[(&'static str, String)]) -> String {
    let each: Vec<String> = reasons.iter().map(|(v, why)| format!("{v}: {why}")).collect();
    format!("this kernel cannot run it ({})", each.join("; "))
}

fn take_map(bpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, SessionError> {
    bpf.take_map(name).ok_or(SessionError::MissingMap(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_is_the_last_line_before_the_statistics() {
        let log = "reg type unsupported for arg#0 function ig_sched_exec#33\n0: R1=ctx() R10=fp0\n\
            ; int ig_sched_exec(struct trace_event_raw_sched_process_exec *ctx)\n\
            13: (85) call unknown#195896080\ninvalid func unknown#195896080\n\
            processed 13 insns (limit 1000000) max_states_per_insn 0 total_states 0\n";
        assert_eq!(verifier_verdict(log), "invalid func unknown#195896080");
        assert_eq!(verifier_verdict("a\nverification time 5 usec\nstack depth 0"), "a");
        assert_eq!(verifier_verdict(""), "(no verifier log)");
    }

    #[test]
    fn a_variant_names_the_hook_the_kernel_lacks() {
        const TP: &[Attachment] = &[Attachment::tracepoint("p", "nosuchcategory", "nosuch").since("9.9")];
        const KP: &[Attachment] = &[Attachment::kprobe("p", "cap_capable")];
        let none = KernelHooks {
            events: None,
            kprobes: false,
            uprobes: false,
            no_function_tracing: Some("no tracefs".into()),
        };
        assert_eq!(
            Variant::new("tracepoint", TP).missing(&none).as_deref(),
            Some("no nosuchcategory/nosuch tracepoint (Linux 9.9+)")
        );
        assert!(Variant::new("kprobe", KP).missing(&none).unwrap().contains("no kprobes"));
        let with_kprobes =
            KernelHooks { events: None, kprobes: true, uprobes: true, no_function_tracing: None };
        assert_eq!(Variant::new("kprobe", KP).missing(&with_kprobes), None);
    }
}
