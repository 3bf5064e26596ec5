//! The gateway's settings: flags, each also readable from a `FOG_GATEWAY_*`
//! environment variable, checked before any port is bound.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Serves the Fogplane control panel and translates grpc-web to gRPC towards the coordinator.
#[derive(Debug, Clone, Parser)]
#[command(name = "fog-gateway", version)]
pub struct Config {
    /// Address to listen on (HTTP/1.1 and HTTP/2; TLS when --tls-cert is given).
    #[arg(long, env = "FOG_GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// The coordinator's gRPC address: `https://…` (verified with --ca-file) or `http://…` (a coordinator in --insecure-dev).
    #[arg(long, env = "FOG_COORDINATOR", default_value = "https://localhost:7443")]
    pub coordinator: String,

    /// CA certificate (PEM) that signed the coordinator's certificate — the coordinator writes it to `<data-dir>/ca.pem`.
    #[arg(long, env = "FOG_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// Directory of the built control panel (`gateway/panel/dist`); without it only the API is served.
    #[arg(long, env = "FOG_GATEWAY_PANEL_DIR")]
    pub panel_dir: Option<PathBuf>,

    /// Certificate chain (PEM) to serve TLS with; needs --tls-key.
    #[arg(long, env = "FOG_GATEWAY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert.
    #[arg(long, env = "FOG_GATEWAY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Origins allowed to call the API cross-origin (CORS), e.g. `https://ops.example.com`; repeat or comma-separate.
    /// None by default: only the panel served by this gateway (same origin) may call it.
    #[arg(long = "cors-origin", env = "FOG_GATEWAY_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// API calls per second allowed from one client IP address (sustained).
    #[arg(long, env = "FOG_GATEWAY_RPS_PER_IP", default_value_t = 50)]
    pub rps_per_ip: u32,

    /// API calls one client IP address may make in a burst above --rps-per-ip.
    #[arg(long, env = "FOG_GATEWAY_BURST_PER_IP", default_value_t = 200)]
    pub burst_per_ip: u32,

    /// Serve Prometheus metrics (OpenMetrics text, `GET /metrics`) on this
    /// address, plain HTTP; off by default. Not on --listen: keep it private.
    #[arg(long, env = "FOG_GATEWAY_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Log format: `human` or `json`.
    #[arg(long, env = "FOG_LOG_FORMAT", default_value = "human")]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// A setting that cannot work, named so the operator can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--coordinator {0:?}: {1}")]
    Coordinator(String, String),
    #[error("--ca-file is required with an https:// coordinator (the coordinator writes its CA to <data-dir>/ca.pem)")]
    CaFileMissing,
    #[error("--ca-file {0}: {1}")]
    CaFile(PathBuf, std::io::Error),
    #[error("--panel-dir {0}: no index.html there (build the panel: `npm --prefix gateway/panel run build`)")]
    PanelDir(PathBuf),
    #[error("--tls-cert/--tls-key: {0}")]
    Tls(String),
    #[error("--cors-origin {0:?}: not an origin like https://ops.example.com")]
    CorsOrigin(String),
    #[error("--rps-per-ip and --burst-per-ip must be at least 1")]
    Limits,
}

impl Config {
    /// Checks what can be checked without binding a port.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let uri: http::Uri =
            self.coordinator.parse().map_err(|e| ConfigError::Coordinator(self.coordinator.clone(), format!("{e}")))?;
        match uri.scheme_str() {
            Some("http") | Some("https") if uri.host().is_some() => {}
            _ => {
                return Err(ConfigError::Coordinator(
                    self.coordinator.clone(),
                    "expected http://host:port or https://host:port".into(),
                ));
            }
        }
        if uri.scheme_str() == Some("https") && self.ca_file.is_none() {
            return Err(ConfigError::CaFileMissing);
        }
        if let Some(dir) = &self.panel_dir
            && !dir.join("index.html").is_file()
        {
            return Err(ConfigError::PanelDir(dir.clone()));
        }
        for origin in &self.cors_origins {
            let ok = origin.parse::<http::Uri>().is_ok_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() && u.path() == "/"
            }) && !origin.ends_with('/');
            if !ok {
                return Err(ConfigError::CorsOrigin(origin.clone()));
            }
        }
        if self.rps_per_ip == 0 || self.burst_per_ip == 0 {
            return Err(ConfigError::Limits);
        }
        Ok(())
    }
}
