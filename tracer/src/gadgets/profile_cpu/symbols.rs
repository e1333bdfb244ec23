//! Names for sampled addresses: kernel ones from /proc/kallsyms, user ones
//! from the ELF symbols (and DWARF, where present) of the binaries each
//! process has mapped, opened through /proc/PID/map_files so that a
//! container's own files are read, not the host's files of the same path.
//! A process must still be running when the gadget stops; the frames of one
//! that has exited, and addresses no symbol covers, read `[unknown]`.

use std::collections::HashMap;

use blazesym::symbolize::source::{Kernel, Process, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};
use blazesym::{MaybeDefault, Pid};

/// What a frame no symbol covers is called (as perf and BCC call it).
pub const UNKNOWN: &str = "[unknown]";

pub struct Symbols {
    symbolizer: Symbolizer,
    kernel: HashMap<u64, String>,
}

impl Default for Symbols {
    fn default() -> Self {
        Self { symbolizer: Symbolizer::new(), kernel: HashMap::new() }
    }
}

/// The addresses to name for a stack's frames, innermost first: every
/// frame but the innermost is a return address, which points after its
/// call and, when the call is a function's last instruction (to one that
/// never returns), already into the next function: the call's own byte is
/// named instead, as perf does.
pub fn call_sites(frames: &[u64]) -> Vec<u64> {
    frames.iter().enumerate().map(|(i, &ip)| if i == 0 { ip } else { ip.saturating_sub(1) }).collect()
}

impl Symbols {
    /// Kernel frames' names, in the order given.
    pub fn kernel(&mut self, addrs: &[u64]) -> Vec<String> {
        let missing: Vec<u64> = addrs.iter().copied().filter(|a| !self.kernel.contains_key(a)).collect();
        if !missing.is_empty() {
            // kallsyms only: it is always there and already carries the
            // KASLR offset; a vmlinux found on disk may not match the
            // running kernel.
            let src = Source::Kernel(Kernel {
                kallsyms: MaybeDefault::Default,
                vmlinux: MaybeDefault::None,
                debug_syms: false,
                ..Kernel::default()
            });
            let names = self.names(&src, &missing);
            self.kernel.extend(missing.into_iter().zip(names));
        }
        addrs.iter().map(|a| self.kernel.get(a).cloned().unwrap_or_else(|| UNKNOWN.into())).collect()
    }

    /// User frames' names in process `pid`, in the order given.
    pub fn user(&mut self, pid: u32, addrs: &[u64]) -> Vec<String> {
        let src = Source::Process(Process::new(Pid::from(pid)));
        self.names(&src, addrs)
    }

    fn names(&self, src: &Source<'_>, addrs: &[u64]) -> Vec<String> {
        match self.symbolizer.symbolize(src, Input::AbsAddr(addrs)) {
            Ok(syms) => syms
                .iter()
                .map(|s| match s {
                    Symbolized::Sym(sym) => sym.name.to_string(),
                    Symbolized::Unknown(_) => UNKNOWN.into(),
                })
                .collect(),
            Err(e) => {
                // E.g. the process has exited: its maps are gone.
                tracing::debug!("symbolizing {} addresses: {e}", addrs.len());
                vec![UNKNOWN.into(); addrs.len()]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn return_addresses_are_named_by_their_call() {
        assert_eq!(super::call_sites(&[0x1000, 0x2005, 0x3000]), [0x1000, 0x2004, 0x2fff]);
        assert!(super::call_sites(&[]).is_empty());
    }
}
