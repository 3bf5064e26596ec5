//! A real Prometheus server (Debian's `prometheus`, installed by the test
//! command) scraping the processes under test every second, and queried over
//! its HTTP API the way a dashboard or an alert rule would.

use crate::process::free_port;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A plain HTTP GET: (status, body).
pub async fn http_get(url: &str) -> anyhow::Result<(u16, String)> {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let res = tokio::time::timeout(Duration::from_secs(5), client.get(url.parse()?)).await??;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A Prometheus process; killed when dropped.
pub struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus on a free loopback port, scraping each (job, address)
    /// at `/metrics` every second.
    pub fn start(targets: &[(&str, SocketAddr)]) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n");
        for (job, addr) in targets {
            config += &format!("  - job_name: {job}\n    static_configs:\n      - targets: ['{addr}']\n");
        }
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).expect("write prometheus.yml");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus (Debian's `prometheus` package; scripts/deps.sh installs it)");
        Prometheus { child, url: format!("http://127.0.0.1:{port}"), _dir: dir }
    }

    /// An instant query: each result's labels (as JSON) and value.
    pub async fn query(&self, promql: &str) -> anyhow::Result<Vec<(serde_json::Value, f64)>> {
        let q = percent_encoding::utf8_percent_encode(promql, percent_encoding::NON_ALPHANUMERIC);
        let url = format!("{}/api/v1/query?query={q}", self.url);
        let (status, body) = http_get(&url).await?;
        anyhow::ensure!(status == 200, "query {promql}: HTTP {status}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body)?;
        let results = v["data"]["result"].as_array().cloned().unwrap_or_default();
        Ok(results
            .into_iter()
            .filter_map(|r| {
                let value = r["value"][1].as_str()?.parse().ok()?;
                Some((r["metric"].clone(), value))
            })
            .collect())
    }

    /// Waits until `promql` has a result whose value passes `ok`; returns that value.
    pub async fn wait_for(&self, promql: &str, deadline: Duration, ok: impl Fn(f64) -> bool) -> f64 {
        let started = std::time::Instant::now();
        loop {
            let last = match self.query(promql).await {
                Ok(rs) => match rs.iter().find(|(_, v)| ok(*v)) {
                    Some((_, v)) => return *v,
                    None => format!("{rs:?}"),
                },
                Err(e) => e.to_string(),
            };
            assert!(started.elapsed() < deadline, "timed out after {deadline:?} waiting for {promql}; last: {last}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
