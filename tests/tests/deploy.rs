//! Running ig where users run it: static binaries, the image from
//! install/Dockerfile on the harness's dockerd with the host at /host,
//! HOST_ROOT in a mount namespace whose root is another directory,
//! install.sh into a staging root, and the Kubernetes manifests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tests::{IgChild, binary, harness, require_root, run_ok, unique};

const BINARIES: [&str; 4] = ["ig", "gadgetctl", "ig-hook", "ig-nri"];
/// What ig needs in a container: SYS_ADMIN (eBPF, tracefs, fanotify; docker 20.10
/// knows no CAP_BPF), and reading other processes' /proc.
const CAPS: [&str; 5] = ["SYS_ADMIN", "SYS_PTRACE", "NET_ADMIN", "DAC_READ_SEARCH", "IPC_LOCK"];

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

#[test]
fn the_four_binaries_are_static() {
    for name in BINARIES {
        let path = binary(name);
        let ldd = Command::new("ldd").arg(&path).output().expect("ldd");
        let said =
            format!("{}{}", String::from_utf8_lossy(&ldd.stdout), String::from_utf8_lossy(&ldd.stderr));
        assert!(
            said.contains("not a dynamic executable") || said.contains("statically linked"),
            "{name}: ldd says {said}"
        );
        let dynamic = Command::new("readelf").args(["-d", "-l"]).arg(&path).output().expect("readelf");
        let text = String::from_utf8_lossy(&dynamic.stdout);
        assert!(!text.contains("(NEEDED)"), "{name} needs shared libraries:\n{text}");
        assert!(!text.contains("Requesting program interpreter"), "{name} has a dynamic loader");
    }
}

/// Mounts for `ig` in a container or chroot with the host at /host.
fn image_context() -> PathBuf {
    let dir = std::env::temp_dir().join(unique("ig-image"));
    std::fs::create_dir_all(&dir).unwrap();
    for name in BINARIES {
        std::fs::copy(binary(name), dir.join(name)).unwrap();
    }
    dir
}

#[test]
fn ig_in_a_container_from_the_shipped_dockerfile_traces_with_host_root() {
    let h = harness();
    require_root();
    let context = image_context();
    let image = format!("{}:test", unique("ig-image"));
    run_ok(
        h.docker()
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "-t", &image, "-f"])
            .arg(repo("install/Dockerfile"))
            .arg(&context),
    );
    let _ = std::fs::remove_dir_all(&context);

    // A container that runs before ig: listed through the docker API found under /host.
    let before = unique("igt-before");
    // The tracing ig is named so that it is removed even if this test fails; `-t` bounds it anyway.
    let tracer_name = unique("igt-ig");
    let _cleanup =
        Removed { h: &h, containers: vec![tracer_name.clone(), before.clone()], image: image.clone() };
    run_ok(h.docker().args([
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &before,
        &h.image,
        "/bin/sleep",
        "60",
    ]));
    let docker_sock = h.docker_sock.display().to_string();
    let ig_run = |docker_opts: &[&str], args: &[&str]| {
        let mut c = h.docker();
        // As privileged as this machine allows: --privileged asks for every
        // capability, and this sandbox withholds CAP_SYS_RESOURCE.
        c.args(["run", "--rm", "--pid=host", "--network", "none", "-v", "/:/host", "-v", "/run:/run"])
            .args(["--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined"])
            .args(CAPS.iter().flat_map(|c| ["--cap-add", c]))
            .args(docker_opts)
            .args(["-e", "IG_LOG=info", &image])
            .args(args)
            .args(["--auto-mount-filesystems", "--docker-socketpath", &docker_sock]);
        c
    };
    let out = run_ok(&mut ig_run(&[], &["list-containers", "-o", "json"]));
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).expect("a JSON list");
    let rec = list
        .iter()
        .find(|r| r["runtime"]["containerName"] == before.as_str())
        .unwrap_or_else(|| panic!("{before} not listed from inside the ig container: {list:?}"));
    let pid = rec["pid"].as_u64().unwrap() as u32;
    assert_eq!(rec["mntns"], tests::mntns_of(pid), "namespaces read from the host's /proc");

    // A container started while ig (in its container) traces: seen through
    // the runc watcher on /host/usr/sbin/runc, named from dockerd's data root.
    // Named, so that it is removed even if this test fails; `-t` bounds it anyway.
    let tracer_name = unique("igt-ig");
    let _cleanup =
        Removed { h: &h, containers: vec![tracer_name.clone(), before.clone()], image: image.clone() };
    let mut cmd = ig_run(&["--name", &tracer_name], &["trace", "exec", "-o", "json", "-t", "60"]);
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("docker run ig");
    let ig = IgChild::from_child(child);
    assert!(ig.wait_stderr("tracing started", Duration::from_secs(60)), "ig in docker: {}", ig.stderr_text());
    let name = unique("igt-after");
    let marker = unique("from-the-ig-image");
    h.docker_echo(&name, &marker);
    let ev = ig.wait_json(Duration::from_secs(20), || {}, |v| tests::has_arg(v, &marker));
    assert_eq!(ev["runtime"]["containerName"], name.as_str(), "{ev}");
    assert_eq!(ev["runtime"]["runtimeName"], "docker");
}

/// Removes the test's docker containers and image, whatever happens.
struct Removed<'a> {
    h: &'a tests::Harness,
    containers: Vec<String>,
    image: String,
}

impl Drop for Removed<'_> {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = self.h.docker().args(["rm", "-f", c]).output();
        }
        let _ = self.h.docker().args(["rmi", "-f", &self.image]).output();
    }
}

