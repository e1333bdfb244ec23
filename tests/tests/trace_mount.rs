//! `ig trace mount` against real mounts, made in private mount namespaces so
//! the host's mounts are never touched.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tests::{IgChild, mntns_of, require_root, unique};
use tracer::event::Clock;
use tracer::gadgets::Gadget;
use tracer::gadgets::trace_mount::{MountEvent, TraceMount};
use tracer::session::{Session, SessionOptions};

/// A shell in its own mount namespace, running `script` after one line on stdin.
fn private_shell(script: &str) -> std::process::Child {
    let mut sh = Command::new("/bin/sh");
    sh.args(["-c", &format!("read go; {script}; read end")]).stdin(Stdio::piped());
    // SAFETY: unshare is async-signal-safe; nothing else runs before exec.
    unsafe {
        sh.pre_exec(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(std::io::Error::from)?;
            // Keep our mounts out of the host's namespace.
            nix::mount::mount(
                None::<&str>,
                "/",
                None::<&str>,
                nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .map_err(std::io::Error::from)
        });
    }
    sh.spawn().expect("sh")
}

fn go(child: &mut std::process::Child) {
    child.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
}

#[test]
fn mount_umount_and_a_failed_mount() {
    require_root();
    let ig = IgChild::spawn_ready(
        &["trace", "mount", "--host", "-o", "json", "--auto-mount-filesystems"],
        "tracing started",
    );
    let (src, dir) = (unique("ig-src"), std::env::temp_dir().join(unique("ig-mnt")));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display();
    let mut sh = private_shell(&format!(
        "mount -t tmpfs -o nosuid,size=1m {src} {d} && umount {d}; mount --bind /nonexistent-{src} {d} 2>/dev/null"
    ));
    go(&mut sh);
    let mounted = ig.wait_json(Duration::from_secs(10), || {}, |v| v["src"] == src.as_str());
    assert_eq!(mounted["op"], "mount");
    assert_eq!((mounted["fs"].as_str(), mounted["ret"].as_i64()), (Some("tmpfs"), Some(0)));
    assert_eq!(mounted["dst"], d.to_string().as_str());
    assert_eq!(mounted["data"], "size=1m");
    assert!(mounted["flags"].as_array().unwrap().iter().any(|f| f == "MS_NOSUID"), "{mounted}");
    assert_eq!(
        mounted["call"],
        format!("mount({src:?}, \"{d}\", \"tmpfs\", MS_NOSUID, \"size=1m\") = 0").as_str()
    );
    assert!(mounted["latency"].as_u64().unwrap() > 0);
    assert_eq!(mounted["mountnsid"], mntns_of(sh.id()));

    let umounted = ig.wait_json(
        Duration::from_secs(10),
        || {},
        |v| v["op"] == "umount" && v["dst"] == d.to_string().as_str(),
    );
    assert_eq!(umounted["ret"], 0);
    let failed =
        ig.wait_json(Duration::from_secs(10), || {}, |v| v["src"] == format!("/nonexistent-{src}").as_str());
    assert_eq!(failed["ret"], -libc::ENOENT);
    go(&mut sh);
    sh.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "current_thread")]
async fn only_allowed_mount_namespaces_are_traced() {
    require_root();
    tracer::kernel::check_host(true).expect("host ready for eBPF");
    let gadget = TraceMount::default();
    let mut session = Session::load(&gadget, &SessionOptions::default()).expect("load trace mount");
    let dir = std::env::temp_dir().join(unique("ig-mnt-filter"));
    std::fs::create_dir_all(&dir).unwrap();
    let (inside, outside) = (unique("ig-in"), unique("ig-out"));
    let d = dir.display();
    let mut allowed = private_shell(&format!("mount -t tmpfs {inside} {d}"));
    let mut other = private_shell(&format!("mount -t tmpfs {outside} {d}"));
    session.filter().add(mntns_of(allowed.id())).unwrap();
    go(&mut allowed);
    go(&mut other);

    let clock = Clock::now();
    let mut seen: Vec<MountEvent> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        session.drain(|raw| seen.push(gadget.decode(raw, &clock).unwrap()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen.iter().any(|e| e.src == inside), "the allowed namespace's mount: {seen:?}");
    assert!(!seen.iter().any(|e| e.src == outside), "another namespace's mount leaked: {seen:?}");
    for sh in [&mut allowed, &mut other] {
        go(sh);
        sh.wait().unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
