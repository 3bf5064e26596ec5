//! A real `fog-coordinator` for a benchmark: its own data directory, an admin
//! created offline, an API token for the load generator, and the limits a
//! production coordinator puts on one address and one identity lifted (the
//! load generator is one address and one identity pushing flat out).

use crate::procs::{Proc, free_port, sibling, wait_listening};
use fog_proto::v1 as pb;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

/// A running coordinator.
pub struct Coord {
    /// The process.
    pub proc: Proc,
    /// Where it serves gRPC.
    pub addr: SocketAddr,
    /// An admin API token.
    pub token: String,
}

const PASSWORD: &str = "fog-bench-password-0123456789";

/// The flags that lift per-address and per-identity limits.
fn lifted() -> Vec<String> {
    let mut v = Vec::new();
    for flag in [
        "--limit-ip-rps",
        "--limit-node-rps",
        "--limit-read-rps",
        "--limit-write-rps",
        "--limit-watch-rps",
        "--max-watches",
        "--max-inflight",
        "--max-inflight-per-identity",
        "--session-msg-rate",
        "--session-msg-burst",
    ] {
        v.push(flag.to_string());
        v.push("10000000".to_string());
    }
    v
}

/// Creates the bench's admin in `data_dir` (offline, before the coordinator starts).
pub fn create_admin(data_dir: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let mut child = std::process::Command::new(sibling("fog-coordinator")?)
        .args(["admin", "create", "--username", "bench", "--role", "admin", "--password-stdin", "--data-dir"])
        .arg(data_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    writeln!(child.stdin.take().expect("piped stdin"), "{PASSWORD}")?;
    let out = child.wait_with_output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    anyhow::ensure!(out.status.success() || err.contains("already exists"), "admin create failed: {err}");
    Ok(())
}

impl Coord {
    /// Starts a coordinator on a fresh data directory under `dir`.
    pub async fn start(dir: &Path, extra: &[&str]) -> anyhow::Result<Coord> {
        let data_dir = dir.join(format!("coord-{}", free_port()?));
        std::fs::create_dir_all(&data_dir)?;
        create_admin(&data_dir)?;
        Coord::start_in(&data_dir, extra, None).await
    }

    /// Starts a coordinator on an existing data directory (with the bench
    /// admin), on `addr` or a free loopback port.
    pub async fn start_in(data_dir: &Path, extra: &[&str], addr: Option<SocketAddr>) -> anyhow::Result<Coord> {
        let addr = match addr {
            Some(a) => a,
            None => ([127, 0, 0, 1], free_port()?).into(),
        };
        let mut flags: Vec<String> =
            ["--insecure-dev", "--listen", &addr.to_string(), "--data-dir"].iter().map(|s| s.to_string()).collect();
        flags.push(data_dir.display().to_string());
        flags.extend(lifted());
        flags.extend(extra.iter().map(|s| s.to_string()));
        let log = data_dir.with_extension("log");
        let mut proc = Proc::start(sibling("fog-coordinator")?, &flags, &log)?;
        wait_listening(&mut proc, addr).await?;
        let token = api_token(addr).await?;
        Ok(Coord { proc, addr, token })
    }

    /// `n` channels, each its own HTTP/2 connection.
    pub async fn channels(&self, n: usize) -> anyhow::Result<Vec<Channel>> {
        connect(self.addr, n).await
    }

    /// A task service client with the admin token.
    pub fn tasks(&self, ch: Channel) -> pb::task_service_client::TaskServiceClient<Authed> {
        pb::task_service_client::TaskServiceClient::with_interceptor(ch, bearer(&self.token))
    }

    /// A topology service client with the admin token.
    pub fn topology(&self, ch: Channel) -> pb::topology_service_client::TopologyServiceClient<Authed> {
        pb::topology_service_client::TopologyServiceClient::with_interceptor(ch, bearer(&self.token))
    }

    /// A fleet service client with the admin token.
    pub fn fleet(&self, ch: Channel) -> pb::fleet_service_client::FleetServiceClient<Authed> {
        pb::fleet_service_client::FleetServiceClient::with_interceptor(ch, bearer(&self.token))
    }
}

/// A channel that sends a bearer token.
pub type Authed = InterceptedService<Channel, Bearer>;

/// Adds `authorization: Bearer …`.
#[derive(Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

pub fn bearer(token: &str) -> Bearer {
    Bearer(format!("Bearer {token}").parse().expect("a token is ASCII"))
}

/// `n` channels to `addr`, each its own HTTP/2 connection.
pub async fn connect(addr: SocketAddr, n: usize) -> anyhow::Result<Vec<Channel>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        // `connect` on a fresh endpoint opens a connection of its own.
        let ep = Endpoint::from_shared(format!("http://{addr}"))?.tcp_nodelay(true);
        out.push(ep.connect().await?);
    }
    Ok(out)
}

/// Signs the bench admin in and creates a 24-hour admin API token.
async fn api_token(addr: SocketAddr) -> anyhow::Result<String> {
    let ch = connect(addr, 1).await?.remove(0);
    let mut auth = pb::auth_service_client::AuthServiceClient::new(ch.clone());
    let signed =
        auth.sign_in(pb::SignInRequest { username: "bench".into(), password: PASSWORD.into() }).await?.into_inner();
    let access = signed.tokens.map(|t| t.access_token).unwrap_or_default();
    let mut auth = pb::auth_service_client::AuthServiceClient::with_interceptor(ch, bearer(&access));
    let created = auth
        .create_api_token(pb::CreateApiTokenRequest {
            name: "fog-bench".into(),
            role: pb::Role::Admin as i32,
            ttl: Some(prost_types::Duration { seconds: 24 * 3600, nanos: 0 }),
        })
        .await?
        .into_inner();
    Ok(created.secret)
}

/// Waits until `check` holds (polling every 50 ms), or fails after `limit`.
pub async fn until<F, Fut>(what: &str, limit: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + limit;
    while !check().await {
        anyhow::ensure!(std::time::Instant::now() < deadline, "{what}: not after {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
