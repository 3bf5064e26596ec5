//! Assembles a running coordinator: store → writer → engine → gRPC server,
//! and takes it down in the reverse order.

mod coalesce;

use crate::api::{AuthApi, FleetApi, NodeApi, SystemApi, TaskApi, TopologyApi};
use crate::auth::{AuthLayer, Limits};
use crate::config::{Config, TlsSettings};
use crate::engine::{Engine, EngineConfig, EngineHandle};
use crate::identity::{CertificateAuthority, IdentityContext};
use crate::metrics::Metrics;
use crate::store::{Mutation, RedbStore, Snapshot, Store, spawn_writer_timed};
use fog_proto::v1::auth_service_server::AuthServiceServer;
use fog_proto::v1::fleet_service_server::FleetServiceServer;
use fog_proto::v1::node_service_server::NodeServiceServer;
use fog_proto::v1::system_service_server::SystemServiceServer;
use fog_proto::v1::task_service_server::TaskServiceServer;
use fog_proto::v1::topology_service_server::TopologyServiceServer;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// A running coordinator.
pub struct Running {
    /// The address gRPC is served on.
    pub addr: SocketAddr,
    /// The address Prometheus metrics are served on, if enabled.
    pub metrics_addr: Option<SocketAddr>,
    /// The engine, for in-process callers.
    pub engine: EngineHandle,
    shutdown: CancellationToken,
    store_stopped: CancellationToken,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    engine_task: tokio::task::JoinHandle<()>,
    writer_task: tokio::task::JoinHandle<()>,
    grace: Duration,
}

/// Opens the store, restores state, binds the port and serves.
pub async fn start(cfg: Config) -> anyhow::Result<Running> {
    let started = std::time::Instant::now();
    let store: Arc<dyn Store> = match &cfg.store {
        crate::config::StoreChoice::Redb => Arc::new(RedbStore::open(&cfg.data_dir)?),
        crate::config::StoreChoice::Etcd { endpoints, prefix, tls } => {
            Arc::new(crate::store::EtcdStore::connect(endpoints, prefix, tls.as_ref()).await?)
        }
    };
    start_on(cfg, store, started).await
}

/// Restores state from an open `store`, binds the port and serves
/// (`started`: when opening began, for the lifecycle log).
pub async fn start_on(cfg: Config, store: Arc<dyn Store>, started: std::time::Instant) -> anyhow::Result<Running> {
    start_replica(cfg, store, started, None).await
}

/// What a leader of several replicas (`--ha`) has beside a single
/// coordinator: the record of the sessions it holds itself, and the
/// directory of which replica holds each node's session.
#[derive(Debug, Clone)]
pub struct Replica {
    /// Sessions this replica holds, recorded under its own lease.
    pub owners: Arc<crate::ha::sessions::SessionOwners>,
    /// Every replica's records, followed with an etcd watch.
    pub directory: Arc<crate::ha::sessions::SessionDirectory>,
}