#[test]
fn host_root_works_from_a_chroot_with_the_host_at_slash_host() {
    let h = harness();
    require_root();
    let id = unique("igt-chroot");
    let bundle = h.runc_bundle(&id, &["/bin/sleep", "60"], true);
    let pid = bundle.run_detached();
    let dir = std::env::temp_dir().join(unique("ig-newroot"));
    std::fs::create_dir_all(&dir).unwrap();
    // A private mount namespace whose root is an empty tmpfs holding only
    // the static ig, /proc, /sys, /dev, and the host's / at /host.
    let script = format!(
        "set -e; R={root}; mount -t tmpfs tmpfs $R; mkdir -p $R/host $R/proc $R/sys $R/dev $R/tmp; \
         mount --rbind / $R/host; mount --rbind /sys $R/sys; mount --rbind /dev $R/dev; mount -t proc proc $R/proc; \
         cp {ig} $R/ig; exec chroot $R /ig list-containers -o json",
        root = dir.display(),
        ig = binary("ig").display()
    );
    let out = run_ok(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .env("HOST_ROOT", "/host"),
    );
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).expect("a JSON list");
    let rec = list
        .iter()
        .find(|r| r["runtime"]["containerId"] == id.as_str())
        .unwrap_or_else(|| panic!("the hooked container is not in the spool seen through /host: {list:?}"));
    assert_eq!(rec["pid"], pid);
    assert_eq!(rec["mntns"], tests::mntns_of(pid));
    bundle.delete();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn install_sh_installs_into_a_staging_root_and_uninstalls() {
    let root = std::env::temp_dir().join(unique("ig-stage"));
    let bin_dir = binary("ig").parent().unwrap().to_path_buf();
    let script = repo("install/install.sh");
    run_ok(
        Command::new("bash")
            .arg(&script)
            .arg("--root")
            .arg(&root)
            .arg("--prefix")
            .arg("/opt/ig")
            .arg("--bin-dir")
            .arg(&bin_dir),
    );
    for b in BINARIES {
        let p = root.join("opt/ig/bin").join(b);
        let meta = std::fs::metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o755, "{b}");
    }
    let hook: Value = serde_json::from_slice(
        &std::fs::read(root.join("usr/share/containers/oci/hooks.d/ig-hook.json")).unwrap(),
    )
    .expect("the hook JSON stays JSON");
    assert!(hook["hook"]["args"][2].as_str().unwrap().contains("/opt/ig/bin/ig-hook"), "{hook}");
    let unit = std::fs::read_to_string(root.join("etc/systemd/system/ig.service")).unwrap();
    assert!(unit.contains("ExecStart=/opt/ig/bin/ig daemon"), "{unit}");
    let nri = std::fs::read_to_string(root.join("etc/systemd/system/ig-nri.service")).unwrap();
    assert!(nri.contains("ExecStart=/opt/ig/bin/ig-nri "), "{nri}");
    let man = root.join("opt/ig/share/man/man1");
    for page in ["ig.1", "ig-trace-exec.1", "ig-snapshot-process.1", "gadgetctl.1", "gadgetctl-trace-open.1"]
    {
        assert!(man.join(page).is_file(), "man page {page}");
    }
    for path in [
        "opt/ig/share/bash-completion/completions/ig",
        "opt/ig/share/zsh/site-functions/_gadgetctl",
        "opt/ig/share/fish/vendor_completions.d/ig.fish",
    ] {
        let text = std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(text.contains("k8s-selector"), "{path} completes the gadgets' flags");
    }
    // Nothing outside the staging root was touched: the units point at /opt/ig, which does not exist.
    assert!(!Path::new("/opt/ig/bin/ig").exists());

    run_ok(
        Command::new("bash")
            .arg(&script)
            .arg("--root")
            .arg(&root)
            .arg("--prefix")
            .arg("/opt/ig")
            .arg("--uninstall"),
    );
    let left: Vec<PathBuf> = walk(&root).into_iter().filter(|p| p.is_file()).collect();
    assert!(left.is_empty(), "files left after --uninstall: {left:?}");
    let missing = Command::new("bash")
        .arg(&script)
        .arg("--root")
        .arg(&root)
        .arg("--bin-dir")
        .arg("/nonexistent")
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("missing"));
    let _ = std::fs::remove_dir_all(&root);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}

/// The `args: [...]` of a manifest's container, parsed with ig's own CLI.
fn manifest_args(text: &str) -> Vec<String> {
    let line = text.lines().find(|l| l.trim_start().starts_with("args:")).expect("an args: line");
    let list = line.split_once(':').unwrap().1.trim();
    serde_json::from_str(list).expect("args as a flow list of strings")
}

#[test]
fn the_kubernetes_manifests_run_ig_privileged_with_the_host_at_slash_host() {
    use clap::Parser;
    for (file, expect) in [("install/pod-ig.yaml", "trace"), ("install/ds-ig.yaml", "daemon")] {
        let text = std::fs::read_to_string(repo(file)).unwrap();
        for needle in [
            "hostPID: true",
            "privileged: true",
            "value: /host",
            "mountPath: /host",
            "path: /\n",
            "mountPath: /run",
        ] {
            assert!(text.contains(needle), "{file} lacks {needle:?}");
        }
        let args = manifest_args(&text);
        assert_eq!(args[0], expect, "{file}");
        let argv = std::iter::once("ig".to_string()).chain(args);
        if let Err(e) = tracer::cli::Cli::try_parse_from(argv) {
            panic!("{file}: ig does not accept its args: {e}");
        }
    }
    let dockerfile = std::fs::read_to_string(repo("install/Dockerfile")).unwrap();
    assert!(dockerfile.contains("ENV HOST_ROOT=/host"));
}
