//! The coordinator's configuration: flags and `FOG_*` environment variables,
//! parsed and validated completely before any port is bound or file opened.
//! Bad configuration exits with a clear message and code 64 (EX_USAGE).

use clap::Parser;
use fog_core::liveness::LivenessConfig;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Exit code for bad configuration (EX_USAGE).
pub const EXIT_CONFIG: i32 = 64;

/// Command-line flags (each also readable from the environment).
#[derive(Parser, Debug, Clone)]
#[command(name = "fog-coordinator", version, about = "The Fogplane coordinator")]
pub struct Flags {
    /// Address to serve gRPC on.
    #[arg(long, env = "FOG_LISTEN", default_value = "127.0.0.1:7443")]
    pub listen: SocketAddr,
    /// Directory of the embedded store (with `--store etcd`: only `ca.pem` is written there).
    #[arg(long, env = "FOG_DATA_DIR", default_value = "./fog-data")]
    pub data_dir: PathBuf,
    /// Where state is kept: `redb` (embedded, in --data-dir) or `etcd` (--etcd-endpoints).
    #[arg(long, env = "FOG_STORE", default_value = "redb", value_parser = ["redb", "etcd"])]
    pub store: String,
    /// etcd client URLs, e.g. `https://10.0.0.1:2379,https://10.0.0.2:2379` (with `--store etcd`;
    /// `https://` needs --etcd-ca).
    #[arg(long, env = "FOG_ETCD_ENDPOINTS", value_delimiter = ',')]
    pub etcd_endpoints: Vec<String>,
    /// PEM file of the CA that signed etcd's certificates (with https:// endpoints).
    #[arg(long, env = "FOG_ETCD_CA")]
    pub etcd_ca: Option<PathBuf>,
    /// Client certificate (PEM) for an etcd that requires one (`--client-cert-auth`); with --etcd-key.
    #[arg(long, env = "FOG_ETCD_CERT")]
    pub etcd_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "FOG_ETCD_KEY")]
    pub etcd_key: Option<PathBuf>,
    /// Key prefix of this cluster's records in etcd (clusters may share an etcd).
    #[arg(long, env = "FOG_ETCD_PREFIX", default_value = "/fogplane/")]
    pub etcd_prefix: String,
    /// Run as one of several replicas on etcd: the elected leader serves, the others stand by
    /// (needs --store etcd).
    #[arg(long, env = "FOG_HA", default_value_t = false)]
    pub ha: bool,
    /// The URL clients and agents should use for this replica (default: from --listen).
    #[arg(long, env = "FOG_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    /// Lease of the leadership: how long a dead leader keeps it (2s to 60s).
    #[arg(long, env = "FOG_LEADER_LEASE", default_value = "3s", value_parser = humantime::parse_duration)]
    pub leader_lease: Duration,
    /// Serve without TLS and take node identity from the hello message.
    /// For local development only: logs a warning. The default is mTLS.
    #[arg(long, env = "FOG_INSECURE_DEV", default_value_t = false)]
    pub insecure_dev: bool,
    /// SPIFFE trust domain of node identities (`spiffe://<domain>/node/<id>`).
    #[arg(long, env = "FOG_TRUST_DOMAIN", default_value = "fog.local")]
    pub trust_domain: String,
    /// Names and addresses in the coordinator's serving certificate (repeatable).
    #[arg(long = "tls-san", env = "FOG_TLS_SANS", value_delimiter = ',', default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
    pub tls_sans: Vec<String>,
    /// Operator-supplied CA certificate (PEM); with --ca-key. Default: a CA created at first start and kept in the store.
    #[arg(long, env = "FOG_CA_CERT", requires = "ca_key")]
    pub ca_cert: Option<PathBuf>,
    /// Operator-supplied CA private key (PKCS#8 PEM); with --ca-cert.
    #[arg(long, env = "FOG_CA_KEY", requires = "ca_cert")]
    pub ca_key: Option<PathBuf>,
    /// Lifetime of node client certificates.
    #[arg(long, env = "FOG_NODE_CERT_TTL", default_value = "24h", value_parser = humantime::parse_duration)]
    pub node_cert_ttl: Duration,
    /// Default lifetime of join tokens.
    #[arg(long, env = "FOG_JOIN_TOKEN_TTL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub join_token_ttl: Duration,
    /// Heartbeat interval nodes are told to use.
    #[arg(long, env = "FOG_HEARTBEAT_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub heartbeat_interval: Duration,
    /// Silence after which a node is suspect (default 2 heartbeat intervals).
    #[arg(long, env = "FOG_SUSPECT_AFTER", value_parser = humantime::parse_duration)]
    pub suspect_after: Option<Duration>,
    /// Silence after which a node is offline and its tasks re-queued (default 3 intervals).
    #[arg(long, env = "FOG_OFFLINE_GRACE", value_parser = humantime::parse_duration)]
    pub offline_grace: Option<Duration>,
    /// Heartbeats in a row a suspect node needs to be healthy again.
    #[arg(long, env = "FOG_RECOVERY_HEARTBEATS", default_value_t = 3)]
    pub recovery_heartbeats: u32,
    /// After a restart, how long known nodes have to reconnect before they are offline.
    #[arg(long, env = "FOG_RESTART_GRACE", default_value = "15s", value_parser = humantime::parse_duration)]
    pub restart_grace: Duration,
    /// Interval between RTT pings on a node session (1s to 1h). A ping rides on
    /// a heartbeat; at 100,000 nodes every 60 s is 1,700 pings a second.
    #[arg(long, env = "FOG_RTT_PING_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub rtt_ping_interval: Duration,
    /// Interval of aggregate snapshots kept in the topology history (last 100).
    #[arg(long, env = "FOG_SNAPSHOT_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub snapshot_interval: Duration,
    /// Topology events kept for watchers to resume from.
    #[arg(long, env = "FOG_TOPOLOGY_RETAINED", default_value_t = 100_000)]
    pub topology_retained: usize,
    /// Finished tasks kept in memory (the newest; older ones stay in the
    /// store, found by GetTask and by request id, but not listed by ListTasks).
    #[arg(long, env = "FOG_FINISHED_TASKS_KEPT", default_value_t = 10_000)]
    pub finished_tasks_kept: usize,
    /// Topology events buffered per watcher; a watcher further behind gets a resync.
    #[arg(long, env = "FOG_WATCH_BUFFER", default_value_t = 8192)]
    pub watch_buffer: usize,
    /// How long shutdown waits for streams and the store to drain.
    #[arg(long, env = "FOG_SHUTDOWN_GRACE", default_value = "5s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// Lifetime of access tokens (5m to 15m).
    #[arg(long, env = "FOG_ACCESS_TOKEN_TTL", default_value = "10m", value_parser = humantime::parse_duration)]
    pub access_token_ttl: Duration,
    /// Lifetime of a sign-in session; refresh tokens rotate within it (1h to 30 days).
    #[arg(long, env = "FOG_SESSION_TTL", default_value = "24h", value_parser = humantime::parse_duration)]
    pub session_ttl: Duration,
    /// `iss` and audience prefix of access tokens (name the cluster when several share users).
    #[arg(long, env = "FOG_TOKEN_ISSUER", default_value = "fogplane")]
    pub token_issuer: String,
    /// Public and user requests per second per client address (burst 2x).
    #[arg(long, env = "FOG_LIMIT_IP_RPS", default_value_t = 500)]
    pub limit_ip_rps: u32,
    /// Node session opens and joins per second per client address (burst 5x).
    #[arg(long, env = "FOG_LIMIT_NODE_RPS", default_value_t = 500)]
    pub limit_node_rps: u32,
    /// Reads per second per identity (burst 2x).
    #[arg(long, env = "FOG_LIMIT_READ_RPS", default_value_t = 100)]
    pub limit_read_rps: u32,
    /// Writes per second per identity (burst 2x).
    #[arg(long, env = "FOG_LIMIT_WRITE_RPS", default_value_t = 50)]
    pub limit_write_rps: u32,
    /// Watch opens per second per identity (burst 2x).
    #[arg(long, env = "FOG_LIMIT_WATCH_RPS", default_value_t = 5)]
    pub limit_watch_rps: u32,
    /// Watches one identity may hold open.
    #[arg(long, env = "FOG_MAX_WATCHES", default_value_t = 16)]
    pub max_watches: u32,
    /// Sign-in attempts per minute per address and per username.
    #[arg(long, env = "FOG_LIMIT_SIGN_IN_PER_MIN", default_value_t = 20)]
    pub limit_sign_in_per_min: u32,
    /// Unary user requests in flight; more are shed with RESOURCE_EXHAUSTED.
    #[arg(long, env = "FOG_MAX_INFLIGHT", default_value_t = 256)]
    pub max_inflight: u32,
    /// Unary requests one identity may have in flight.
    #[arg(long, env = "FOG_MAX_INFLIGHT_PER_IDENTITY", default_value_t = 32)]
    pub max_inflight_per_identity: u32,
    /// Messages per second one node session may send (heartbeats, updates, results); over it, the session is closed.
    #[arg(long, env = "FOG_SESSION_MSG_RATE", default_value_t = 200)]
    pub session_msg_rate: u32,
    /// Messages a node session may send in a burst beyond its rate.
    #[arg(long, env = "FOG_SESSION_MSG_BURST", default_value_t = 1000)]
    pub session_msg_burst: u32,
    /// Log as JSON lines instead of human text.
    #[arg(long, env = "FOG_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
    /// Serve Prometheus metrics (OpenMetrics text, `GET /metrics`) on this
    /// address, plain HTTP; off by default. Keep it on a private network.
    #[arg(long, env = "FOG_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Export OpenTelemetry traces to this OTLP/gRPC collector, e.g.
    /// `http://127.0.0.1:4317`; off by default. Batching follows `OTEL_BSP_*`.
    #[arg(long, env = "FOG_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// gRPC address.
    pub listen: SocketAddr,
    /// Store directory.
    pub data_dir: PathBuf,
    /// Which store backend.
    pub store: StoreChoice,
    /// One of several replicas (leader election on etcd).
    pub ha: bool,
    /// This replica's URL for clients.
    pub advertise_url: String,
    /// Leadership lease.
    pub leader_lease: Duration,
    /// Insecure dev mode.
    pub insecure_dev: bool,
    /// mTLS settings (None in insecure dev mode).
    pub tls: Option<TlsSettings>,
    /// Failure detector settings.
    pub liveness: LivenessConfig,
    /// Aggregate snapshot interval.
    pub snapshot_interval: Duration,
    /// Interval between RTT pings on a session.
    pub ping_interval: Duration,
    /// Retained topology events.
    pub topology_retained: usize,
    /// Finished tasks kept in memory.
    pub finished_tasks_kept: usize,
    /// Topology events buffered per watcher.
    pub watch_buffer: usize,
    /// Shutdown grace.
    pub shutdown_grace: Duration,
    /// JSON logs.
    pub log_json: bool,
    /// Prometheus metrics address (off when None).
    pub metrics_listen: Option<SocketAddr>,
    /// OTLP/gRPC trace collector (off when None).
    pub otlp_endpoint: Option<String>,
    /// Users, tokens and limits.
    pub auth: crate::auth::AuthSettings,
}

