//! Real etcd clusters on loopback (Debian's `etcd-server`, installed by the
//! test command), one process per member with its own data directory;
//! members are killed when dropped (or one by one, to test faults).

use crate::process::free_port;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One etcd member.
pub struct Member {
    child: Option<Child>,
    /// Its client URL.
    pub client_url: String,
}

/// A cluster of etcd members.
pub struct EtcdCluster {
    /// The members, in order.
    pub members: Vec<Member>,
    _dir: tempfile::TempDir,
}

impl EtcdCluster {
    /// Starts `n` members (1 or 3, say) configured as Fogplane needs
    /// (`--max-txn-ops 16384 --max-request-bytes 33554432`), and waits until
    /// the cluster answers reads.
    pub async fn start(n: usize) -> EtcdCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let initial: Vec<String> =
            ports.iter().enumerate().map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}")).collect();
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| {
                let client_url = format!("http://127.0.0.1:{client}");
                let peer_url = format!("http://127.0.0.1:{peer}");
                let data = dir.path().join(format!("m{i}"));
                let log = std::fs::File::create(dir.path().join(format!("m{i}.log"))).expect("log");
                let child = Command::new("etcd")
                    .args(["--name", &format!("m{i}")])
                    .arg("--data-dir")
                    .arg(&data)
                    .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
                    .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
                    .args(["--initial-cluster", &initial.join(","), "--initial-cluster-state", "new"])
                    .args(["--max-txn-ops", "16384", "--max-request-bytes", "33554432"])
                    .args(["--logger", "zap", "--log-level", "warn"])
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .expect("start etcd (Debian's etcd-server; scripts/deps.sh installs it)");
                Member { child: Some(child), client_url }
            })
            .collect();
        let cluster = EtcdCluster { members, _dir: dir };
        cluster.wait_ready(Duration::from_secs(30)).await;
        cluster
    }

    /// Every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// Waits until a read through the live members succeeds (a leader exists).
    pub async fn wait_ready(&self, deadline: Duration) {
        let started = Instant::now();
        let live: Vec<String> =
            self.members.iter().filter(|m| m.child.is_some()).map(|m| m.client_url.clone()).collect();
        loop {
            if let Ok(mut c) = etcd_client::Client::connect(&live, None).await
                && c.get("ready", None).await.is_ok()
            {
                return;
            }
            assert!(started.elapsed() < deadline, "etcd did not become ready within {deadline:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills member `i` (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
