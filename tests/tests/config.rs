//! Bad configuration is refused before any port is bound: exit code 64 and a
//! message that says what to change.

use fog_e2e::process::{binary, free_port};
use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(binary("fog-coordinator")).args(args).env("FOG_LOG", "error").output().expect("runs");
    (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn bad_settings_exit_64_with_a_clear_message_and_bind_nothing() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("never-created");
    let data = data.to_str().unwrap();

    let (code, err) = run(&["--listen", &listen, "--data-dir", data, "--trust-domain", "Not A Domain"]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("--trust-domain"), "names the setting: {err}");

    let (code, err) = run(&["--listen", &listen, "--data-dir", data, "--tls-san", "bad name!"]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("--tls-san"), "{err}");

    let (code, err) = run(&["--insecure-dev", "--listen", &listen, "--data-dir", data, "--heartbeat-interval", "1ms"]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("--heartbeat-interval"), "{err}");

    let (code, err) = run(&[
        "--insecure-dev",
        "--listen",
        &listen,
        "--data-dir",
        data,
        "--offline-grace",
        "100ms",
        "--heartbeat-interval",
        "1s",
    ]);
    assert_eq!(code, Some(64), "{err}");

    let (code, err) = run(&["--insecure-dev", "--listen", "not-an-address", "--data-dir", data]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("--listen"), "{err}");

    // etcd: https:// needs the CA; TLS files need https://; a certificate needs its key.
    let etcd = |extra: &[&str]| {
        let mut args = vec!["--insecure-dev", "--listen", &listen, "--data-dir", data, "--store", "etcd"];
        args.extend_from_slice(extra);
        run(&args)
    };
    let (code, err) = etcd(&["--etcd-endpoints", "https://127.0.0.1:1"]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("--etcd-ca"), "{err}");
    let (code, err) = etcd(&["--etcd-endpoints", "http://127.0.0.1:1", "--etcd-ca", "/etc/hostname"]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("need https://"), "{err}");
    let (code, err) = etcd(&["--etcd-endpoints", "https://127.0.0.1:1,http://127.0.0.1:2", "--etcd-ca", "/x"]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("mixes"), "{err}");
    let (code, err) = etcd(&["--etcd-endpoints", "https://127.0.0.1:1", "--etcd-ca", "/x", "--etcd-cert", "/y"]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("--etcd-key"), "{err}");
    let (code, err) = etcd(&["--etcd-endpoints", "https://127.0.0.1:1", "--etcd-ca", "/nonexistent/ca.pem"]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("--etcd-ca /nonexistent/ca.pem"), "names the flag and the file: {err}");

    // Nothing was bound or written while refusing.
    assert!(std::net::TcpListener::bind(&listen).is_ok(), "port still free");
    assert!(!std::path::Path::new(data).exists(), "no store created");
}
