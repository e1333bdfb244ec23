//! The BTF subset cutter (what start-up uses instead of handing aya the whole
//! kernel BTF): kernel BTF, module split BTF and the eBPF object's own BTF
//! and relocations, each fuzzed in turn against real counterparts. The first
//! byte picks what the rest of the input is:
//!   0: the kernel's BTF, cut for trace exec's object;
//!   1: an eBPF object, cut against a real (small) kernel BTF;
//!   2: a module's split BTF on top of that kernel BTF.
#![no_main]

use std::sync::OnceLock;

use tracer::btf_subset;

/// trace exec's object and the part of this machine's kernel BTF it uses
/// (a few KB: the whole 5 MB would make each run take milliseconds).
fn real() -> &'static (&'static [u8], Vec<u8>) {
    static REAL: OnceLock<(&'static [u8], Vec<u8>)> = OnceLock::new();
    REAL.get_or_init(|| {
        let object: &'static [u8] = &tracer::gadgets::trace_exec::bpf::OBJECT;
        let vmlinux =
            std::fs::read("/sys/kernel/btf/vmlinux").expect("the fuzzer needs /sys/kernel/btf/vmlinux");
        let kernel = btf_subset::for_object(&vmlinux, object).expect("this kernel's BTF cuts");
        (object, kernel)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let (object, kernel) = real();
    match mode % 3 {
        0 => {
            let valid = btf_subset::is_btf(rest);
            if let Ok(cut) = btf_subset::for_object(rest, object) {
                assert!(valid, "only well-formed BTF cuts");
                assert!(btf_subset::is_btf(&cut), "a cut is well-formed BTF");
            }
            let _ = btf_subset::roots_missing_from(rest, object);
            let _ = btf_subset::function_id(rest, "do_sys_openat2");
        }
        1 => {
            if let Ok(cut) = btf_subset::for_object(kernel, rest) {
                assert!(btf_subset::is_btf(&cut), "a cut is well-formed BTF");
            }
            let _ = btf_subset::roots_missing_from(kernel, rest);
        }
        _ => {
            let _ = btf_subset::module_defines(kernel, rest, &[b"task_struct".to_vec()]);
            if let Ok(cut) = btf_subset::for_object_with_modules(kernel, &[rest], object) {
                assert!(btf_subset::is_btf(&cut), "a cut is well-formed BTF");
            }
        }
    }
});
