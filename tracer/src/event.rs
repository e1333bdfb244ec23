//! What every gadget event carries besides its own fields: the container it
//! came from (filled by enrichment), the time, the type and the mount
//! namespace; plus the value type columns and filters read.

use std::borrow::Cow;
use std::sync::Arc;

use serde::ser::{Serialize, SerializeStruct, Serializer};
use shared::{ContainerRecord, K8sMetadata, RuntimeMetadata};

/// The envelope fields of a normal event (`runtime`, `k8s`, `timestamp`,
/// `type`, `mountnsid` in JSON, in that order).
#[derive(Clone, Debug, Default)]
pub struct EventCommon {
    /// The container of the event; None for a host process.
    pub container: Option<Arc<ContainerRecord>>,
    /// Wall-clock nanoseconds since the epoch.
    pub timestamp: u64,
    pub mntns: u64,
    /// The user and group names of the event's process, where the `user` or
    /// `group` column asks for them (names.rs); not in JSON.
    pub names: Option<ProcessNames>,
}

/// The user and group names of a process.
pub type ProcessNames = (Arc<str>, Arc<str>);

static EMPTY_RUNTIME: RuntimeMetadata = RuntimeMetadata {
    runtime_name: String::new(),
    container_id: String::new(),
    container_name: String::new(),
    container_image_name: String::new(),
};

impl EventCommon {
    pub fn runtime(&self) -> &RuntimeMetadata {
        self.container.as_ref().map_or(&EMPTY_RUNTIME, |c| &c.runtime)
    }

    pub fn k8s(&self) -> Cow<'_, K8sMetadata> {
        match &self.container {
            Some(c) => Cow::Borrowed(&c.k8s),
            None => Cow::Owned(K8sMetadata::default()),
        }
    }
}

impl Serialize for EventCommon {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("EventCommon", 5)?;
        s.serialize_field("runtime", self.runtime())?;
        s.serialize_field("k8s", &self.k8s())?;
        s.serialize_field("timestamp", &self.timestamp)?;
        s.serialize_field("type", "normal")?;
        s.serialize_field("mountnsid", &self.mntns)?;
        s.end()
    }
}

/// Gadget events expose their envelope to enrichment and common columns.
pub trait HasCommon {
    fn common(&self) -> &EventCommon;
    fn common_mut(&mut self) -> &mut EventCommon;
    /// Whether [`HasCommon::ids`] gives anything (the user and group columns exist then).
    const HAS_IDS: bool = false;
    /// The uid and gid of the event's process, where it has them.
    fn ids(&self) -> Option<(u32, u32)> {
        None
    }
}

/// Implements [`HasCommon`] for event structs whose envelope is `common`;
/// `with_process:` first for those with a `process`
/// ([`crate::event_process::Process`]): it gives their uid and gid, and
/// [`crate::event_process::HasProcess`] is implemented too.
#[macro_export]
macro_rules! impl_has_common {
    (with_process: $($t:ty),+ $(,)?) => {$(
        impl $crate::event::HasCommon for $t {
            fn common(&self) -> &$crate::event::EventCommon {
                &self.common
            }

            fn common_mut(&mut self) -> &mut $crate::event::EventCommon {
                &mut self.common
            }

            const HAS_IDS: bool = true;

            fn ids(&self) -> Option<(u32, u32)> {
                Some((self.process.uid, self.process.gid))
            }
        }

        impl $crate::event_process::HasProcess for $t {
            fn process(&self) -> &$crate::event_process::Process {
                &self.process
            }
        }
    )+};
    ($($t:ty),+ $(,)?) => {$(
        impl $crate::event::HasCommon for $t {
            fn common(&self) -> &$crate::event::EventCommon {
                &self.common
            }

            fn common_mut(&mut self) -> &mut $crate::event::EventCommon {
                &mut self.common
            }
        }
    )+};
}

/// A column or filter value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Bool(bool),
    List(&'a [String]),
}

impl Value<'_> {
    /// The text shown in columns and matched by string filters.
    pub fn to_text(&self) -> Cow<'_, str> {
        match self {
            Value::Str(s) => Cow::Borrowed(s.as_ref()),
            Value::Int(i) => Cow::Owned(i.to_string()),
            Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Value::List(items) => Cow::Owned(items.join(" ")),
        }
    }
}

impl From<u32> for Value<'_> {
    fn from(v: u32) -> Self {
        Value::Int(v.into())
    }
}

impl From<i32> for Value<'_> {
    fn from(v: i32) -> Self {
        Value::Int(v.into())
    }
}

impl From<u64> for Value<'_> {
    fn from(v: u64) -> Self {
        Value::Int(v as i64)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Str(Cow::Borrowed(v))
    }
}

/// Converts boot-time nanoseconds (what BPF reads cheaply) to wall-clock.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    boot_to_realtime_ns: i128,
}

impl Clock {
    pub fn now() -> Self {
        let real = clock_ns(libc::CLOCK_REALTIME);
        let boot = clock_ns(libc::CLOCK_BOOTTIME);
        Self { boot_to_realtime_ns: real - boot }
    }

    pub fn to_realtime(&self, boot_ns: u64) -> u64 {
        (boot_ns as i128 + self.boot_to_realtime_ns).max(0) as u64
    }

    /// The inverse of [`Clock::to_realtime`].
    pub fn to_boottime(&self, realtime_ns: u64) -> u64 {
        (realtime_ns as i128 - self.boot_to_realtime_ns).max(0) as u64
    }
}

/// CLOCK_BOOTTIME now, in nanoseconds: the clock of events' stamps.
pub fn boottime_ns() -> u64 {
    clock_ns(libc::CLOCK_BOOTTIME).max(0) as u64
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-pointer; both clocks exist on every Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

/// The part every decoded event starts with, from the `timestamp_ns` and
/// `mntns_id` fields of its C struct `$E` (the container is filled in later).
#[macro_export]
macro_rules! event_common {
    // An event embedding `struct ig_process process`: its mount namespace.
    ($raw:expr, $clock:expr, $E:ty, process) => {
        $crate::event::EventCommon {
            container: None,
            timestamp: $clock.to_realtime($raw.u64(::std::mem::offset_of!($E, timestamp_ns))),
            mntns: $crate::event_process::Process::mntns(&$raw, ::std::mem::offset_of!($E, process)),
            names: None,
        }
    };
    ($raw:expr, $clock:expr, $E:ty) => {
        $crate::event::EventCommon {
            container: None,
            timestamp: $clock.to_realtime($raw.u64(::std::mem::offset_of!($E, timestamp_ns))),
            mntns: $raw.u64(::std::mem::offset_of!($E, mntns_id)),
            names: None,
        }
    };
}
