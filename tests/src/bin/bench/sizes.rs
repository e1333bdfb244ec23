//! `bench sizes`: the binaries' sizes.

use anyhow::Result;

/// The binaries' sizes (static, release if built so).
pub(crate) fn binary_sizes() -> Result<()> {
    println!("== binary sizes ({})", tests::target_dir().display());
    for name in ["ig", "gadgetctl", "ig-hook", "ig-nri"] {
        let len = std::fs::metadata(tests::binary(name))?.len();
        println!("{name:<10} {:6.1} MiB", len as f64 / (1 << 20) as f64);
    }
    Ok(())
}
