//! `bench nri`: what ig-nri adds to a CRI container start.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::median;

/// CRI CreateContainer+StartContainer time on the harness containerd with
/// ig-nri connected vs not, alternating run by run, `count` runs each;
/// `ig trace exec` runs throughout, so the plugin's records reach a tracer.
pub(crate) fn nri_cost(count: usize) -> Result<()> {
    tests::require_root();
    let h = tests::harness();
    let env = std::fs::read_to_string(h.dir.join("env.sh"))?;
    let get = |key: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("export {key}=")))
            .map(|v| v.trim_matches('"').to_string())
            .with_context(|| format!("{key} not in env.sh: set up the harness with containerd"))
    };
    let (cri, nri_sock) = (get("IG_HARNESS_CRI")?, get("IG_HARNESS_NRI_SOCK")?);
    let dir = std::env::temp_dir().join("ig-bench-nri");
    std::fs::create_dir_all(&dir)?;
    let pod = serde_json::json!({
        "metadata": {"name": "ig-bench", "namespace": "bench", "uid": "ig-bench-uid", "attempt": 0},
        "logDirectory": dir.join("logs"),
        "linux": {"securityContext": {"namespaceOptions": {"network": "NODE"}}}
    });
    let ctr = serde_json::json!({"metadata": {"name": "c"}, "image": {"image": h.image}, "command": ["/bin/sleep", "60"]});
    std::fs::write(dir.join("pod.json"), pod.to_string())?;
    std::fs::write(dir.join("ctr.json"), ctr.to_string())?;
    let block = |n: usize| -> Result<Vec<f64>> {
        let mut parts = cri.split_whitespace();
        let out = Command::new(parts.next().context("cri command")?)
            .args(parts)
            .arg("bench")
            .arg(dir.join("pod.json"))
            .arg(dir.join("ctr.json"))
            .arg(n.to_string())
            .output()?;
        if !out.status.success() {
            bail!("cri.py bench: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect())
    };
    let _tracer = tests::IgChild::spawn_ready(
        &["trace", "exec", "-o", "json", "--auto-mount-filesystems"],
        "tracing started",
    );
    let (mut without, mut with) = (Vec::new(), Vec::new());
    while without.len() < count {
        without.extend(block(1)?);
        let plugin = Command::new(tests::binary("ig-nri"))
            .args(["--socket", &nri_sock])
            .env("IG_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let plugin = tests::IgChild::from_child(plugin);
        if !plugin.wait_stderr("synchronized", Duration::from_secs(20)) {
            bail!("ig-nri did not connect: {}", plugin.stderr_text());
        }
        with.extend(block(1)?);
        drop(plugin);
    }
    let (m0, m1) = (median(without), median(with));
    println!("== CRI create+start, {count} runs each, alternating, medians:");
    println!(
        "without ig-nri {m0:.1} ms; with ig-nri {m1:.1} ms: added {:.1} ms (ratio {:.3})",
        m1 - m0,
        m1 / m0
    );
    Ok(())
}
