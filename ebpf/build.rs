//! Compiles every `gadgets/<name>/program.bpf.c` with clang (CO-RE, committed
//! vmlinux.h) into `$OUT_DIR/<name>.bpf.o`, and generates the Rust mirror of
//! `gadgets/<name>/program.h` with bindgen into `$OUT_DIR/<name>_types.rs`,
//! so each event struct has a single definition.
//!
//! Environment: `BPF_CLANG` (default `clang`), `BPF_STRIP` (default
//! `llvm-strip`; skipped with a warning when missing).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const GADGETS: &[&str] = &[
    "snapshot_process",
    "trace_bind",
    "trace_capabilities",
    "trace_dns",
    "trace_exec",
    "trace_mount",
    "trace_oomkill",
    "trace_open",
    "trace_signal",
    "trace_sni",
    "trace_tcp",
    "trace_tcpconnect",
    "top_file",
    "top_tcp",
];

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let include = manifest.join("include");
    println!("cargo:rerun-if-env-changed=BPF_CLANG");
    println!("cargo:rerun-if-env-changed=BPF_STRIP");
    rerun_for_dir(&include);

    for gadget in GADGETS {
        let dir = manifest.join("gadgets").join(gadget);
        rerun_for_dir(&dir);
        let object = out.join(format!("{gadget}.bpf.o"));
        compile(&dir.join("program.bpf.c"), &include, &dir, &object);
        strip(&object);
        generate_types(gadget, &dir.join("program.h"), &include, &out);
    }
}

fn rerun_for_dir(dir: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if matches!(path.extension().and_then(|e| e.to_str()), Some("c" | "h")) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

fn compile(source: &Path, include: &Path, gadget_dir: &Path, object: &Path) {
    let clang = env::var("BPF_CLANG").unwrap_or_else(|_| "clang".into());
    let status = Command::new(&clang)
        .args(["-target", "bpf", "-D__TARGET_ARCH_x86", "-g", "-O2", "-Wall", "-Werror"])
        .arg("-I")
        .arg(include)
        .arg("-I")
        .arg(gadget_dir)
        .arg("-c")
        .arg(source)
        .arg("-o")
        .arg(object)
        .status()
        .unwrap_or_else(|e| {
            panic!("running {clang} for {}: {e} (install clang and libbpf-dev)", source.display())
        });
    assert!(status.success(), "{clang} failed on {}", source.display());
}

/// Drops DWARF but keeps .BTF and .BTF.ext, which CO-RE needs.
fn strip(object: &Path) {
    let strip = env::var("BPF_STRIP").unwrap_or_else(|_| "llvm-strip".into());
    match Command::new(&strip).arg("--strip-debug").arg(object).status() {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{strip} failed on {}: {s}", object.display()),
        Err(e) => println!("cargo:warning={strip} not run ({e}); embedding unstripped objects"),
    }
}

fn generate_types(gadget: &str, header: &Path, include: &Path, out: &Path) {
    let bindings = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .clang_arg(format!("-I{}", include.display()))
        .allowlist_type("ig_.*")
        .allowlist_var("IG_.*")
        .derive_default(false)
        .derive_debug(false)
        .layout_tests(true)
        .use_core()
        .prepend_enum_name(false)
        .generate()
        .unwrap_or_else(|e| panic!("bindgen on {}: {e} (install libclang-dev)", header.display()));
    let target = out.join(format!("{gadget}_types.rs"));
    bindings.write_to_file(&target).unwrap_or_else(|e| panic!("writing {}: {e}", target.display()));
}
