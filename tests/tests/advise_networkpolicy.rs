//! `ig advise network-policy` with real CRI pods on containerd 1.7, each in
//! its own network namespace on the harness's CNI bridge, named by ig-nri.
//! A client pod connects to a web pod (TCP), to a server on the host (TCP)
//! and sends a DNS query to the host (UDP); a pod in another namespace,
//! not selected, connects to the web pod too. The policies name pod peers
//! by namespace and labels and the host by its address, pass Kubernetes'
//! own schema (kubernetes-validate, strict), and come out the same from
//! the connection log read back with --input.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tests::cri::{Pod, V1_7, start_plugin};
use tests::{IgChild, binary, harness, require_root, unique};

/// Stops a run as Ctrl-C does, so that it writes its policies.
fn stop(ig: &IgChild) {
    let pid = nix::unistd::Pid::from_raw(ig.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT to ig");
}

/// Everything a stopped run printed on stdout.
fn stdout_after_stop(ig: &IgChild) -> String {
    let mut text = String::new();
    while let Some(line) = ig.next_line(Duration::from_secs(if text.is_empty() { 20 } else { 2 })) {
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// A stream of JSON documents (-o json), by policy name.
fn policies_by_name(text: &str) -> std::collections::BTreeMap<String, Value> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .map(|v| v.unwrap_or_else(|e| panic!("{e}: {text}")))
        .map(|p| (p["metadata"]["name"].as_str().expect("a name").to_string(), p))
        .collect()
}

/// The lines of the --connections log, once `want` holds for them.
fn wait_log(path: &Path, ig: &IgChild, want: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("--connections line {l:?}: {e}")))
            .collect();
        if want(&lines) {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "the connections never all came; the log has:\n{text}\nig said: {}",
            ig.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn has(lines: &[Value], pod: &Pod, pkt_type: &str, proto: &str, port: u16) -> bool {
    lines.iter().any(|l| {
        l["pod"] == pod.name.as_str() && l["pktType"] == pkt_type && l["proto"] == proto && l["port"] == port
    })
}

/// kubernetes-validate --strict (the harness venv's, from PyPI) on a file.
fn validate(path: &Path) {
    let tool = harness().python.with_file_name("kubernetes-validate");
    let out = Command::new(&tool)
        .arg("--strict")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("{} (run tests/harness/setup-runtimes.sh): {e}", tool.display()));
    assert!(
        out.status.success(),
        "{} is not a valid NetworkPolicy: {}{}\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
}

fn pod_peer(pod: &Pod, labels: Value) -> Value {
    json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": pod.ns}},
           "podSelector": {"matchLabels": labels}})
}

