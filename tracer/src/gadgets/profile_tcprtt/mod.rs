//! `ig profile tcprtt`: the distribution of TCP round-trip times. Kernel
//! side: program.bpf.c (raw tracepoint tcp_probe, the socket's smoothed
//! RTT, a per-CPU histogram; the owner from bpf/sock_owners.h).

use std::mem::{offset_of, size_of};
use std::net::IpAddr;

use self::bpf::{OBJECT, ig_tcprtt_key as K};

use super::trace_tcpretrans::SOCK_OWNER_ATTACHMENTS;
use crate::cli::CommonFlags;
use crate::profile::{Bucket, HistogramGadget, Whose};
use crate::raw::{Raw, ip_string};
use crate::session::{Attachment, GadgetProgram, Global, Session, SessionError, Variant};

crate::bpf_object!(profile_tcprtt);

/// Show the distribution of TCP round-trip times (the kernel's smoothed
/// RTT of each connection, over the segments it receives), when stopped.
///
/// The connections are their owners' (the task that connected, listened or
/// accepted); a connection opened before the gadget started counts for the
/// container owning its network namespace.
#[derive(Clone, Debug, clap::Args)]
pub struct ProfileTcprtt {
    #[command(flatten)]
    pub common: CommonFlags,

    /// Buckets in milliseconds instead of microseconds.
    #[arg(short = 'm', long)]
    pub milliseconds: bool,

    /// One histogram per local address.
    #[arg(short = 'b', long = "byladdr", conflicts_with = "by_raddr")]
    pub by_laddr: bool,

    /// One histogram per remote address.
    #[arg(short = 'B', long = "byraddr")]
    pub by_raddr: bool,

    /// Only connections with this local address.
    #[arg(long)]
    pub laddr: Option<IpAddr>,

    /// Only connections with this remote address.
    #[arg(long)]
    pub raddr: Option<IpAddr>,

    /// Only connections with this local port.
    #[arg(long)]
    pub lport: Option<u16>,

    /// Only connections with this remote port.
    #[arg(long)]
    pub rport: Option<u16>,
}

const ATTACHMENTS: &[Attachment] = &[
    Attachment::raw("ig_tcp_probe", "tcp_probe"),
    SOCK_OWNER_ATTACHMENTS[0],
    SOCK_OWNER_ATTACHMENTS[1],
    SOCK_OWNER_ATTACHMENTS[2],
];

const VARIANTS: &[Variant] = &[Variant::new("raw tracepoint", ATTACHMENTS)];

/// An address as the program compares it: family and 16 bytes.
fn kernel_addr(addr: Option<IpAddr>) -> (u16, [u8; 16]) {
    let mut bytes = [0u8; 16];
    match addr {
        None => (0, bytes),
        Some(IpAddr::V4(a)) => {
            bytes[..4].copy_from_slice(&a.octets());
            (libc::AF_INET as u16, bytes)
        }
        Some(IpAddr::V6(a)) => (libc::AF_INET6 as u16, a.octets()),
    }
}

impl GadgetProgram for ProfileTcprtt {
    fn object(&self) -> &'static [u8] {
        &OBJECT
    }

    fn variants(&self) -> &'static [Variant] {
        VARIANTS
    }

    fn globals(&self) -> Vec<(&'static str, Global)> {
        let (lfamily, laddr) = kernel_addr(self.laddr);
        let (rfamily, raddr) = kernel_addr(self.raddr);
        let by = if self.by_laddr {
            1
        } else if self.by_raddr {
            2
        } else {
            0
        };
        vec![
            ("gadget_ms", Global::Bool(self.milliseconds)),
            ("gadget_by_addr", Global::U8(by)),
            ("gadget_lport", Global::U16(self.lport.unwrap_or(0))),
            ("gadget_rport", Global::U16(self.rport.unwrap_or(0))),
            ("gadget_laddr_family", Global::U16(lfamily)),
            ("gadget_laddr", Global::Bytes16(laddr)),
            ("gadget_raddr_family", Global::U16(rfamily)),
            ("gadget_raddr", Global::Bytes16(raddr)),
        ]
    }
}

impl HistogramGadget for ProfileTcprtt {
    fn common(&self) -> &CommonFlags {
        &self.common
    }

    fn measure(&self) -> (&'static str, &'static str) {
        ("rtt", if self.milliseconds { "ms" } else { "us" })
    }

    fn collect(&self, session: &mut Session) -> Result<Vec<Bucket>, SessionError> {
        let sums = session.per_cpu_sums::<{ size_of::<K>() }>("rtt_hist")?;
        Ok(sums
            .into_iter()
            .map(|(key, count)| {
                let k = Raw(&key);
                let family = k.u16(offset_of!(K, family));
                let mntns = k.u64(offset_of!(K, mntns_id));
                Bucket {
                    whose: match mntns {
                        0 => Whose::Netns(k.u64(offset_of!(K, netns_id))),
                        _ => Whose::Selected,
                    },
                    group: match family {
                        0 => String::new(),
                        f => ip_string(k.bytes(offset_of!(K, addr), 16), f == libc::AF_INET6 as u16),
                    },
                    index: k.u32(offset_of!(K, bucket)),
                    count,
                }
            })
            .collect())
    }
}
