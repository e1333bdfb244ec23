//! `ig trace fsslower` with a real runc container: an ext4 filesystem on a
//! loop device, bind-mounted into the container, whose reads runc throttles
//! (blockIO throttleReadBpsDevice) to 64 KiB/s: reading 128 KiB of a file
//! not in the page cache takes seconds and shows, named by the container;
//! a read of a cached file of the same filesystem, fast, does not; nor does
//! the host's slow read of the same kind without --host.

use std::process::Command;
use std::time::Duration;

use tests::{IgChild, harness, mntns_of, require_root, run_ok, unique};

/// An ext4 filesystem on a loop device, mounted at `dir`; undone on drop.
struct Ext4 {
    dev: String,
    dir: std::path::PathBuf,
    img: std::path::PathBuf,
}

impl Ext4 {
    fn new(name: &str) -> Self {
        let img = std::env::temp_dir().join(format!("{name}.img"));
        let dir = std::env::temp_dir().join(name);
        std::fs::File::create(&img).unwrap().set_len(32 << 20).unwrap();
        let out = run_ok(Command::new("losetup").args(["-f", "--show"]).arg(&img));
        let dev = String::from_utf8(out.stdout).unwrap().trim().to_string();
        run_ok(Command::new("mkfs.ext4").args(["-q", &dev]));
        std::fs::create_dir_all(&dir).unwrap();
        run_ok(Command::new("mount").arg(&dev).arg(&dir));
        Ext4 { dev, dir, img }
    }

    fn minor(&self) -> u64 {
        self.dev.trim_start_matches("/dev/loop").parse().expect("/dev/loopN")
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
        let _ = std::fs::remove_dir(&self.dir);
        let _ = std::fs::remove_file(&self.img);
    }
}

#[test]
fn a_containers_throttled_reads_show_and_fast_ones_do_not() {
    require_root();
    let h = harness();
    let id = unique("igt-fss");
    let fs = Ext4::new(&id);
    for name in ["slow", "hostslow", "fast"] {
        std::fs::write(fs.dir.join(name), vec![7u8; 256 << 10]).unwrap();
    }
    run_ok(&mut Command::new("sync"));
    std::fs::write("/proc/sys/vm/drop_caches", "3").unwrap();
    // Cached again: read once now.
    std::fs::read(fs.dir.join("fast")).unwrap();

    let bundle = h.runc_bundle(&id, &["/bin/sleep", "60"], true);
    let (dir, minor) = (fs.dir.to_str().unwrap().to_string(), fs.minor());
    bundle.edit_config(|cfg| {
        let mount =
            serde_json::json!({"destination": "/data", "type": "bind", "source": &dir, "options": ["rbind", "rw"]});
        cfg["mounts"].as_array_mut().expect("mounts").push(mount);
        cfg["linux"]["resources"]["blockIO"] =
            serde_json::json!({"throttleReadBpsDevice": [{"major": 7, "minor": minor, "rate": 65536}]});
    });
    let ig = IgChild::spawn_ready(
        &["trace", "fsslower", "-m", "100", "-f", "ext4", "-o", "json", "--auto-mount-filesystems"],
        "tracing started",
    );
    let pid = bundle.run_detached();
    let host_mntns = mntns_of(std::process::id());

    // The host reads its own uncached file as slowly, in a blkio cgroup of
    // its own (this host's blkio is cgroup v1).
    let cg = std::path::Path::new("/sys/fs/cgroup/blkio").join(&id);
    std::fs::create_dir_all(&cg).unwrap();
    std::fs::write(cg.join("blkio.throttle.read_bps_device"), format!("7:{minor} 65536")).unwrap();
    let script = format!(
        "echo $$ > {}/cgroup.procs && dd if={dir}/hostslow of=/dev/null bs=131072 count=1",
        cg.display()
    );
    let host = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    assert!(host.status.success(), "host dd: {}", String::from_utf8_lossy(&host.stderr));
    let fast = bundle.exec_output(&["dd", "if=/data/fast", "of=/dev/null", "bs=131072", "count=1"]);
    assert!(fast.status.success());
    let slow = bundle.exec_output(&["dd", "if=/data/slow", "of=/dev/null", "bs=131072", "count=1"]);
    assert!(slow.status.success());
    let e = ig.wait_json_forbidding(
        Duration::from_secs(20),
        || {},
        |v| v["file"] == "slow",
        |v| v["file"] == "fast" || v["mountnsid"] == host_mntns,
        Duration::from_millis(300),
    );
    assert_eq!(e["runtime"]["containerName"], id.as_str(), "{e}");
    assert_eq!(e["mountnsid"], mntns_of(pid));
    assert_eq!((e["comm"].as_str(), e["op"].as_str()), (Some("dd"), Some("R")), "{e}");
    assert_eq!((e["bytes"].as_i64(), e["offset"].as_i64()), (Some(131072), Some(0)), "{e}");
    assert_eq!(e["filesystem"], "ext4");
    // 128 KiB at 64 KiB/s: a second or more, far above --min.
    assert!(e["latency"].as_u64().unwrap() >= 1_000_000_000, "{e}");
    bundle.delete();
    let _ = std::fs::remove_dir(&cg);
}