/// The store backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// Embedded redb (and its write-ahead log) in the data directory.
    Redb,
    /// etcd.
    Etcd {
        /// Client URLs.
        endpoints: Vec<String>,
        /// Key prefix, ending in `/`.
        prefix: String,
        /// TLS, with `https://` endpoints.
        tls: Option<crate::store::EtcdTls>,
    },
}

/// The etcd settings from their flags (shared by the server and `admin
/// create`): endpoints all `http://` or all `https://`; `https://` needs the
/// CA; a client certificate needs its key. Files are read here, so a bad one
/// is a configuration error naming its flag.
pub fn etcd_settings(
    endpoints: &[String],
    prefix: &str,
    ca: Option<&Path>,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<StoreChoice, ConfigError> {
    if endpoints.is_empty() {
        return Err(ConfigError("--store etcd needs --etcd-endpoints (e.g. https://127.0.0.1:2379)".into()));
    }
    if let Some(bad) = endpoints.iter().find(|e| !e.starts_with("http://") && !e.starts_with("https://")) {
        return Err(ConfigError(format!("--etcd-endpoints {bad:?}: expected http://host:port or https://host:port")));
    }
    let tls = endpoints.iter().any(|e| e.starts_with("https://"));
    if tls && endpoints.iter().any(|e| e.starts_with("http://")) {
        return Err(ConfigError("--etcd-endpoints mixes http:// and https://".into()));
    }
    if !prefix.starts_with('/') || !prefix.ends_with('/') || prefix.len() < 2 {
        return Err(ConfigError(format!("--etcd-prefix {prefix:?}: must start and end with / (e.g. /fogplane/)")));
    }
    if cert.is_some() != key.is_some() {
        return Err(ConfigError("--etcd-cert and --etcd-key go together".into()));
    }
    let read = |flag: &str, p: &Path| {
        std::fs::read_to_string(p).map_err(|e| ConfigError(format!("{flag} {}: {e}", p.display())))
    };
    let tls = match (tls, ca) {
        (false, None) if cert.is_none() => None,
        (false, _) => return Err(ConfigError("--etcd-ca, --etcd-cert and --etcd-key need https:// endpoints".into())),
        (true, None) => {
            return Err(ConfigError(
                "--etcd-endpoints use https://: give --etcd-ca, the CA that signed etcd's certificates".into(),
            ));
        }
        (true, Some(ca)) => {
            let identity = match (cert, key) {
                (Some(c), Some(k)) => Some((read("--etcd-cert", c)?, read("--etcd-key", k)?)),
                _ => None,
            };
            Some(crate::store::EtcdTls { ca_pem: read("--etcd-ca", ca)?, identity })
        }
    };
    Ok(StoreChoice::Etcd { endpoints: endpoints.to_vec(), prefix: prefix.to_string(), tls })
}

fn store_choice(f: &Flags) -> Result<StoreChoice, ConfigError> {
    if f.store == "redb" {
        return Ok(StoreChoice::Redb);
    }
    etcd_settings(
        &f.etcd_endpoints,
        &f.etcd_prefix,
        f.etcd_ca.as_deref(),
        f.etcd_cert.as_deref(),
        f.etcd_key.as_deref(),
    )
}

/// mTLS and identity settings.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// Trust domain.
    pub trust_domain: crate::identity::TrustDomain,
    /// DNS names of the serving certificate.
    pub dns_names: Vec<String>,
    /// IP addresses of the serving certificate.
    pub ips: Vec<std::net::IpAddr>,
    /// Operator CA (cert, key) files.
    pub operator_ca: Option<(PathBuf, PathBuf)>,
    /// Node certificate lifetime.
    pub node_cert_ttl: Duration,
    /// Default join token lifetime.
    pub join_token_ttl: Duration,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

fn tls_settings(f: &Flags) -> Result<TlsSettings, ConfigError> {
    let trust_domain = crate::identity::TrustDomain::new(&f.trust_domain)
        .map_err(|e| ConfigError(format!("--trust-domain {:?}: {e}", f.trust_domain)))?;
    let (mut dns_names, mut ips) = (Vec::new(), Vec::new());
    for san in &f.tls_sans {
        match san.parse::<std::net::IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) if crate::identity::TrustDomain::new(san).is_ok() => dns_names.push(san.clone()),
            Err(_) => return Err(ConfigError(format!("--tls-san {san:?} is neither an IP address nor a DNS name"))),
        }
    }
    if dns_names.is_empty() && ips.is_empty() {
        return Err(ConfigError("--tls-san needs at least one name or address".into()));
    }
    let hour = Duration::from_secs(3600);
    if !(Duration::from_secs(600)..=30 * 24 * hour).contains(&f.node_cert_ttl) {
        return Err(ConfigError("--node-cert-ttl must be between 10m and 30 days".into()));
    }
    if !(Duration::from_secs(60)..=7 * 24 * hour).contains(&f.join_token_ttl) {
        return Err(ConfigError("--join-token-ttl must be between 1m and 7 days".into()));
    }
    Ok(TlsSettings {
        trust_domain,
        dns_names,
        ips,
        operator_ca: f.ca_cert.clone().zip(f.ca_key.clone()),
        node_cert_ttl: f.node_cert_ttl,
        join_token_ttl: f.join_token_ttl,
    })
}

