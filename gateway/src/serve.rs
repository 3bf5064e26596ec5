//! The accept loop: plain TCP or TLS, HTTP/1.1 and HTTP/2 on one port, the
//! client's IP attached to every request, graceful shutdown.

use crate::config::{Config, ConfigError};
use crate::limit::{ClientIp, IpLimits};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tower::ServiceExt;

/// How long open connections (watch streams included) get to finish after a stop.
const DRAIN: Duration = Duration::from_secs(5);
/// A TLS handshake that takes longer than this is dropped.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// HTTP/1.1 request headers must arrive within this.
const HEADER_READ: Duration = Duration::from_secs(30);
/// HTTP/2 pings on idle connections, and how long a ping may go unanswered.
const KEEPALIVE: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections at most (beyond this, new ones are closed at once).
const MAX_CONNECTIONS: usize = 10_000;

/// A started gateway.
pub struct Running {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// Where Prometheus metrics are served, if enabled.
    pub metrics_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, lets open calls finish for up to 5 s, then returns.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Waits until the gateway stops (after `stop` or a fatal accept error).
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    /// A handle that stops the gateway when sent `true`.
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }
}

/// Validates `cfg`, binds, and serves in the background.
pub async fn start(cfg: Config) -> anyhow::Result<Running> {
    cfg.validate()?;
    let channel = crate::forward::coordinator_channel(&cfg)?;
    let tls = cfg.tls_cert.as_ref().zip(cfg.tls_key.as_ref()).map(|(c, k)| tls_acceptor(c, k)).transpose()?;
    let limits = IpLimits::new(cfg.rps_per_ip, cfg.burst_per_ip);
    let metrics = Arc::new(crate::metrics::GatewayMetrics::new());
    let router = crate::router(&cfg, channel, limits.clone(), metrics.clone());
    let listener = TcpListener::bind(cfg.listen).await.map_err(|e| anyhow::anyhow!("--listen {}: {e}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let metrics_listener = match cfg.metrics_listen {
        Some(at) => Some(TcpListener::bind(at).await.map_err(|e| anyhow::anyhow!("--metrics-listen {at}: {e}"))?),
        None => None,
    };
    let metrics_addr = metrics_listener.as_ref().map(TcpListener::local_addr).transpose()?;
    let (stop, stopped) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    if let Some(listener) = metrics_listener {
        let (slots, mut stopped) = (slots.clone(), stopped.clone());
        let scrape = move || {
            let (metrics, slots) = (metrics.clone(), slots.clone());
            async move { Some(metrics.encode(MAX_CONNECTIONS - slots.available_permits())) }
        };
        tokio::spawn(async move {
            let stop = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = fog_telemetry::serve_metrics(listener, scrape, stop).await {
                tracing::warn!(error = %e, "metrics server stopped");
            }
        });
    }
    let task = tokio::spawn(accept_loop(listener, router, tls, limits, slots, stopped));
    Ok(Running { addr, metrics_addr, stop, task })
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: IpLimits,
    slots: Arc<Semaphore>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client that never finishes its headers, or an idle HTTP/2 peer that
    // stopped answering, does not hold a connection for ever.
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(KEEPALIVE).keep_alive_timeout(KEEPALIVE_TIMEOUT);
    let builder = Arc::new(builder);
    // The limiter's sweep runs beside the accept loop, never in its way.
    let sweeper = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            limits.forget_idle();
        }
    });
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "{MAX_CONNECTIONS} connections open; refusing one");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
            req.extensions_mut().insert(ClientIp(peer.ip()));
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
        let builder = builder.clone();
        match &tls {
            None => {
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _slot = slot;
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "connection ended");
                    }
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let _slot = slot;
                    let stream = match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%peer, error = %e, "connection ended");
                    }
                });
            }
        }
    }
    drop(listener);
    sweeper.abort();
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::info!("connections still open after {DRAIN:?}; leaving them to the process exit");
    }
}

fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> Result<TlsAcceptor, ConfigError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &std::path::Path, e: &dyn std::fmt::Display| ConfigError::Tls(format!("{}: {e}", what.display()));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(cert, &e))?;
    if certs.is_empty() {
        return Err(bad(cert, &"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ConfigError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
