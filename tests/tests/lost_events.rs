//! A ring buffer made tiny overflows under an open storm: the loss is
//! counted in the kernel and reported as a `warn` event, never silent.

use std::time::{Duration, Instant};

use tests::{IgChild, require_root, wait_open_ready};

#[test]
fn losses_are_reported_as_warn_events() {
    require_root();
    let ig = IgChild::spawn(&[
        "trace",
        "open",
        "--host",
        "-o",
        "json",
        "--auto-mount-filesystems",
        "--ring-buffer-size",
        "4096",
    ]);
    wait_open_ready(&ig);
    // 20k opens in a burst: far more than 4 KiB holds between two drains.
    for _ in 0..20_000 {
        let _ = std::fs::File::open("/dev/null");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut lost = 0;
    while Instant::now() < deadline && lost == 0 {
        for v in ig.collect_json(Duration::from_millis(200)) {
            if v["type"] == "warn" {
                assert!(v["message"].as_str().unwrap().contains("lost"), "{v}");
                lost += v["lostEvents"].as_u64().expect("lostEvents is a number");
            }
        }
    }
    assert!(lost > 0, "no lost-events warning within 5 s");
}

#[test]
fn losses_are_reported_on_stderr_in_columns_mode() {
    require_root();
    let ig = IgChild::spawn(&[
        "trace",
        "open",
        "--host",
        "--auto-mount-filesystems",
        "--ring-buffer-size",
        "4096",
    ]);
    // The header comes once the gadget is attached.
    assert!(ig.next_line(Duration::from_secs(20)).is_some_and(|h| h.contains("PATH")));
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..20_000 {
        let _ = std::fs::File::open("/dev/null");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut stderr = String::new();
    while Instant::now() < deadline && !stderr.contains("WARN: lost") {
        while ig.next_line(Duration::from_millis(10)).is_some() {}
        stderr.push_str(&ig.stderr_text());
    }
    assert!(stderr.contains("WARN: lost"), "stderr: {stderr}");
}
