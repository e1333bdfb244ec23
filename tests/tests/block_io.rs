//! `ig top block-io` and `ig profile block-io` against direct I/O on a loop
//! device, from a runc container given that device and from the host: the
//! container's reads and writes are counted exactly (bytes and requests)
//! under its name and device (`profile block-io --per-disk`); the host's,
//! the same commands at the same time, never show without --host.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tests::{IgChild, harness, mntns_of, require_root, unique};

/// A 16 MiB file behind a free loop device; detached and removed on drop.
struct Loop {
    dev: String,
    file: std::path::PathBuf,
}

impl Loop {
    fn new(name: &str) -> Self {
        let file = std::env::temp_dir().join(format!("{name}.img"));
        std::fs::File::create(&file).unwrap().set_len(16 << 20).unwrap();
        let out = Command::new("losetup").args(["-f", "--show"]).arg(&file).output().expect("losetup");
        assert!(out.status.success(), "losetup: {}", String::from_utf8_lossy(&out.stderr));
        Loop { dev: String::from_utf8(out.stdout).unwrap().trim().to_string(), file }
    }

    fn minor(&self) -> u64 {
        self.dev.trim_start_matches("/dev/loop").parse().expect("/dev/loopN")
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
        let _ = std::fs::remove_file(&self.file);
    }
}

/// A runc container that may read and write `dev`.
fn container_with(h: &tests::Harness, id: &str, dev: &Loop) -> tests::RuncBundle {
    let minor = dev.minor();
    let bundle = h.runc_bundle(id, &["/bin/sleep", "60"], true);
    bundle.edit_config(|cfg| {
        let node =
            serde_json::json!({"path": dev.dev, "type": "b", "major": 7, "minor": minor, "fileMode": 0o600});
        cfg["linux"]["devices"] = serde_json::json!([node]);
        let allow =
            serde_json::json!({"allow": true, "type": "b", "major": 7, "minor": minor, "access": "rw"});
        match cfg["linux"]["resources"]["devices"].as_array_mut() {
            Some(rules) => rules.push(allow),
            None => cfg["linux"]["resources"]["devices"] = serde_json::json!([allow]),
        }
    });
    bundle
}

/// 256 direct reads of 4 KiB, then 8 direct writes of 64 KiB.
fn direct_io_script(dev: &Loop) -> String {
    format!(
        "dd if={d} of=/dev/null bs=4096 count=256 iflag=direct && dd if=/dev/zero of={d} bs=65536 count=8 oflag=direct",
        d = dev.dev
    )
}

#[test]
fn a_containers_direct_io_is_counted_exactly_and_the_hosts_is_not_shown() {
    require_root();
    let h = harness();
    let id = unique("igt-bio");
    let dev = Loop::new(&id);
    let minor = dev.minor();
    let bundle = container_with(&h, &id, &dev);
    let ig = IgChild::spawn_ready(
        &["top", "block-io", "-o", "json", "--interval", "0.5", "--auto-mount-filesystems"],
        "tracing started",
    );
    let pid = bundle.run_detached();
    let mntns = mntns_of(pid);
    let host_mntns = mntns_of(std::process::id());

    // The same from both.
    let script = direct_io_script(&dev);
    let host = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert!(host.status.success(), "host dd: {}", String::from_utf8_lossy(&host.stderr));
    let out = bundle.exec_output(&["sh", "-c", &script]);
    assert!(out.status.success(), "container dd: {}", String::from_utf8_lossy(&out.stdout));

    // The container's rows for the device, summed over the intervals.
    let (mut reads, mut writes) = ((0, 0), (0, 0));
    for table in ig.collect_json(Duration::from_secs(2)) {
        for row in table.as_array().expect("one JSON array per interval") {
            assert_ne!(row["mountnsid"], host_mntns, "a host row without --host: {row}");
            let ours = row["mountnsid"] == mntns && row["major"] == 7 && row["minor"] == minor;
            if !ours {
                continue;
            }
            assert_eq!(row["runtime"]["containerName"], id.as_str(), "{row}");
            assert_eq!(row["comm"], "dd", "{row}");
            let sums = if row["write"] == Value::Bool(true) { &mut writes } else { &mut reads };
            sums.0 += row["bytes"].as_u64().unwrap();
            sums.1 += row["io"].as_u64().unwrap();
            assert!(row["us"].as_u64().is_some(), "{row}");
        }
    }
    assert_eq!(reads, (256 * 4096, 256), "read bytes and requests");
    assert_eq!(writes, (8 * 65536, 8), "written bytes and requests");
    bundle.delete();
}

