//! Real `fog-coordinator` and `fog-agent` processes, for tests that need a
//! crash (SIGKILL), a pause (SIGSTOP) and a restart.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
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

    /// Starts one on a given port (to restart on the same address). The first
    /// start in a data directory creates the `admin` user offline first.
    pub fn start_on(port: u16, data_dir: &Path, extra: &[&str]) -> CoordinatorProcess {
        Self::start_with_env(port, data_dir, extra, &[])
    }

    /// Starts one on a given port with extra environment variables.
    pub fn start_with_env(port: u16, data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> CoordinatorProcess {
        create_admin_offline(data_dir);
        Self::spawn(port, data_dir, extra, env)
    }

    /// Starts one on a data directory used before, without touching it first
    /// (it may be unwritable: the start itself is under test).
    pub fn restart_on(port: u16, data_dir: &Path, extra: &[&str]) -> CoordinatorProcess {
        Self::spawn(port, data_dir, extra, &[])
    }

    fn spawn(port: u16, data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> CoordinatorProcess {
        let child = Command::new(binary("fog-coordinator"))
            .envs(env.iter().copied())
            .args(["--insecure-dev", "--listen", &format!("127.0.0.1:{port}"), "--heartbeat-interval", "100ms"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("FOG_LOG", std::env::var("FOG_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            // Logs go to stdout: warnings and errors show in the test's output.
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn fog-coordinator");
        CoordinatorProcess { child, url: format!("http://127.0.0.1:{port}"), port }
    }

    /// Signs in as `admin` (waiting for the coordinator to come up) and returns an access token.
    pub async fn admin_token(&self) -> String {
        sign_in(&self.url, None, "admin", crate::ADMIN_PASSWORD).await
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

    /// Its exit code, if it has exited.
    pub fn exit_code(&mut self) -> Option<i32> {
        self.child.try_wait().ok().flatten().and_then(|s| s.code())
    }
}

impl Drop for CoordinatorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `fog-coordinator admin create` for `admin` in `data_dir` unless it exists already.
pub fn create_admin_offline(data_dir: &Path) {
    let mut child = Command::new(binary("fog-coordinator"))
        .args(["admin", "create", "--username", "admin", "--password-stdin", "--data-dir"])
        .arg(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fog-coordinator admin create");
    use std::io::Write;
    writeln!(child.stdin.take().expect("stdin"), "{}", crate::ADMIN_PASSWORD).expect("write password");
    let out = child.wait_with_output().expect("admin create runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() || err.contains("already exists"), "admin create failed: {err}");
}

/// Signs in over gRPC (retrying while the coordinator starts) and returns the access token.
pub async fn sign_in(url: &str, ca_pem: Option<&str>, user: &str, password: &str) -> String {
    use fog_proto::v1 as pb;
    crate::eventually(&format!("sign in to {url}"), crate::DEADLINE, || async {
        let channel = match ca_pem {
            Some(ca) => {
                let tls = tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(tonic::transport::Certificate::from_pem(ca))
                    .domain_name("localhost");
                tonic::transport::Endpoint::from_shared(url.to_string())
                    .ok()?
                    .tls_config(tls)
                    .ok()?
                    .connect()
                    .await
                    .ok()?
            }
            None => tonic::transport::Endpoint::from_shared(url.to_string()).ok()?.connect().await.ok()?,
        };
        let r = fog_proto::v1::auth_service_client::AuthServiceClient::new(channel)
            .sign_in(pb::SignInRequest { username: user.into(), password: password.into() })
            .await
            .ok()?;
        r.into_inner().tokens.map(|t| t.access_token)
    })
    .await
}

/// Commands the test agents allow (`/bin/sh` only so tests can shape output;
/// a real policy would not list a shell).
pub const ALLOWED: &str = "/bin/echo,/bin/false,/bin/sleep,/bin/sh";

/// A `fog-agent run --insecure` child process; SIGKILLed when dropped.
pub struct AgentProcess {
    child: Child,
    /// Its state directory.
    pub state_dir: PathBuf,
}

impl AgentProcess {
    /// Starts an agent for `node_id` (quick reconnects, `ALLOWED` commands).
    pub fn start(url: &str, node_id: &str, state_dir: &Path, sys_root: &Path, extra: &[&str]) -> AgentProcess {
        Self::start_via(&[], url, node_id, state_dir, sys_root, extra)
    }

    /// Starts one through a wrapper command (`unshare ... sh -c 'exec "$0" "$@"'`,
    /// say) that ends by exec'ing the agent, so the pid stays the agent's.
    pub fn start_via(
        wrapper: &[&str],
        url: &str,
        node_id: &str,
        state_dir: &Path,
        sys_root: &Path,
        extra: &[&str],
    ) -> AgentProcess {
        let agent = binary("fog-agent");
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&agent);
                c
            }
            None => Command::new(&agent),
        };
        let child = cmd
            .args(["run", "--insecure", "--coordinator", url, "--node-id", node_id])
            .arg("--state-dir")
            .arg(state_dir)
            .arg("--sysfs-root")
            .arg(sys_root)
            .args(["--reconnect-min", "50ms", "--reconnect-max", "500ms", "--kill-grace", "500ms"])
            .args(["--allow-command", ALLOWED])
            .args(extra)
            .env("FOG_AGENT_LOG", std::env::var("FOG_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn fog-agent");
        AgentProcess { child, state_dir: state_dir.to_path_buf() }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGSTOP: the process is frozen, its connections stay open and silent
    /// (a partition the kernel does not report).
    pub fn pause(&self) {
        self.signal(Signal::SIGSTOP);
    }

    /// SIGCONT: the partition heals.
    pub fn resume(&self) {
        self.signal(Signal::SIGCONT);
    }

    fn signal(&self, s: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), s).expect("signal the agent");
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }

    /// Results the agent holds on disk, waiting for an ack.
    pub fn pending(&self) -> Vec<(String, u64)> {
        fog_agent::state::LocalState::pending_results(&self.state_dir).unwrap_or_default()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        // A paused process must be resumed to die promptly and let go of its files.
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGCONT);
        self.kill();
    }
}