#[test]
fn pods_get_the_policies_their_connections_need_and_the_log_gives_the_same() {
    let runtime = &V1_7;
    let _one = runtime.lock();
    require_root();
    let _plugin = start_plugin(runtime);
    let ns = unique("igt-np");
    let other_ns = unique("igt-np-other");
    let scratch = std::env::temp_dir().join(unique("igt-netpol"));
    std::fs::create_dir_all(&scratch).unwrap();
    let log = scratch.join("connections.log");
    let dir = scratch.join("policies");
    let selected = ["advise", "network-policy", "--k8s-namespace", &ns];
    let to_dir = IgChild::spawn_ready(
        &[&selected[..], &["--output-dir", dir.to_str().unwrap(), "--connections", log.to_str().unwrap()]]
            .concat(),
        "tracing started",
    );
    let json = IgChild::spawn_ready(&[&selected[..], &["-o", "json"]].concat(), "tracing started");

    let web = Pod::run_networked(
        runtime,
        &["sh", "-c", "while true; do echo hi | nc -l -p 8080; done"],
        &ns,
        json!({"app": "web", "tier": "front"}),
    );
    let web_ip = web.ipv4();
    // The host's end of the bridge exists once a pod is on it.
    let host = TcpListener::bind((runtime.gateway, 0)).expect("a server on the CNI bridge's host address");
    let host_port = host.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in host.incoming().take(1) {
            drop(c);
        }
    });
    // Retries until the web pod listens; the DNS query needs no answer.
    let client_script = format!(
        "until echo x | nc -w 2 {web_ip} 8080; do sleep 0.2; done; \
         echo y | nc -w 2 {gw} {host_port}; nslookup ig-netpol.invalid {gw} & sleep inf",
        gw = runtime.gateway
    );
    let client = Pod::run_networked(runtime, &["sh", "-c", &client_script], &ns, json!({"app": "client"}));
    let other = Pod::run_networked(
        runtime,
        &["sh", "-c", &format!("until echo z | nc -w 2 {web_ip} 8080; do sleep 0.2; done; sleep inf")],
        &other_ns,
        json!({"app": "other"}),
    );
    let other_ip = other.ipv4();

    let lines = wait_log(&log, &to_dir, |l| {
        has(l, &client, "OUTGOING", "tcp", 8080)
            && has(l, &client, "OUTGOING", "tcp", host_port)
            && has(l, &client, "OUTGOING", "udp", 53)
            && l.iter().filter(|c| c["pod"] == web.name.as_str() && c["pktType"] == "HOST").count() >= 2
    });
    // The unselected pod's own side is never recorded.
    assert!(lines.iter().all(|l| l["pod"] != other.name.as_str()), "{lines:?}");
    let to_web = lines.iter().find(|l| l["pod"] == client.name.as_str() && l["port"] == 8080).unwrap();
    assert_eq!(to_web["remoteKind"], "pod", "{to_web}");
    assert_eq!(to_web["remoteName"], web.name.as_str(), "{to_web}");
    assert_eq!(to_web["remoteAddr"], web_ip.as_str(), "{to_web}");
    assert_eq!(to_web["k8s"]["podName"], client.name.as_str(), "{to_web}");
    assert!(to_web["comm"].as_str().is_some_and(|c| c.contains("nc")), "{to_web}");

    for ig in [&to_dir, &json] {
        stop(ig);
    }
    let live = policies_by_name(&stdout_after_stop(&json));
    let web_policy = &live[&format!("{}-network", web.name)];
    let client_policy = &live[&format!("{}-network", client.name)];
    assert_eq!(live.len(), 2, "one policy per selected pod, none for {}: {live:?}", other.name);

    assert_eq!(web_policy["metadata"]["namespace"], ns.as_str());
    assert_eq!(web_policy["spec"]["podSelector"], json!({"matchLabels": {"app": "web", "tier": "front"}}));
    assert_eq!(web_policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    let port_8080 = json!([{"port": 8080, "protocol": "TCP"}]);
    let mut web_ingress = web_policy["spec"]["ingress"].as_array().expect("web's ingress").clone();
    web_ingress.sort_by_key(|r| r.to_string());
    let mut want = vec![
        json!({"from": [pod_peer(&client, json!({"app": "client"}))], "ports": port_8080}),
        json!({"from": [pod_peer(&other, json!({"app": "other"}))], "ports": port_8080}),
    ];
    want.sort_by_key(|r| r.to_string());
    assert_eq!(web_ingress, want, "web's ingress: from the client and the other namespace's pod");
    assert!(web_policy["spec"]["egress"].is_null(), "web opened nothing: {web_policy}");

    assert_eq!(client_policy["spec"]["podSelector"], json!({"matchLabels": {"app": "client"}}));
    assert!(client_policy["spec"]["ingress"].is_null(), "nothing connected to the client: {client_policy}");
    let mut host_ports =
        vec![json!({"port": 53, "protocol": "UDP"}), json!({"port": host_port, "protocol": "TCP"})];
    host_ports.sort_by_key(|p| p["port"].as_u64());
    let mut client_egress = client_policy["spec"]["egress"].as_array().expect("client's egress").clone();
    client_egress.sort_by_key(|r| r.to_string());
    let mut want = vec![
        json!({"to": [pod_peer(&web, json!({"app": "web", "tier": "front"}))], "ports": port_8080}),
        json!({"to": [{"ipBlock": {"cidr": format!("{}/32", runtime.gateway)}}], "ports": host_ports}),
    ];
    want.sort_by_key(|r| r.to_string());
    assert_eq!(client_egress, want, "client's egress: the web pod, and the host by address");
    assert!(
        !live.values().any(|p| p.to_string().contains(&other_ip)),
        "a pod peer named by address: {live:?}"
    );

    // --output-dir: the same policies as YAML, one file each, valid.
    assert!(to_dir.wait_stderr("written to", Duration::from_secs(20)), "{}", to_dir.stderr_text());
    std::thread::sleep(Duration::from_millis(300));
    for (name, policy) in &live {
        let path: PathBuf = dir.join(format!("{ns}_{name}.yaml"));
        validate(&path);
        let text = std::fs::read_to_string(&path).unwrap();
        let python = harness().python;
        let mut to_json = Command::new(&python)
            .args(["-c", "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut to_json.stdin.take().unwrap(), text.as_bytes()).unwrap();
        let parsed: Value = serde_json::from_slice(&to_json.wait_with_output().unwrap().stdout)
            .unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()));
        assert_eq!(&parsed, policy, "{} says what -o json says", path.display());
    }

    // --input: the log alone gives the same policies, without eBPF.
    let from_log = Command::new(binary("ig"))
        .args(["advise", "network-policy", "-o", "json", "--input"])
        .arg(&log)
        .output()
        .expect("ig");
    assert!(from_log.status.success(), "{}", String::from_utf8_lossy(&from_log.stderr));
    assert_eq!(policies_by_name(&String::from_utf8_lossy(&from_log.stdout)), live);
    let _ = std::fs::remove_dir_all(&scratch);
}
