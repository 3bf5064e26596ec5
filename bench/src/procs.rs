//! The processes a benchmark starts, and what it reads about them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A child process, killed when dropped.
pub struct Proc {
    child: tokio::process::Child,
}

impl Proc {
    /// Starts `program args…` with its output (logs at warn, or `FOG_BENCH_LOG`) in `log`.
    pub fn start(program: PathBuf, args: &[String], log: &std::path::Path) -> anyhow::Result<Proc> {
        // Appended: a restarted process's log follows its predecessor's.
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
        let child = tokio::process::Command::new(&program)
            .args(args)
            .env("FOG_LOG", std::env::var("FOG_BENCH_LOG").unwrap_or_else(|_| "warn,fog::lifecycle=info".into()))
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {}: {e}", program.display()))?;
        Ok(Proc { child })
    }

    /// Asks the process to stop (SIGTERM) and waits for it to exit, at most `limit`.
    pub async fn terminate(&mut self, limit: Duration) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status()?;
        }
        tokio::time::timeout(limit, self.child.wait())
            .await
            .map_err(|_| anyhow::anyhow!("the process did not exit within {limit:?} of SIGTERM"))??;
        Ok(())
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// CPU seconds the process has used (user + system), from /proc.
    pub fn cpu_seconds(&self) -> f64 {
        self.child.id().map_or(0.0, |pid| cpu_seconds_of(&pid.to_string()))
    }

    /// Resident set size in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let Some(pid) = self.child.id() else { return 0 };
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:").and_then(|v| v.split_whitespace().next()?.parse().ok()))
            .unwrap_or(0)
    }
}

/// CPU seconds this process (the load generator) has used, user + system.
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds_of("self")
}

/// CPU seconds (user + system) of `/proc/<pid>`, 0 if it cannot be read.
fn cpu_seconds_of(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces), 1-based: utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // USER_HZ is 100 on Linux whatever the kernel's HZ.
    (ticks(14) + ticks(15)) / 100.0
}

/// A binary next to this one (the same `target/<profile>` directory).
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let mut p = std::env::current_exe()?;
    p.pop();
    let p = p.join(name);
    anyhow::ensure!(
        p.exists(),
        "{} is missing: build it first (cargo build --release -p fog-coordinator -p fog-bench)",
        p.display()
    );
    Ok(p)
}

/// A free loopback port.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until `server` accepts connections on `addr` (deadline 30 s; fails at once if it exits).
pub async fn wait_listening(server: &mut Proc, addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if let Some(status) = server.child.try_wait()? {
            anyhow::bail!("the server for {addr} exited ({status}) before listening");
        }
        anyhow::ensure!(Instant::now() < deadline, "nothing listens on {addr} after 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
