//! Real etcd clusters on loopback (Debian's `etcd-server`, installed by the
//! test command), one process per member with its own data directory;
//! members are killed when dropped (or one by one, to test faults).

use crate::process::free_port;
use fog_coordinator::store::{EtcdStore, EtcdTls};
use std::path::{Path, PathBuf};
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
    /// With TLS: the CA and a client certificate etcd accepts.
    pub tls: Option<EtcdTls>,
    /// With TLS: where the CA, client certificate and key files are.
    pub tls_files: Option<(PathBuf, PathBuf, PathBuf)>,
    _dir: tempfile::TempDir,
}

/// A test PKI for etcd: a CA, a serving certificate for 127.0.0.1 and
/// localhost, and a client certificate, written as PEM files in `dir`.
/// Returns the client's TLS settings and the (ca, client cert, client key)
/// and (server cert, server key) paths.
fn etcd_pki(dir: &Path) -> (EtcdTls, (PathBuf, PathBuf, PathBuf), (PathBuf, PathBuf)) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        SanType,
    };
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "test etcd CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_pem = ca.clone().self_signed(&ca_key).expect("CA").pem();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |cn: &str, sans: Vec<SanType>, eku: Vec<ExtendedKeyUsagePurpose>| {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = sans;
        p.extended_key_usages = eku;
        (p.signed_by(&key, &issuer).expect("leaf").pem(), key.serialize_pem())
    };
    let server = leaf(
        "etcd",
        vec![SanType::DnsName("localhost".try_into().unwrap()), SanType::IpAddress([127, 0, 0, 1].into())],
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth],
    );
    let client = leaf("fogplane", Vec::new(), vec![ExtendedKeyUsagePurpose::ClientAuth]);
    let write = |name: &str, pem: &str| {
        let p = dir.join(name);
        std::fs::write(&p, pem).expect("write PEM");
        p
    };
    let files = (write("ca.pem", &ca_pem), write("client.pem", &client.0), write("client.key", &client.1));
    let server_files = (write("server.pem", &server.0), write("server.key", &server.1));
    (EtcdTls { ca_pem, identity: Some(client) }, files, server_files)
}

impl EtcdCluster {
    /// Starts `n` members (1 or 3, say) configured as Fogplane needs
    /// (`--max-txn-ops 16384 --max-request-bytes 33554432`), and waits until
    /// the cluster answers reads.
    pub async fn start(n: usize) -> EtcdCluster {
        Self::start_with(n, false).await
    }

    /// As [`EtcdCluster::start`], clients over TLS with a client certificate
    /// required (`--client-cert-auth`), from a test CA.
    pub async fn start_tls(n: usize) -> EtcdCluster {
        Self::start_with(n, true).await
    }

    async fn start_with(n: usize, tls: bool) -> EtcdCluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = tls.then(|| etcd_pki(dir.path()));
        let scheme = if tls { "https" } else { "http" };
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let initial: Vec<String> =
            ports.iter().enumerate().map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}")).collect();
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| {
                let client_url = format!("{scheme}://127.0.0.1:{client}");
                let peer_url = format!("http://127.0.0.1:{peer}");
                let data = dir.path().join(format!("m{i}"));
                let log = std::fs::File::create(dir.path().join(format!("m{i}.log"))).expect("log");
                let mut etcd = Command::new("etcd");
                if let Some((_, (ca, _, _), (cert, key))) = &pki {
                    etcd.arg("--cert-file").arg(cert).arg("--key-file").arg(key);
                    etcd.arg("--trusted-ca-file").arg(ca).arg("--client-cert-auth");
                }
                let child = etcd
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
        let (tls, tls_files) = match pki {
            Some((tls, files, _)) => (Some(tls), Some(files)),
            None => (None, None),
        };
        let cluster = EtcdCluster { members, tls, tls_files, _dir: dir };
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
            if let Ok(store) = EtcdStore::connect(&live, "/ready/", self.tls.as_ref()).await
                && store.client().clone().get("ready", None).await.is_ok()
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
