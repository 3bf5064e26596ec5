//! `fogctl`, the real binary, against a running coordinator: the commands a
//! user types, their output and their exit codes.

use fog_e2e::process::binary;
use fog_e2e::*;
use std::process::Output;

/// Where fogctl keeps its saved credentials in these tests (one per test process).
fn config_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

async fn fogctl(url: &str, args: &[&str]) -> Output {
    fogctl_stdin(url, args, "").await
}

async fn fogctl_stdin(url: &str, args: &[&str], stdin: &str) -> Output {
    use tokio::io::AsyncWriteExt as _;
    let mut cmd = tokio::process::Command::new(binary("fogctl"));
    cmd.arg("--coordinator").arg(url).args(args).env("FOGCTL_CONFIG_DIR", config_dir()).env_remove("FOG_TOKEN");
    cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("fogctl runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .expect("fogctl finished in time")
        .expect("fogctl runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fogctl_submits_waits_lists_and_reports_errors_with_exit_codes() {
    let c = Coord::start().await;
    let url = format!("http://{}", c.running.as_ref().unwrap().addr);
    let _nodes = c.nodes("cli", 2, 2000);
    c.wait_healthy(2).await;

    // Not signed in: exit 6 and a hint that says how.
    let o = fogctl(&url, &["status"]).await;
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(text(&o).contains("fogctl login"), "{}", text(&o));
    let o = fogctl_stdin(&url, &["login", "-u", "admin", "--password-stdin"], "wrong password\n").await;
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    let o = fogctl_stdin(&url, &["login", "-u", "admin", "--password-stdin"], &format!("{ADMIN_PASSWORD}\n")).await;
    assert!(o.status.success(), "{}", text(&o));
    let o = fogctl(&url, &["whoami"]).await;
    assert!(text(&o).contains("admin (admin)"), "{}", text(&o));

    let o = fogctl(&url, &["status"]).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("scheduler"), "{}", text(&o));

    let o = fogctl(&url, &["tasks", "submit", "--echo", "hi from fogctl", "--tier", "silver", "--wait"]).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("hi from fogctl"), "{}", text(&o));

    let o = fogctl(&url, &["-o", "json", "tasks", "list"]).await;
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    let tasks = v["tasks"].as_array().expect("tasks array");
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["state"], "TASK_STATE_SUCCEEDED");
    let id = tasks[0]["id"].as_str().unwrap().to_string();

    let o = fogctl(&url, &["tasks", "get", &id]).await;
    assert!(o.status.success() && text(&o).contains(&id), "{}", text(&o));
    // A trace context that is not W3C's is a usage error, named.
    let o = fogctl(&url, &["--traceparent", "00-not-a-trace-01", "tasks", "get", &id]).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--traceparent"), "{}", text(&o));

    let o = fogctl(&url, &["-o", "json", "nodes", "list"]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    assert_eq!(v["nodes"].as_array().map(|a| a.len()), Some(2), "{v}");

    let o = fogctl(&url, &["topology"]).await;
    assert!(o.status.success(), "{}", text(&o));

    // A failing task: exit 1 with --wait.
    let o = fogctl(&url, &["tasks", "submit", "--fail", "on purpose", "--retries", "0", "--wait"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // Not found: exit 4.
    let o = fogctl(&url, &["tasks", "get", "t-doesnotexist"]).await;
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));

    // Invalid: exit 5 and the field is named.
    let o = fogctl(&url, &["nodes", "get", "NOT_AN_ID"]).await;
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(text(&o).contains("node_id"), "{}", text(&o));

    // An API token for automation: a viewer token reads but may not submit.
    let o = fogctl(&url, &["token", "create", "--name", "dashboard", "--role", "viewer", "--ttl", "1h"]).await;
    assert!(o.status.success(), "{}", text(&o));
    let secret = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(secret.starts_with("fogapi_"), "{secret}");
    let o = fogctl(&url, &["--token", &secret, "nodes", "list"]).await;
    assert!(o.status.success(), "{}", text(&o));
    let o = fogctl(&url, &["--token", &secret, "tasks", "submit", "--echo", "no"]).await;
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(text(&o).contains("requires role operator"), "{}", text(&o));
    let o = fogctl(&url, &["-o", "json", "token", "list"]).await;
    let id = text(&o)
        .lines()
        .find(|l| l.contains("dashboard"))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_string())
        .expect("token listed");
    let o = fogctl(&url, &["token", "revoke", &id]).await;
    assert!(o.status.success(), "{}", text(&o));
    let o = fogctl(&url, &["--token", &secret, "nodes", "list"]).await;
    assert_eq!(o.status.code(), Some(6), "revoked at once: {}", text(&o));

    // Sign out: the saved session ends.
    let o = fogctl(&url, &["logout"]).await;
    assert!(o.status.success(), "{}", text(&o));
    let o = fogctl(&url, &["status"]).await;
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));

    // Unreachable: exit 3 with a hint.
    let port = fog_e2e::process::free_port();
    let o = fogctl(&format!("http://127.0.0.1:{port}"), &["status"]).await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fogctl_submit_count_paces_itself_under_the_write_limit() {
    // 40 submits against 5 writes/s (burst 10): without pacing, most would fail.
    let c = Coord::start_with(|cfg| cfg.auth.limits.write_rps = 5).await;
    let url = format!("http://{}", c.running.as_ref().unwrap().addr);
    let _nodes = c.nodes("paced", 2, 4000);
    c.wait_healthy(2).await;
    let o = fogctl_stdin(&url, &["login", "-u", "admin", "--password-stdin"], &format!("{ADMIN_PASSWORD}\n")).await;
    assert!(o.status.success(), "{}", text(&o));
    let o = fogctl(&url, &["tasks", "submit", "--echo", "paced", "--count", "40"]).await;
    assert!(o.status.success(), "{}", text(&o));
    let ids: Vec<&str> = std::str::from_utf8(&o.stdout).unwrap().lines().filter(|l| l.starts_with("t-")).collect();
    assert_eq!(ids.len(), 40, "{}", text(&o));
}

