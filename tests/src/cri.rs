//! The harness's containerds (tests/harness/containerd.sh, 1.7 and 2.x) and
//! CRI pods on them, through the harness's CRI client (cri.py), for the
//! tests that need real Kubernetes pods.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use crate::{IgChild, binary, harness, unique};

/// One of the harness's containerds (tests/harness/containerd.sh).
pub struct Containerd {
    /// `CONTAINERD=` for containerd.sh.
    pub flavour: &'static str,
    /// env.sh names of its CRI client, NRI socket and gRPC socket.
    cri_var: &'static str,
    nri_var: &'static str,
    pub sock_var: &'static str,
    /// The host's address on its CNI bridge (containerd.sh config_cni):
    /// networked pods' gateway.
    pub gateway: &'static str,
    one_at_a_time: Mutex<()>,
}

pub static V1_7: Containerd = Containerd {
    flavour: "1.7",
    cri_var: "IG_HARNESS_CRI",
    nri_var: "IG_HARNESS_NRI_SOCK",
    sock_var: "IG_HARNESS_CONTAINERD_SOCK",
    gateway: "10.89.17.1",
    one_at_a_time: Mutex::new(()),
};

pub static V2: Containerd = Containerd {
    flavour: "2",
    cri_var: "IG_HARNESS_CRI2",
    nri_var: "IG_HARNESS_NRI2_SOCK",
    sock_var: "IG_HARNESS_CONTAINERD2_SOCK",
    gateway: "10.89.20.1",
    one_at_a_time: Mutex::new(()),
};

pub fn env_value(key: &str) -> String {
    let h = harness();
    let env = std::fs::read_to_string(h.dir.join("env.sh")).unwrap();
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("export {key}=")))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("{key} missing from env.sh: run tests/harness/setup-runtimes.sh"))
}

impl Containerd {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.one_at_a_time.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn cri_command(&self, args: &[&str]) -> Command {
        let cmd = env_value(self.cri_var);
        let mut parts = cmd.split_whitespace();
        let mut c = Command::new(parts.next().unwrap());
        c.args(parts).args(args);
        c
    }

    /// The CRI client (tests/harness/cri.py) on this containerd.
    pub fn cri(&self, args: &[&str]) -> String {
        let out = self.cri_command(args).output().expect("cri.py");
        assert!(
            out.status.success(),
            "cri.py {args:?} on containerd {}: {}",
            self.flavour,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn nri_socket(&self) -> String {
        env_value(self.nri_var)
    }

    pub fn restart(&self) {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("harness/containerd.sh");
        let status = Command::new("bash")
            .arg(&script)
            .arg("restart")
            .env("HARNESS_DIR", harness().dir)
            .env("CONTAINERD", self.flavour)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "containerd {} restart", self.flavour);
    }
}

/// A pod with one container, removed on drop.
pub struct Pod {
    pub runtime: &'static Containerd,
    pub name: String,
    pub ns: String,
    pub uid: String,
    pub ctr: String,
    pub pod_id: String,
    pub ctr_id: String,
    pub dir: PathBuf,
}

impl Pod {
    pub fn run(runtime: &'static Containerd, command: &[&str]) -> Self {
        Self::run_with(runtime, command, "ig-test-ns", json!({"app": "ig-test"}))
    }

    /// In namespace `ns`, with these pod labels, on the host's network.
    pub fn run_with(runtime: &'static Containerd, command: &[&str], ns: &str, labels: Value) -> Self {
        Self::spawn(runtime, command, ns, labels, "NODE", "")
    }

    /// With CRI runtime handler `handler` (containerd.sh configures "crun").
    pub fn run_on_handler(runtime: &'static Containerd, command: &[&str], handler: &str) -> Self {
        Self::spawn(runtime, command, "ig-test-ns", json!({"app": "ig-test"}), "NODE", handler)
    }

    /// In namespace `ns`, with these pod labels, in a network namespace of
    /// its own (an address on the harness's CNI bridge).
    pub fn run_networked(runtime: &'static Containerd, command: &[&str], ns: &str, labels: Value) -> Self {
        Self::spawn(runtime, command, ns, labels, "POD", "")
    }

    /// `network`: the CRI namespace mode, NODE or POD; `handler`: the CRI
    /// runtime handler, "" for containerd's default (runc).
    fn spawn(
        runtime: &'static Containerd,
        command: &[&str],
        ns: &str,
        labels: Value,
        network: &str,
        handler: &str,
    ) -> Self {
        let h = harness();
        let name = unique("igt-pod");
        let (ns, uid, ctr) = (ns.to_string(), unique("uid"), unique("igt-ctr"));
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let pod = json!({
            "metadata": {"name": name, "namespace": ns, "uid": uid, "attempt": 0},
            "logDirectory": dir.join("logs"),
            "labels": labels,
            "linux": {"cgroupParent": format!("/kubepods/besteffort/pod{uid}"),
                      "securityContext": {"namespaceOptions": {"network": network, "pid": "POD", "ipc": "POD"}}}
        });
        let container = json!({
            "metadata": {"name": ctr, "attempt": 0}, "image": {"image": h.image},
            "command": command, "logPath": "ctr.log"
        });
        std::fs::write(dir.join("pod.json"), pod.to_string()).unwrap();
        std::fs::write(dir.join("ctr.json"), container.to_string()).unwrap();
        let out = runtime.cri(&[
            "run",
            dir.join("pod.json").to_str().unwrap(),
            dir.join("ctr.json").to_str().unwrap(),
            handler,
        ]);
        let (pod_id, ctr_id) = out.split_once(' ').expect("pod and container ids");
        Pod { runtime, name, ns, uid, ctr, pod_id: pod_id.into(), ctr_id: ctr_id.into(), dir }
    }

    /// The pod's IPv4 address on the CNI bridge (a networked pod's eth0).
    pub fn ipv4(&self) -> String {
        let out = Command::new("nsenter")
            .args(["-t", &self.pid().to_string(), "-n", "ip", "-4", "-o", "addr", "show", "dev", "eth0"])
            .output()
            .expect("nsenter");
        let text = String::from_utf8_lossy(&out.stdout);
        let addr = text.split_whitespace().skip_while(|w| *w != "inet").nth(1);
        addr.and_then(|a| a.split('/').next())
            .unwrap_or_else(|| panic!("no IPv4 address on {}'s eth0: {text}", self.name))
            .to_string()
    }

    pub fn pid(&self) -> u32 {
        self.info()["pid"].as_u64().expect("pid") as u32
    }

    /// containerd's verbose status of the container (pid, runtimeOptions, ...).
    pub fn info(&self) -> Value {
        let v: Value = serde_json::from_str(&self.runtime.cri(&["inspect", &self.ctr_id])).unwrap();
        v["info"]["info"].clone()
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        for args in
            [["stop", &self.ctr_id], ["rm", &self.ctr_id], ["stopp", &self.pod_id], ["rmp", &self.pod_id]]
        {
            let _ = self.runtime.cri_command(&args).stdout(Stdio::null()).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn start_plugin(runtime: &Containerd) -> IgChild {
    let child = Command::new(binary("ig-nri"))
        .args(["--socket", &runtime.nri_socket(), "--idx", "90"])
        .env("IG_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ig-nri");
    let ig = IgChild::from_child(child);
    assert!(
        ig.wait_stderr("synchronized", Duration::from_secs(20)),
        "ig-nri on containerd {}: {}",
        runtime.flavour,
        ig.stderr_text()
    );
    ig
}
