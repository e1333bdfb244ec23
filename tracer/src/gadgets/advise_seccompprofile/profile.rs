//! Seccomp profiles in the OCI runtime-spec JSON format (what docker,
//! podman, CRI-O and a Kubernetes localhost profile read): every syscall
//! a container made allowed, every other one answered with EPERM.

use serde::Serialize;

/// Words of 64 syscall numbers each in a recorded set (program.h).
pub const WORDS: usize = 8;

/// Syscall numbers, as the kernel records them: bit `nr % 64` of word
/// `nr / 64`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyscallSet([u64; WORDS]);

impl SyscallSet {
    pub fn add_word(&mut self, word: usize, bits: u64) {
        self.0[word] |= bits;
    }

    pub fn insert(&mut self, nr: u32) {
        self.0[nr as usize / 64] |= 1 << (nr % 64);
    }

    pub fn numbers(&self) -> impl Iterator<Item = u32> + '_ {
        (0..WORDS as u32 * 64).filter(|nr| self.0[*nr as usize / 64] & (1 << (nr % 64)) != 0)
    }
}

/// The action for the syscalls a profile does not name: fail with the
/// runtime's default errno, EPERM.
const DEFAULT_ACTION: &str = "SCMP_ACT_ERRNO";
const ALLOW: &str = "SCMP_ACT_ALLOW";
/// The recorded numbers are x86-64 ones: the profile is for that ABI only
/// (a runtime then refuses 32-bit code's calls, which were not recorded).
const ARCHITECTURES: &[&str] = &["SCMP_ARCH_X86_64"];

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompProfile {
    pub default_action: &'static str,
    pub architectures: Vec<&'static str>,
    pub syscalls: Vec<SyscallRule>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SyscallRule {
    pub names: Vec<&'static str>,
    pub action: &'static str,
}

impl SeccompProfile {
    /// The profile allowing the syscalls of `set`, and the numbers in it
    /// that have no name (a seccomp profile names syscalls).
    pub fn allowing(set: &SyscallSet) -> (Self, Vec<u32>) {
        let mut names = Vec::new();
        let mut unnamed = Vec::new();
        for nr in set.numbers() {
            match crate::syscalls::known_name(nr) {
                Some(name) => names.push(name),
                None => unnamed.push(nr),
            }
        }
        names.sort_unstable();
        let syscalls = if names.is_empty() { Vec::new() } else { vec![SyscallRule { names, action: ALLOW }] };
        let profile = SeccompProfile {
            default_action: DEFAULT_ACTION,
            architectures: ARCHITECTURES.to_vec(),
            syscalls,
        };
        (profile, unnamed)
    }

    /// How many syscalls it allows.
    pub fn allowed(&self) -> usize {
        self.syscalls.iter().map(|r| r.names.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_becomes_a_sorted_allow_list_and_unnamed_numbers_are_told() {
        let mut set = SyscallSet::default();
        for nr in [59, 0, 1, 257, 335, 511] {
            set.insert(nr);
        }
        set.add_word(0, 1 << 3);
        let (profile, unnamed) = SeccompProfile::allowing(&set);
        assert_eq!(profile.syscalls.len(), 1);
        assert_eq!(profile.syscalls[0].names, ["close", "execve", "openat", "read", "write"]);
        assert_eq!(profile.allowed(), 5);
        assert_eq!(unnamed, [335, 511]);
        let json = serde_json::to_value(&profile).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(json["architectures"], serde_json::json!(["SCMP_ARCH_X86_64"]));
        assert_eq!(json["syscalls"][0]["action"], "SCMP_ACT_ALLOW");
    }

    #[test]
    fn nothing_recorded_allows_nothing() {
        let (profile, unnamed) = SeccompProfile::allowing(&SyscallSet::default());
        assert!(profile.syscalls.is_empty() && unnamed.is_empty());
        assert_eq!(profile.allowed(), 0);
    }
}