/// fogctl with its own config directory and no --coordinator: what the context supplies.
async fn fogctl_in(dir: &std::path::Path, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(binary("fogctl"));
    cmd.args(args).env("FOGCTL_CONFIG_DIR", dir);
    for var in ["FOG_TOKEN", "FOG_COORDINATOR", "FOG_CA_FILE", "FOGCTL_CONTEXT", "TRACEPARENT"] {
        cmd.env_remove(var);
    }
    tokio::time::timeout(DEADLINE, cmd.output()).await.expect("fogctl finished in time").expect("fogctl runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fogctl_contexts_node_admin_yaml_spec_files_and_completions() {
    let c = Coord::start().await;
    let url = format!("http://{}", c.running.as_ref().unwrap().addr);
    let nodes = c.nodes("adm", 2, 2000);
    c.wait_healthy(2).await;
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();

    // A named context supplies the coordinator and the token.
    let o = fogctl_in(dir, &["config", "set-context", "local", "--coordinator", &url, "--token", &c.admin_token]).await;
    assert!(o.status.success(), "{}", text(&o));
    let o = fogctl_in(dir, &["config", "get-contexts"]).await;
    assert!(
        text(&o).contains(&url) && text(&o).lines().any(|l| l.starts_with("*") && l.contains("local")),
        "{}",
        text(&o)
    );
    let o = fogctl_in(dir, &["status"]).await;
    assert!(o.status.success(), "the current context is used: {}", text(&o));
    let o = fogctl_in(dir, &["--context", "staging", "status"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("get-contexts"), "{}", text(&o));
    let o = fogctl_in(dir, &["config", "current-context"]).await;
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "local");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("config.yaml")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the file holds a token: owner only ({mode:o})");
    }

    // Node admin, read back as YAML and JSON.
    let o = fogctl_in(dir, &["nodes", "cordon", "adm-0"]).await;
    assert!(o.status.success() && text(&o).contains("cordoned"), "{}", text(&o));
    let o = fogctl_in(dir, &["-o", "yaml", "nodes", "get", "adm-0"]).await;
    let doc: serde_json::Value = serde_yaml_ng::from_slice(&o.stdout).expect("YAML");
    assert_eq!(doc["node"]["cordoned"], true, "{}", text(&o));
    assert!(fogctl_in(dir, &["nodes", "uncordon", "adm-0"]).await.status.success());
    let o = fogctl_in(dir, &["-o", "json", "nodes", "label", "adm-0", "rack=r1", "zone=z9"]).await;
    let node: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(node["cordoned"], false);
    let labels = node["labels"].to_string();
    assert!(labels.contains("rack") && labels.contains("z9"), "{labels}");
    let o = fogctl_in(dir, &["-o", "json", "nodes", "label", "adm-0", "rack-"]).await;
    assert!(!String::from_utf8_lossy(&o.stdout).contains("rack"), "{}", text(&o));
    let o = fogctl_in(dir, &["nodes", "label", "adm-0", "rack"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = fogctl_in(dir, &["-o", "json", "nodes", "maintenance", "adm-1", "on"]).await;
    let node: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(node["maintenance"], true, "{node}");
    assert!(fogctl_in(dir, &["nodes", "maintenance", "adm-1", "off"]).await.status.success());
    let o = fogctl_in(dir, &["nodes", "drain", "adm-1"]).await;
    assert!(o.status.success() && text(&o).contains("draining"), "{}", text(&o));
    // Its simulator stops first: in --insecure-dev a running node would simply register again
    // (with mTLS its certificate is revoked; see identity.rs).
    nodes[1].stop();
    let o = fogctl_in(dir, &["nodes", "remove", "adm-1"]).await;
    assert!(o.status.success() && text(&o).contains("removed"), "{}", text(&o));
    let o = fogctl_in(dir, &["nodes", "get", "adm-1"]).await;
    assert_eq!(o.status.code(), Some(4), "a removed node is not found: {}", text(&o));

    // A task from a YAML spec file; the file and spec flags exclude each other.
    let spec = dir.join("task.yaml");
    std::fs::write(&spec, "name: from-file\necho: hello from a file\ntier: gold\n").unwrap();
    let spec = spec.to_str().unwrap();
    let o = fogctl_in(dir, &["-o", "yaml", "tasks", "submit", "-f", spec, "--wait"]).await;
    assert!(o.status.success(), "{}", text(&o));
    let task: serde_json::Value = serde_yaml_ng::from_slice(&o.stdout).expect("YAML");
    assert_eq!(task["state"], "TASK_STATE_SUCCEEDED", "{task}");
    assert_eq!(task["spec"]["sla_tier"], "SLA_TIER_GOLD", "{task}");
    // Watching given tasks shows progress and ends when they have.
    let o = fogctl_in(dir, &["tasks", "watch", task["id"].as_str().unwrap()]).await;
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("progress: 1/1 finished (1 succeeded"), "{}", text(&o));
    let o = fogctl_in(dir, &["tasks", "submit", "-f", spec, "--echo", "x"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    std::fs::write(dir.join("bad.yaml"), "ech0: typo\n").unwrap();
    let o = fogctl_in(dir, &["tasks", "submit", "-f", dir.join("bad.yaml").to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("ech0"), "the unknown key is named: {}", text(&o));

    // Signing key rotation (admin): the next sign-in gets a token with the new key, and the
    // token in the context (an older key) still works.
    let o = fogctl_in(dir, &["token", "rotate-signing-key"]).await;
    assert!(o.status.success() && text(&o).contains("new signing key"), "{}", text(&o));
    assert!(fogctl_in(dir, &["status"]).await.status.success());

    // Shell completions.
    let o = fogctl_in(dir, &["completion", "bash"]).await;
    assert!(o.status.success() && text(&o).contains("_fogctl") && text(&o).contains("set-context"), "{}", text(&o));
}