/// [`start_on`], as the leader of several replicas when `replica` is given.
pub async fn start_replica(
    cfg: Config,
    store: Arc<dyn Store>,
    started: std::time::Instant,
    replica: Option<Replica>,
) -> anyhow::Result<Running> {
    if cfg.tls.is_none() {
        warn!(
            "INSECURE DEV MODE: plaintext gRPC, node identity taken from hello messages; never use this in production"
        );
    }
    std::fs::create_dir_all(&cfg.data_dir)?;
    let opened_ms = started.elapsed().as_millis();
    let snapshot = store.load_recent(cfg.finished_tasks_kept).await?;
    info!(
        target: "fog::lifecycle",
        open_ms = opened_ms,
        load_ms = started.elapsed().as_millis() - opened_ms,
        tasks = snapshot.tasks.len(),
        finished_not_loaded = snapshot.finished_not_loaded,
        nodes = snapshot.nodes.len(),
        "store read"
    );
    let identity = match &cfg.tls {
        Some(tls) => Some(Arc::new(identity_context(tls, &snapshot, store.as_ref(), &cfg.data_dir).await?)),
        None => None,
    };
    let tls_config = match (&cfg.tls, &identity) {
        (Some(tls), Some(ctx)) => Some(server_tls(tls, ctx)?),
        _ => None,
    };
    let metrics = Arc::new(Metrics::new());
    let (writer, writer_task) = spawn_writer_timed(store.clone(), 8192, Some(metrics.store_commit.clone()));
    let store_stopped = writer.stopped();
    let mut ecfg = EngineConfig::from(&cfg);
    ecfg.identity = identity.clone();
    ecfg.metrics = metrics.clone();
    let session_queue = ecfg.session_queue;
    let (engine, engine_task) = Engine::start(ecfg, snapshot, writer);

    let (health_reporter, health) = tonic_health::server::health_reporter();
    for name in fog_proto::SERVICE_NAMES {
        health_reporter.set_service_status(*name, tonic_health::ServingStatus::Serving).await;
    }
    health_reporter.set_service_status("", tonic_health::ServingStatus::Serving).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(fog_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    let limits = Arc::new(Limits::new(cfg.auth.limits.clone()).with_metrics(metrics.clone()));
    let auth_layer = AuthLayer::new(engine.auth_view(), limits.clone());

    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    let metrics_listener = match cfg.metrics_listen {
        Some(at) => Some(
            tokio::net::TcpListener::bind(at)
                .await
                .map_err(|e| anyhow::anyhow!("cannot serve metrics on {at}: {e}"))?,
        ),
        None => None,
    };
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let mut builder = tonic::transport::Server::builder();
    // Writes are coalesced on plaintext connections only (see `coalesce`).
    let coalesce_writes = tls_config.is_none();
    if let Some(tls) = tls_config {
        builder = builder.tls_config(tls)?;
    }
    let kib = 1024;
    let router = builder
        // Many node sessions share few connections (one per agent, or a
        // simulator's handful); per-identity caps on watches live in the layer.
        .max_concurrent_streams(Some(16_384))
        // Node sessions are long-lived and mostly idle: keepalives find dead
        // peers the kernel would not report for minutes.
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(5)))
        // A unary call (or a stream's opening) that takes longer is cut off: a
        // client that never sends its body cannot hold a slot for ever.
        .timeout(Duration::from_secs(30))
        // Outermost: every call is counted, refused ones with their code.
        .layer(fog_telemetry::grpc::GrpcMetricsLayer::new(metrics.grpc.clone()))
        // Every request passes the auth layer: policy, credentials, roles, limits.
        .layer(auth_layer)
        .add_service(health)
        .add_service(reflection)
        // Largest request message per service: a hello lists up to 10,000
        // attempts and results carry up to 2 x 64 KiB; the rest are small.
        .add_service(
            AuthServiceServer::new(AuthApi::new(engine.clone(), limits.clone())).max_decoding_message_size(16 * kib),
        )
        .add_service(
            NodeServiceServer::new(
                NodeApi::new(engine.clone(), session_queue, identity.clone(), &cfg.auth.limits)
                    .with_owners(replica.as_ref().map(|r| r.owners.clone())),
            )
            .max_decoding_message_size(1024 * kib),
        )
        .add_service(TaskServiceServer::new(TaskApi::new(engine.clone(), store)).max_decoding_message_size(256 * kib))
        .add_service(
            FleetServiceServer::new(
                FleetApi::new(engine.clone(), identity.clone()).with_directory(replica.map(|r| r.directory)),
            )
            .max_decoding_message_size(64 * kib),
        )
        .add_service(TopologyServiceServer::new(TopologyApi::new(engine.clone())).max_decoding_message_size(16 * kib))
        .add_service(SystemServiceServer::new(SystemApi::new(engine.clone())).max_decoding_message_size(4 * kib));
    // TCP_NODELAY on every accepted connection. (The builder's `tcp_nodelay`
    // applies only to listeners tonic binds itself; without it, small
    // responses waited out the peer's 40 ms delayed ACK: submit p99 was 44 ms.)
    let incoming = futures::TryStreamExt::map_ok(
        tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
        move |io| if coalesce_writes { coalesce::Coalesced::new(io) } else { coalesce::Coalesced::plain(io) },
    );
    let server = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async move { stop.cancelled().await }));
    let metrics_addr = match metrics_listener {
        Some(listener) => {
            let bound = listener.local_addr()?;
            let (engine, stop) = (engine.clone(), shutdown.clone());
            tokio::spawn(async move {
                if let Err(e) = crate::metrics::serve(listener, metrics, engine, stop).await {
                    warn!(error = %e, "metrics server stopped");
                }
            });
            info!(addr = %bound, "serving Prometheus metrics on http://{bound}/metrics");
            Some(bound)
        }
        None => None,
    };
    let evict = shutdown.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = every.tick() => limits.evict_idle(),
                _ = evict.cancelled() => break,
            }
        }
    });
    info!(target: "fog::lifecycle", %addr, took_ms = started.elapsed().as_millis() as u64, "coordinator serving");
    Ok(Running {
        addr,
        metrics_addr,
        engine,
        shutdown,
        store_stopped,
        server,
        engine_task,
        writer_task,
        grace: cfg.shutdown_grace,
    })
}

