//! Compiles the eBPF side of every gadget: each directory under
//! `src/gadgets/` that holds a `program.bpf.c` is one, found here (no list
//! of names to keep). Its C is compiled with clang (CO-RE, the committed
//! `bpf/vmlinux.h`) into `$OUT_DIR/<gadget>.bpf.o`, and the Rust mirror of
//! its `program.h` is generated with bindgen into `$OUT_DIR/<gadget>_types.rs`,
//! so each event struct has a single definition. The object is embedded
//! deflated (`<gadget>.bpf.o.z`: 2.4 MB of objects become 0.7 MB of binary)
//! and inflated when a gadget first uses it. The gadget's `mod.rs` embeds
//! both with one `crate::bpf_object!(<gadget>)` line.
//!
//! Environment: `BPF_CLANG` (default `clang`), `BPF_STRIP` (default
//! `llvm-strip`; skipped with a warning when missing).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let include = manifest.join("bpf");
    let gadgets_dir = manifest.join("src/gadgets");
    println!("cargo:rerun-if-env-changed=BPF_CLANG");
    println!("cargo:rerun-if-env-changed=BPF_STRIP");
    // A gadget directory added or removed reruns this script.
    println!("cargo:rerun-if-changed={}", gadgets_dir.display());
    rerun_for_dir(&include);

    for dir in gadget_dirs(&gadgets_dir) {
        let gadget = dir.file_name().and_then(|n| n.to_str()).expect("gadget directories have UTF-8 names");
        rerun_for_dir(&dir);
        let object = out.join(format!("{gadget}.bpf.o"));
        compile(&dir.join("program.bpf.c"), &include, &dir, &object);
        strip(&object);
        deflate(&object);
        generate_types(gadget, &dir.join("program.h"), &include, &out);
    }
    generate_common_types(&include, &out);
}

/// The gadget directories that have an eBPF program, sorted.
fn gadget_dirs(root: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(root).unwrap_or_else(|e| panic!("reading {}: {e}", root.display()));
    let mut dirs: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.join("program.bpf.c").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn rerun_for_dir(dir: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
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

/// Writes `<object>.z`, the object deflated (zlib-less raw deflate), for embedding.
fn deflate(object: &Path) {
    let data = std::fs::read(object).unwrap_or_else(|e| panic!("reading {}: {e}", object.display()));
    let packed = miniz_oxide::deflate::compress_to_vec(&data, 9);
    let target = object.with_extension("o.z");
    std::fs::write(&target, packed).unwrap_or_else(|e| panic!("writing {}: {e}", target.display()));
}

fn generate_types(gadget: &str, header: &Path, include: &Path, out: &Path) {
    let bindings = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .clang_arg(format!("-I{}", include.display()))
        .allowlist_type("ig_.*")
        .allowlist_var("IG_.*")
        // One Rust type for the struct every event embeds (crate::bpf).
        .blocklist_type("ig_process")
        .raw_line("#[allow(unused_imports)]\nuse crate::bpf::ig_process;")
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

/// The types every gadget shares (`bpf/types.h`), once: `$OUT_DIR/common_types.rs`.
fn generate_common_types(include: &Path, out: &Path) {
    let header = include.join("types.h");
    let bindings = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .allowlist_type("ig_process")
        .allowlist_var("IG_TASK_COMM_LEN")
        .derive_default(false)
        .derive_debug(false)
        .layout_tests(true)
        .use_core()
        .generate()
        .unwrap_or_else(|e| panic!("bindgen on {}: {e} (install libclang-dev)", header.display()));
    let target = out.join("common_types.rs");
    bindings.write_to_file(&target).unwrap_or_else(|e| panic!("writing {}: {e}", target.display()));
}
