//! The columns of the gadgets whose events are a TCP socket's, named by its
//! owner (trace tcpdrop, trace tcpretrans): the same fields, so the same
//! columns.

use super::Column;
use crate::event::Value;
use crate::event_process::{HasProcess, columns as process};
use crate::raw::endpoint;

/// An event with a socket's owner (its process) and its two ends.
pub trait SockEvent: HasProcess {
    fn netns(&self) -> u64;
    fn ipversion(&self) -> u8;
    fn src(&self) -> (&str, u16);
    fn dst(&self) -> (&str, u16);
}

/// Implements [`SockEvent`] for event structs with the usual field names.
#[macro_export]
macro_rules! impl_sock_event {
    ($($t:ty),+) => {$(
        impl $crate::gadgets::sock_event::SockEvent for $t {
            fn netns(&self) -> u64 { self.netnsid }
            fn ipversion(&self) -> u8 { self.ipversion }
            fn src(&self) -> (&str, u16) { (&self.saddr, self.sport) }
            fn dst(&self) -> (&str, u16) { (&self.daddr, self.dport) }
        }
    )+};
}

fn end<E: SockEvent>(e: &E, (addr, port): (&str, u16)) -> Value<'static> {
    Value::Str(endpoint(addr, port, e.ipversion() == 6).into())
}

/// PID COMM IP SRC DST: what comes after the container columns.
pub fn head<E: SockEvent>() -> Vec<Column<E>> {
    vec![
        process::pid(),
        process::comm(),
        Column::new("ip", 2, |e: &E| u32::from(e.ipversion()).into()),
        Column::new("src", 21, |e: &E| end(e, e.src())).max(47),
        Column::new("dst", 21, |e: &E| end(e, e.dst())).max(47),
    ]
}

/// The hidden tid uid gid netns at the end.
pub fn tail<E: SockEvent>() -> Vec<Column<E>> {
    let mut cols = Vec::from(process::hidden_ids());
    cols.push(Column::new("netns", 10, |e: &E| e.netns().into()).hidden());
    cols
}