/// Exit code of a coordinator whose store stopped accepting writes
/// (EX_IOERR): its supervisor restarts it, which succeeds once the disk is fixed.
pub const EXIT_STORE_FAILED: i32 = 74;

impl Running {
    /// Resolves when the store accepts no more writes (a failed log sync):
    /// the caller stops the coordinator and exits [`EXIT_STORE_FAILED`],
    /// rather than serve on without being able to write (what etcd and
    /// PostgreSQL do too).
    pub async fn store_failed(&self) {
        self.store_stopped.cancelled().await
    }

    /// Graceful stop: the engine closes sessions and watches and flushes; the
    /// server stops accepting and drains within the grace; the writer commits
    /// what is queued.
    pub async fn stop(self) {
        let t = std::time::Instant::now();
        let ms = || t.elapsed().as_millis() as u64;
        // Engine first: it ends node sessions and watch streams, so the
        // server's graceful drain has nothing long-lived left to wait for.
        self.engine.shutdown().await;
        info!(target: "fog::lifecycle", ms = ms(), "stopping: sessions and watches closed");
        self.shutdown.cancel();
        let server = self.server;
        let abort = server.abort_handle();
        // With the engine stopping, no call can get a new answer: the drain
        // only lets replies already made reach their clients, which takes
        // milliseconds. What keeps it longer is peers slow to close their
        // ended streams (100k sessions' worth in a reconnect storm); they are
        // cut, and nodes reconnect to whichever coordinator is next.
        if tokio::time::timeout(self.grace.min(DRAIN_AFTER_ENGINE), server).await.is_err() {
            info!(target: "fog::lifecycle", ms = ms(), "stopping: connections still open after the drain are closed");
            abort.abort();
        }
        info!(target: "fog::lifecycle", ms = ms(), "stopping: server drained");
        if tokio::time::timeout(self.grace, self.engine_task).await.is_err() {
            warn!("engine did not stop within the shutdown grace");
        }
        info!(target: "fog::lifecycle", ms = ms(), "stopping: engine ended, its last changes handed to the store");
        // The writer ends once the engine (its last handle) is gone, after
        // committing everything queued.
        if tokio::time::timeout(self.grace, self.writer_task).await.is_err() {
            warn!("store writer did not finish within the shutdown grace");
        }
        info!(target: "fog::lifecycle", ms = ms(), "coordinator stopped");
    }
}

/// How long the server drains once the engine has ended sessions and watches.
const DRAIN_AFTER_ENGINE: std::time::Duration = std::time::Duration::from_secs(1);

const CA_CERT_KEY: &str = "ca/cert.pem";
const CA_KEY_KEY: &str = "ca/key.pem";
/// File in the data directory with the CA certificate (public), for fogctl and agents.
pub const CA_FILE: &str = "ca.pem";