fn auth_settings(f: &Flags) -> Result<crate::auth::AuthSettings, ConfigError> {
    let min = Duration::from_secs(60);
    if !(5 * min..=15 * min).contains(&f.access_token_ttl) {
        return Err(ConfigError("--access-token-ttl must be between 5m and 15m".into()));
    }
    if !(60 * min..=30 * 24 * 60 * min).contains(&f.session_ttl) {
        return Err(ConfigError("--session-ttl must be between 1h and 30 days".into()));
    }
    if f.token_issuer.is_empty() || f.token_issuer.len() > 128 {
        return Err(ConfigError("--token-issuer must be 1-128 characters".into()));
    }
    let limits = [
        ("--limit-ip-rps", f.limit_ip_rps),
        ("--limit-node-rps", f.limit_node_rps),
        ("--limit-read-rps", f.limit_read_rps),
        ("--limit-write-rps", f.limit_write_rps),
        ("--limit-watch-rps", f.limit_watch_rps),
        ("--max-watches", f.max_watches),
        ("--limit-sign-in-per-min", f.limit_sign_in_per_min),
        ("--max-inflight", f.max_inflight),
        ("--max-inflight-per-identity", f.max_inflight_per_identity),
        ("--session-msg-rate", f.session_msg_rate),
        ("--session-msg-burst", f.session_msg_burst),
    ];
    for (name, v) in limits {
        if !(1..=10_000_000).contains(&v) {
            return Err(ConfigError(format!("{name} must be between 1 and 10000000")));
        }
    }
    Ok(crate::auth::AuthSettings {
        issuer: f.token_issuer.clone(),
        audience: format!("{}-api", f.token_issuer),
        access_ttl: f.access_token_ttl,
        session_ttl: f.session_ttl,
        leeway: Duration::from_secs(30),
        limits: crate::auth::LimitSettings {
            per_ip_rps: f.limit_ip_rps,
            node_rps: f.limit_node_rps,
            read_rps: f.limit_read_rps,
            write_rps: f.limit_write_rps,
            watch_rps: f.limit_watch_rps,
            max_watches: f.max_watches,
            max_inflight_per_identity: f.max_inflight_per_identity,
            session_msg_rate: f.session_msg_rate,
            session_msg_burst: f.session_msg_burst,
            sign_in_per_min: f.limit_sign_in_per_min,
            max_inflight: f.max_inflight,
        },
    })
}

