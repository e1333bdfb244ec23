//! What the running kernel offers the gadgets, in one line for `ig check`:
//! the facts a missing feature is explained by.

use serde::Serialize;

use crate::session::KernelHooks;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelInfo {
    pub release: String,
    /// /sys/kernel/btf/vmlinux exists (CO-RE needs it).
    pub btf: bool,
    /// Modules with their own BTF under /sys/kernel/btf.
    pub module_btf: Vec<String>,
    pub tracefs: bool,
    pub kprobes: bool,
    /// cgroup v2 alone at /sys/fs/cgroup (not v1 or hybrid).
    pub cgroup_v2_unified: bool,
}

impl KernelInfo {
    pub fn probe() -> Self {
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut module_btf: Vec<String> = std::fs::read_dir(crate::kernel::KERNEL_BTF_DIR)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != "vmlinux")
                    .collect()
            })
            .unwrap_or_default();
        module_btf.sort();
        let hooks = KernelHooks::probe();
        Self {
            release,
            btf: std::path::Path::new(crate::kernel::KERNEL_BTF).exists(),
            module_btf,
            tracefs: hooks.has_tracefs(),
            kprobes: hooks.kprobes,
            cgroup_v2_unified: std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
        }
    }

    pub fn summary(&self) -> String {
        let yes = |b: bool| if b { "yes" } else { "no" };
        format!(
            "BTF {}, module BTF {}, tracefs {}, kprobes {}, cgroup {}",
            yes(self.btf),
            if self.module_btf.is_empty() { "none".to_string() } else { self.module_btf.len().to_string() },
            yes(self.tracefs),
            yes(self.kprobes),
            if self.cgroup_v2_unified { "v2" } else { "v1/hybrid" }
        )
    }
}
