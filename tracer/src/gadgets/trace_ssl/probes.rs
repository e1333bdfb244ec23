//! trace ssl's uprobes: placed on each TLS library of each selected root,
//! one set per library file however many containers share it, and taken
//! off when the last of them is gone (a probe pins its file: a removed
//! container's layers would stay on disk).

use std::collections::{HashMap, HashSet};
use std::os::fd::AsFd;
use std::path::PathBuf;

use aya::programs::ProgramFd;

use super::libraries::{self, Kind, Library};
use crate::gadgets::PerContainer;
use crate::session::{Session, SessionError};
use crate::uprobe::{self, UprobeLink};

/// Each library's functions that carry plaintext, with their entry program.
pub(super) fn functions(kind: Kind) -> &'static [(&'static str, &'static str)] {
    match kind {
        Kind::OpenSsl => &[
            ("SSL_read", "ig_ssl_read_enter"),
            ("SSL_write", "ig_ssl_write_enter"),
            ("SSL_read_ex", "ig_ssl_read_ex_enter"),
            ("SSL_write_ex", "ig_ssl_write_ex_enter"),
        ],
        Kind::GnuTls => {
            &[("gnutls_record_recv", "ig_gnutls_recv_enter"), ("gnutls_record_send", "ig_gnutls_send_enter")]
        }
    }
}

/// Every entry program, and the one return program all of them share.
pub const ENTRY_PROGRAMS: &[&str] = &[
    "ig_ssl_read_enter",
    "ig_ssl_write_enter",
    "ig_ssl_read_ex_enter",
    "ig_ssl_write_ex_enter",
    "ig_gnutls_recv_enter",
    "ig_gnutls_send_enter",
];
pub const RETURN_PROGRAM: &str = "ig_ssl_return";

struct Placed {
    _links: Vec<UprobeLink>,
    /// The containers (and "" for the host) whose root has this file.
    users: HashSet<String>,
}

pub struct Probes {
    entry: HashMap<&'static str, ProgramFd>,
    ret: ProgramFd,
    placed: HashMap<(u64, u64), Placed>,
    finder: libraries::Finder,
    /// Where the host's files are (HOST_ROOT): overlay layers are named there.
    host_root: PathBuf,
}

impl Probes {
    pub fn new(session: &Session) -> Result<Self, SessionError> {
        let mut entry = HashMap::new();
        for &name in ENTRY_PROGRAMS {
            entry.insert(name, session.program_fd(name)?);
        }
        Ok(Self {
            entry,
            ret: session.program_fd(RETURN_PROGRAM)?,
            placed: HashMap::new(),
            finder: libraries::Finder::default(),
            host_root: shared::hookproto::host_root(),
        })
    }

    /// Entry and return probes on every function of `lib` it has.
    fn place(&self, lib: &Library) -> Result<Vec<UprobeLink>, uprobe::UprobeError> {
        let wanted = functions(lib.kind);
        let names: Vec<&'static str> = wanted.iter().map(|(f, _)| *f).collect();
        let offsets = uprobe::function_offsets(&lib.path, &names)?;
        let attach_at = |at: &std::path::Path| {
            let mut links = Vec::new();
            for (function, program) in wanted {
                let Some(&offset) = offsets.get(function) else { continue };
                links.push(uprobe::attach(self.entry[program].as_fd(), at, offset, false)?);
                links.push(uprobe::attach(self.ret.as_fd(), at, offset, true)?);
            }
            Ok(links)
        };
        let at = lib.attach_path();
        match attach_at(&at) {
            // A layer's file through /proc/self/fd refused: through the
            // container's own path then (the same file to the kernel).
            Err(e) if at != lib.path => {
                tracing::debug!(
                    "trace ssl: {}: {e}; attaching through the container's root",
                    lib.path.display()
                );
                attach_at(&lib.path)
            }
            placed => placed,
        }
    }
}

impl PerContainer for Probes {
    fn added(&mut self, container: Option<&shared::ContainerRecord>, root: &dyn Fn() -> PathBuf) {
        let root = root();
        let root = root.as_path();
        let (key, name) = match container {
            Some(r) => (r.runtime.container_id.as_str(), r.runtime.container_name.as_str()),
            None => ("", "the host"),
        };
        let libs = self.finder.find(root, container.map(|r| (self.host_root.as_path(), r.pid)));
        if libs.is_empty() {
            tracing::warn!(
                "trace ssl: {name} has no libssl or libgnutls where the loader looks ({}): TLS linked into a program (Go, rustls, BoringSSL) is not seen",
                root.display()
            );
        }
        for lib in libs {
            if let Some(p) = self.placed.get_mut(&lib.id) {
                p.users.insert(key.to_string());
                continue;
            }
            match self.place(&lib) {
                Ok(links) if links.is_empty() => {
                    tracing::warn!(
                        "trace ssl: {} ({name}) exports none of its read and write functions",
                        lib.path.display()
                    )
                }
                Ok(links) => {
                    tracing::info!(probes = links.len(), "trace ssl: {} ({name})", lib.path.display());
                    self.placed
                        .insert(lib.id, Placed { _links: links, users: HashSet::from([key.to_string()]) });
                }
                Err(e) => tracing::warn!("trace ssl: {} ({name}): {e}", lib.path.display()),
            }
        }
    }

    fn removed(&mut self, key: &str) {
        self.placed.retain(|_, p| {
            p.users.remove(key);
            !p.users.is_empty()
        });
    }
}
