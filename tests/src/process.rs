//! Real `fog-coordinator` processes, for tests that need a crash (SIGKILL)
//! and a restart.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The path of a workspace binary, built by `cargo build --workspace`.
pub fn binary(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --workspace --bins` before the tests", path.display());
    path
}

/// A free loopback port (bound and released; the coordinator binds it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A coordinator child process; killed when dropped.
pub struct CoordinatorProcess {
    child: Child,
    /// Its gRPC URL.
    pub url: String,
    /// Its port.
    pub port: u16,
}

impl CoordinatorProcess {
    /// Starts `fog-coordinator --insecure-dev` on a free port with `data_dir`.
    pub fn start(data_dir: &Path, extra: &[&str]) -> CoordinatorProcess {
        Self::start_on(free_port(), data_dir, extra)
    }

    /// Starts one on a given port (to restart on the same address).
    pub fn start_on(port: u16, data_dir: &Path, extra: &[&str]) -> CoordinatorProcess {
        let child = Command::new(binary("fog-coordinator"))
            .args(["--insecure-dev", "--listen", &format!("127.0.0.1:{port}"), "--heartbeat-interval", "100ms"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("FOG_LOG", std::env::var("FOG_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn fog-coordinator");
        CoordinatorProcess { child, url: format!("http://127.0.0.1:{port}"), port }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for CoordinatorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