impl Config {
    /// Validates flags into a configuration.
    pub fn from_flags(f: Flags) -> Result<Config, ConfigError> {
        let ms = |d: Duration| d.as_millis() as u64;
        let interval = ms(f.heartbeat_interval);
        if !(50..=600_000).contains(&interval) {
            return Err(ConfigError(format!(
                "--heartbeat-interval must be between 50ms and 10m, got {}",
                humantime::format_duration(f.heartbeat_interval)
            )));
        }
        let tls = if f.insecure_dev { None } else { Some(tls_settings(&f)?) };
        let store = store_choice(&f)?;
        if f.ha && store == StoreChoice::Redb {
            return Err(ConfigError("--ha needs --store etcd (the replicas share their state there)".into()));
        }
        if !(Duration::from_secs(2)..=Duration::from_secs(60)).contains(&f.leader_lease) {
            return Err(ConfigError("--leader-lease must be between 2s and 60s".into()));
        }
        let scheme = if f.insecure_dev { "http" } else { "https" };
        let advertise_url = f.advertise_url.clone().unwrap_or_else(|| format!("{scheme}://{}", f.listen));
        if f.finished_tasks_kept < 100 {
            return Err(ConfigError("--finished-tasks-kept must be at least 100".into()));
        }
        if f.topology_retained < 1000 {
            return Err(ConfigError("--topology-retained must be at least 1000".into()));
        }
        if !(16..=1_000_000).contains(&f.watch_buffer) {
            return Err(ConfigError("--watch-buffer must be between 16 and 1000000".into()));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&f.rtt_ping_interval) {
            return Err(ConfigError("--rtt-ping-interval must be between 1s and 1h".into()));
        }
        if f.snapshot_interval < Duration::from_millis(100) {
            return Err(ConfigError("--snapshot-interval must be at least 100ms".into()));
        }
        let liveness = LivenessConfig {
            heartbeat_interval_ms: interval,
            suspect_after_ms: f.suspect_after.map_or(2 * interval, ms),
            offline_grace_ms: f.offline_grace.map_or(3 * interval, ms),
            recovery_heartbeats: f.recovery_heartbeats,
            restart_grace_ms: ms(f.restart_grace),
            ..LivenessConfig::default()
        };
        liveness.validate().map_err(ConfigError)?;
        let auth = auth_settings(&f)?;
        Ok(Config {
            auth,
            listen: f.listen,
            data_dir: f.data_dir,
            store,
            ha: f.ha,
            advertise_url,
            leader_lease: f.leader_lease,
            insecure_dev: f.insecure_dev,
            tls,
            liveness,
            snapshot_interval: f.snapshot_interval,
            ping_interval: f.rtt_ping_interval,
            topology_retained: f.topology_retained,
            finished_tasks_kept: f.finished_tasks_kept,
            watch_buffer: f.watch_buffer,
            shutdown_grace: f.shutdown_grace,
            log_json: f.log_json,
            metrics_listen: f.metrics_listen,
            // Empty means unset (an env file with `FOG_OTLP_ENDPOINT=`), not the exporter's default.
            otlp_endpoint: f.otlp_endpoint.filter(|e| !e.trim().is_empty()),
        })
    }

    /// A configuration for tests with mTLS on: fast heartbeats.
    pub fn for_tls_tests(data_dir: PathBuf) -> Config {
        Config::for_testing(data_dir, false)
    }

    /// A configuration for tests: insecure, fast heartbeats.
    pub fn for_tests(data_dir: PathBuf) -> Config {
        Config::for_testing(data_dir, true)
    }

    fn for_testing(data_dir: PathBuf, insecure: bool) -> Config {
        let mut args = vec!["fog-coordinator", "--listen", "127.0.0.1:0", "--heartbeat-interval", "100ms"];
        args.extend(["--restart-grace", "2s"]);
        if insecure {
            args.push("--insecure-dev");
        }
        let mut c = Config::from_flags(Flags::parse_from(args)).expect("test config is valid");
        c.data_dir = data_dir;
        c
    }
}
