//! `bench hook`: what ig-hook adds to a container start.

use std::time::Instant;

use anyhow::Result;

use crate::median;

/// Container start time (`runc run` of /bin/true) without the hook, with the
/// hook and no tracer, and with the hook and `ig trace exec` running;
/// alternating, `count` runs each.
pub(crate) fn hook_cost(count: usize) -> Result<()> {
    tests::require_root();
    let h = tests::harness();
    let plain = h.runc_bundle("ig-bench-plain", &["/bin/true"], false);
    let hooked = h.runc_bundle("ig-bench-hooked", &["/bin/true"], true);
    let time_run = |b: &tests::RuncBundle| {
        let t = Instant::now();
        b.run();
        t.elapsed().as_secs_f64() * 1000.0
    };
    let (mut none, mut alone) = (Vec::new(), Vec::new());
    for _ in 0..count {
        none.push(time_run(&plain));
        alone.push(time_run(&hooked));
    }
    let ig = tests::IgChild::spawn_ready(
        &["trace", "exec", "-o", "json", "--auto-mount-filesystems"],
        "tracing started",
    );
    let (mut none2, mut traced) = (Vec::new(), Vec::new());
    for _ in 0..count {
        none2.push(time_run(&plain));
        traced.push(time_run(&hooked));
    }
    drop(ig);
    let (m0, m1, m2, m3) = (median(none), median(alone), median(none2), median(traced));
    println!("== container start (runc run /bin/true), {count} alternating runs each, medians:");
    println!("no hook {m0:.1} ms; hook, no tracer {m1:.1} ms: ratio {:.3}, added {:.1} ms", m1 / m0, m1 - m0);
    println!(
        "no hook {m2:.1} ms; hook, ig trace exec running {m3:.1} ms: ratio {:.3}, added {:.1} ms",
        m3 / m2,
        m3 - m2
    );
    Ok(())
}