#[test]
fn the_latency_histogram_counts_each_of_the_containers_requests_once() {
    require_root();
    let h = harness();
    let id = unique("igt-biolat");
    let dev = Loop::new(&id);
    let bundle = container_with(&h, &id, &dev);
    bundle.run_detached();
    // Its busybox (the one binary of its root) read whole into the page
    // cache first: running sh and dd then asks the disk for nothing.
    std::fs::read(h.rootfs.join("bin/busybox")).expect("the rootfs's busybox");
    let _ = bundle.exec_output(&["dd", "--help"]);
    let profile = |extra: &[&str]| {
        let mut args =
            vec!["profile", "block-io", "-c", &id, "-o", "json", "-t", "8", "--auto-mount-filesystems"];
        args.extend_from_slice(extra);
        IgChild::spawn_ready(&args, "tracing started")
    };
    let all = profile(&[]);
    let per_disk = profile(&["--per-disk"]);
    let script = direct_io_script(&dev);
    let host = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert!(host.status.success(), "host dd: {}", String::from_utf8_lossy(&host.stderr));
    let out = bundle.exec_output(&["sh", "-c", &script]);
    assert!(out.status.success(), "container dd: {}", String::from_utf8_lossy(&out.stdout));
    let total = |h: &Value| -> u64 {
        h["intervals"].as_array().expect("intervals").iter().map(|i| i["count"].as_u64().unwrap()).sum()
    };

    // Per disk: the loop device's histogram holds the container's 264
    // requests exactly (the host's 264 are not its). Its other requests,
    // if any (runc exec faulting in pages evicted meanwhile), are on other
    // devices.
    let first = per_disk.wait_json(Duration::from_secs(20), || {}, |v| v["measure"] == "latency");
    let mut disks = vec![first];
    disks.extend(per_disk.collect_json(Duration::from_millis(500)));
    let loop_name = dev.dev.trim_start_matches("/dev/");
    let on_loop = disks
        .iter()
        .find(|h| h["disk"] == loop_name)
        .unwrap_or_else(|| panic!("no histogram of {loop_name}: {disks:?}"));
    assert_eq!(total(on_loop), 264, "{on_loop}");
    assert_eq!(on_loop["unit"], "us");
    for (k, i) in on_loop["intervals"].as_array().unwrap().iter().enumerate() {
        let start = if k == 0 { 0 } else { 1u64 << (k - 1) };
        assert_eq!((i["start"].as_u64(), i["end"].as_u64()), (Some(start), Some(1u64 << k)), "{on_loop}");
    }
    let names: Vec<&str> = disks.iter().map(|h| h["disk"].as_str().expect("a disk name")).collect();
    let mut unique_names = names.clone();
    unique_names.dedup();
    assert_eq!(names.len(), unique_names.len(), "a disk twice: {names:?}");

    // All together: one histogram, no disk, counting the same requests.
    let hist = all.wait_json(Duration::from_secs(20), || {}, |v| v["measure"] == "latency");
    assert!(hist.get("disk").is_none(), "{hist}");
    assert_eq!(total(&hist), disks.iter().map(total).sum::<u64>(), "{hist} against {disks:?}");
    bundle.delete();
}