/// The CA that already exists: the operator's, or the one kept in the store.
fn known_ca(tls: &TlsSettings, snapshot: &Snapshot) -> anyhow::Result<Option<CertificateAuthority>> {
    let meta =
        |k: &str| snapshot.meta.iter().find(|(key, _)| key == k).map(|(_, v)| String::from_utf8_lossy(v).into_owned());
    if let Some((cert, key)) = &tls.operator_ca {
        let read = |p: &std::path::PathBuf| {
            std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))
        };
        return Ok(Some(CertificateAuthority::from_pem(&read(cert)?, &read(key)?, &tls.trust_domain)?));
    }
    match (meta(CA_CERT_KEY), meta(CA_KEY_KEY)) {
        (Some(cert), Some(key)) => Ok(Some(CertificateAuthority::from_pem(&cert, &key, &tls.trust_domain)?)),
        _ => Ok(None),
    }
}

/// The CA: the operator's, or the one kept in the store, or a new one that is
/// stored before anything is served. Its public certificate is also written
/// to `<data-dir>/ca.pem` for clients.
async fn identity_context(
    tls: &TlsSettings,
    snapshot: &Snapshot,
    store: &dyn Store,
    data_dir: &std::path::Path,
) -> anyhow::Result<IdentityContext> {
    let ca = match known_ca(tls, snapshot)? {
        Some(ca) => ca,
        None => {
            let ca = CertificateAuthority::generate(&tls.trust_domain, std::time::SystemTime::now())?;
            store
                .commit(vec![
                    Mutation::PutMeta { key: CA_CERT_KEY.into(), value: ca.cert_pem().into_bytes() },
                    Mutation::PutMeta { key: CA_KEY_KEY.into(), value: ca.key_pem().into_bytes() },
                ])
                .await?;
            info!(fingerprint = %ca.fingerprint(), "created the cluster CA");
            ca
        }
    };
    std::fs::write(data_dir.join(CA_FILE), ca.cert_pem())?;
    Ok(IdentityContext { ca, node_cert_ttl: tls.node_cert_ttl, join_token_ttl: tls.join_token_ttl })
}

/// What a standby replica needs for TLS.
pub(crate) struct StandbyTls {
    /// Its serving configuration (the cluster CA's serving certificate).
    pub server: tonic::transport::ServerTlsConfig,
    /// The CA's certificate, to check the leader's.
    pub ca_pem: String,
    /// Its replica client certificate, to forward node sessions with.
    pub replica: tonic::transport::Identity,
}

/// TLS for a standby replica, if the CA exists yet (before the first leader
/// creates it, a standby does not listen).
pub(crate) fn standby_tls(tls: &TlsSettings, snapshot: &Snapshot) -> anyhow::Result<Option<StandbyTls>> {
    let Some(ca) = known_ca(tls, snapshot)? else { return Ok(None) };
    let ca_pem = ca.cert_pem();
    let (cert, key) = ca.issue_replica_cert(Duration::from_secs(90 * 24 * 3600), std::time::SystemTime::now())?;
    let replica = tonic::transport::Identity::from_pem(cert, key);
    let ctx = IdentityContext { ca, node_cert_ttl: tls.node_cert_ttl, join_token_ttl: tls.join_token_ttl };
    Ok(Some(StandbyTls { server: server_tls(tls, &ctx)?, ca_pem, replica }))
}

/// TLS for the gRPC port: a serving certificate issued from the CA at each
/// start, client certificates verified against the CA but optional at the TLS
/// layer, because `Join` comes before a node has one and user RPCs do not use
/// them; the session handler requires one.
fn server_tls(tls: &TlsSettings, ctx: &IdentityContext) -> anyhow::Result<tonic::transport::ServerTlsConfig> {
    let (cert, key) = ctx.ca.issue_server_cert(
        &tls.dns_names,
        &tls.ips,
        Duration::from_secs(90 * 24 * 3600),
        std::time::SystemTime::now(),
    )?;
    Ok(tonic::transport::ServerTlsConfig::new()
        // The chain includes the CA, so a joining agent can check it against
        // the fingerprint in its token before trusting it.
        .identity(tonic::transport::Identity::from_pem(format!("{cert}{}", ctx.ca.cert_pem()), key))
        .client_ca_root(tonic::transport::Certificate::from_pem(ctx.ca.cert_pem()))
        .client_auth_optional(true))
}
