//! The real `fog-agent` binary against a real `fog-coordinator` process in
//! mTLS mode: join with a token (CA pinned by the token's fingerprint), the
//! mTLS session, a wrong CA fingerprint, token reuse and name binding,
//! certificate rotation over the live session, revocation.
//!
//! Needs `cargo build --workspace --bins` first (the binaries are looked up
//! next to the test executable).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fog_agent::identity::{CA_FILE, CERT_FILE, KEY_FILE, NODE_ID_FILE, RENEW_AT_FRACTION_ENV};
use fog_e2e::process::{binary, free_port};
use fog_e2e::*;
use fog_proto::v1 as pb;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// A `fog-coordinator` child process in mTLS mode; killed when dropped.
struct TlsCoordinator {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
    /// A client (TLS, no client certificate) with `Coord`'s helpers.
    client: Coord,
}

impl TlsCoordinator {
    async fn start(extra: &[&str]) -> TlsCoordinator {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        fog_e2e::process::create_admin_offline(dir.path());
        let child = Command::new(binary("fog-coordinator"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--heartbeat-interval", "100ms"])
            .arg("--data-dir")
            .arg(dir.path())
            .args(extra)
            .env("FOG_LOG", std::env::var("FOG_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn fog-coordinator");
        let url = format!("https://127.0.0.1:{port}");
        let ca_path = dir.path().join("ca.pem");
        let channel = eventually("the coordinator serves TLS", DEADLINE, || async {
            let ca = std::fs::read_to_string(&ca_path).ok()?;
            let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)).domain_name("localhost");
            Endpoint::from_shared(url.clone()).ok()?.tls_config(tls).ok()?.connect().await.ok()
        })
        .await;
        let ca = std::fs::read_to_string(&ca_path).unwrap();
        let admin_token = fog_e2e::process::sign_in(&url, Some(&ca), "admin", ADMIN_PASSWORD).await;
        let client = Coord::client(channel, admin_token);
        TlsCoordinator { child, url, dir, client }
    }

    async fn token(&self, name: &str) -> String {
        self.client
            .fleet()
            .create_join_token(pb::CreateJoinTokenRequest {
                ttl_seconds: 0,
                node_name: name.to_string(),
                labels: Vec::new(),
            })
            .await
            .expect("token created")
            .into_inner()
            .token
    }

    async fn liveness(&self, id: &str) -> Option<i32> {
        let r = self.client.fleet().get_node(pb::GetNodeRequest { node_id: id.to_string() }).await.ok()?;
        r.into_inner().node.map(|n| n.liveness)
    }

    async fn wait_healthy(&self, id: &str) {
        eventually(&format!("node {id} healthy"), DEADLINE, || async {
            (self.liveness(id).await? == pb::Liveness::Healthy as i32).then_some(())
        })
        .await;
    }
}

impl Drop for TlsCoordinator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `fog-agent join`.
fn join(url: &str, token: &str, state_dir: &Path, name: Option<&str>) -> Output {
    let mut cmd = Command::new(binary("fog-agent"));
    cmd.args(["join", "--token", token, "--coordinator", url]).arg("--state-dir").arg(state_dir);
    if let Some(n) = name {
        cmd.args(["--name", n]);
    }
    cmd.output().expect("run fog-agent join")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A `fog-agent run` child over mTLS, logging to a file; SIGKILLed when dropped.
struct Agent {
    child: Child,
    log: PathBuf,
}

impl Agent {
    fn start(state_dir: &Path, log: &Path, env: &[(&str, &str)]) -> Agent {
        let sys = state_dir.with_extension("sys");
        std::fs::create_dir_all(&sys).unwrap();
        let file = File::create(log).unwrap();
        let child = Command::new(binary("fog-agent"))
            .arg("run")
            .arg("--state-dir")
            .arg(state_dir)
            .arg("--sysfs-root")
            .arg(&sys)
            .args(["--reconnect-min", "50ms", "--reconnect-max", "300ms", "--kill-grace", "500ms"])
            .env("FOG_AGENT_LOG", "info")
            .envs(env.iter().copied())
            // The agent logs to stdout.
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawn fog-agent");
        Agent { child, log: log.to_path_buf() }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn count(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_joins_with_a_token_and_runs_tasks_over_mtls() {
    let c = TlsCoordinator::start(&[]).await;
    let dirs = tempfile::tempdir().unwrap();
    let state = dirs.path().join("state");
    let token = c.token("").await;
    let out = join(&c.url, &token, &state, Some("edge-tls-1"));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "edge-tls-1", "the node id is printed");
    for f in [KEY_FILE, CERT_FILE, CA_FILE, NODE_ID_FILE] {
        assert_eq!(mode(&state.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&state), 0o700);
    assert_eq!(
        std::fs::read_to_string(state.join(CA_FILE)).unwrap(),
        std::fs::read_to_string(c.dir.path().join("ca.pem")).unwrap(),
        "the pinned CA is the coordinator's"
    );
    // No --coordinator: `run` uses the one it joined; no --insecure: mTLS.
    let agent = Agent::start(&state, &dirs.path().join("agent.log"), &[]);
    c.wait_healthy("edge-tls-1").await;
    assert!(!agent.log().contains("insecure"), "{}", agent.log());
    let t = c.client.submit(echo("over mtls")).await;
    let done = c.client.wait_state(&t.id, pb::TaskState::Succeeded).await;
    assert_eq!(done.output.unwrap().stdout, b"over mtls");
    assert_eq!(done.attempts[0].node_id, "edge-tls-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_refuses_a_coordinator_whose_ca_does_not_match_the_token() {
    let c = TlsCoordinator::start(&[]).await;
    let dirs = tempfile::tempdir().unwrap();
    let token = c.token("").await;
    let wrong = format!("FOG1{}{}", "ab".repeat(32), &token[4 + 64..]);
    let state = dirs.path().join("wrong");
    let out = join(&c.url, &wrong, &state, Some("victim"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("the coordinator's CA does not match the token"), "{}", text(&out));
    assert!(!state.join(CERT_FILE).exists());
    // Join was never called: the genuine token (same id and secret) is unspent.
    let out = join(&c.url, &token, &dirs.path().join("right"), Some("victim"));
    assert!(out.status.success(), "the token is still usable: {}", text(&out));
    // Not a coordinator at all (nothing listening) is an error too, not a hang.
    let out = join(&format!("https://127.0.0.1:{}", free_port()), &token, &dirs.path().join("none"), None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // A malformed token is refused before connecting.
    let out = join(&c.url, "FOG1nonsense", &dirs.path().join("bad"), None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("malformed join token"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_token_and_a_name_bound_token_are_refused_clearly() {
    let c = TlsCoordinator::start(&[]).await;
    let dirs = tempfile::tempdir().unwrap();
    let token = c.token("").await;
    let out = join(&c.url, &token, &dirs.path().join("a"), Some("first"));
    assert!(out.status.success(), "{}", text(&out));
    let out = join(&c.url, &token, &dirs.path().join("b"), Some("second"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("already used"), "{}", text(&out));
    assert!(!dirs.path().join("b").join(CERT_FILE).exists());

    let bound = c.token("only-this").await;
    let out = join(&c.url, &bound, &dirs.path().join("c"), Some("someone-else"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("PermissionDenied") && text(&out).contains("only-this"), "{}", text(&out));
    // Joining twice into the same state dir is refused locally.
    let again = c.token("").await;
    let out = join(&c.url, &again, &dirs.path().join("a"), None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("already holds a node certificate"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_rotates_over_the_live_session() {
    let c = TlsCoordinator::start(&["--node-cert-ttl", "10m"]).await;
    let dirs = tempfile::tempdir().unwrap();
    let state = dirs.path().join("state");
    let out = join(&c.url, &c.token("").await, &state, Some("rotor"));
    assert!(out.status.success(), "{}", text(&out));
    let first_cert = std::fs::read_to_string(state.join(CERT_FILE)).unwrap();
    let first_key = std::fs::read_to_string(state.join(KEY_FILE)).unwrap();
    // 0.34 of the 15 min validity (10 min + 5 min backdating): ~6 s after issue.
    let agent = Agent::start(&state, &dirs.path().join("agent.log"), &[(RENEW_AT_FRACTION_ENV, "0.34")]);
    c.wait_healthy("rotor").await;
    let start = Instant::now();
    let mut checks = 0;
    loop {
        // The node stays healthy throughout.
        assert_eq!(c.liveness("rotor").await, Some(pb::Liveness::Healthy as i32), "{}", agent.log());
        checks += 1;
        // Logged once the key and certificate are both in place.
        if agent.count("node certificate renewed") >= 1 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no rotation: {}", agent.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(checks > 5);
    // A new key and certificate, and they belong together (read, not repaired:
    // the agent may be rotating again).
    let cert = std::fs::read_to_string(state.join(CERT_FILE)).unwrap();
    let key = std::fs::read_to_string(state.join(KEY_FILE)).unwrap();
    assert_ne!(cert, first_cert);
    assert_ne!(key, first_key);
    let info = fog_agent::identity::cert_info(&fog_agent::identity::cert_der(&cert).unwrap()).unwrap();
    let key = rcgen::KeyPair::from_pem(&key).unwrap();
    assert_eq!(info.spki, rcgen::PublicKeyData::subject_public_key_info(&key), "key and certificate match");
    assert_eq!(info.node_id.as_deref(), Some("rotor"));
    assert_eq!(mode(&state.join(KEY_FILE)), 0o600);
    assert_eq!(mode(&state.join(CERT_FILE)), 0o600);
    // The session was never lost: one session open, no loss.
    assert_eq!(agent.count("session open"), 1, "{}", agent.log());
    assert_eq!(agent.count("session lost"), 0, "{}", agent.log());
    let t = c.client.submit(echo("after rotation")).await;
    c.client.wait_state(&t.id, pb::TaskState::Succeeded).await;
    // The next connection uses the new certificate.
    drop(agent);
    let agent = Agent::start(&state, &dirs.path().join("agent2.log"), &[]);
    eventually("the restarted agent opens a session", DEADLINE, || async {
        (agent.count("session open") == 1).then_some(())
    })
    .await;
    c.wait_healthy("rotor").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_node_closes_the_agents_session_and_refuses_it_after() {
    let c = TlsCoordinator::start(&[]).await;
    let dirs = tempfile::tempdir().unwrap();
    let state = dirs.path().join("state");
    let out = join(&c.url, &c.token("").await, &state, Some("doomed"));
    assert!(out.status.success(), "{}", text(&out));
    let agent = Agent::start(&state, &dirs.path().join("agent.log"), &[]);
    c.wait_healthy("doomed").await;
    let removed = Instant::now();
    c.client.fleet().remove_node(pb::RemoveNodeRequest { node_id: "doomed".into() }).await.expect("removed");
    eventually("the agent's session closed", Duration::from_secs(5), || async {
        (agent.count("session lost") >= 1).then_some(())
    })
    .await;
    assert!(removed.elapsed() <= Duration::from_secs(1), "closed after {:?}", removed.elapsed());
    eventually("the agent's reconnect refused as revoked", DEADLINE, || async {
        (agent.count("session refused") >= 2 && agent.log().contains("revoked")).then_some(())
    })
    .await;
    // It never comes back.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        assert_eq!(c.liveness("doomed").await, None, "the removed node is back: {}", agent.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(agent.count("session open"), 1, "{}", agent.log());
}
