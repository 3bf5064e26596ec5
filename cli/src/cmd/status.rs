//! `fogctl status`: the coordinator's version, uptime and component health.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use fog_proto::v1::system_service_client::SystemServiceClient;
use fog_proto::v1::{ComponentStatus, GetSystemStatusRequest, GetSystemStatusResponse};

use super::Ctx;
use crate::error::CliError;
use crate::json::ToJson;
use crate::output::{Table, duration, emit, key_values, time};
use crate::short;

/// Runs `fogctl status`.
pub async fn run(ctx: &Ctx) -> Result<ExitCode, CliError> {
    let mut client = SystemServiceClient::new(ctx.connect().await?);
    let status = client.get_system_status(GetSystemStatusRequest {}).await.map_err(|s| ctx.status(s))?.into_inner();
    emit(ctx.format, || status.to_json(), || render(&status));
    Ok(ExitCode::SUCCESS)
}

/// The human view: a summary, then one table per component category.
pub fn render(s: &GetSystemStatusResponse) -> String {
    let mut out = key_values(&[
        ("version", s.version.clone()),
        ("started", time(s.started_at.as_ref())),
        ("uptime", duration(Duration::from_secs(s.uptime_seconds))),
        ("overall", short!(ComponentStatus, s.overall, "COMPONENT_STATUS_")),
        ("epoch", s.epoch.clone()),
    ]);
    let mut by_category: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for c in &s.components {
        by_category.entry(c.category.as_str()).or_default().push(c);
    }
    for (category, components) in by_category {
        let _ = write!(out, "\n[{}]\n", if category.is_empty() { "other" } else { category });
        let mut t = Table::new(&["COMPONENT", "STATUS", "DETAIL", "METRICS"]);
        for c in components {
            let mut metrics: Vec<_> = c.metrics.iter().map(|(k, v)| format!("{k}={v}")).collect();
            metrics.sort();
            t.row(vec![
                c.name.clone(),
                short!(ComponentStatus, c.status, "COMPONENT_STATUS_"),
                c.detail.clone(),
                metrics.join(" "),
            ]);
        }
        out.push_str(&t.render());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use fog_proto::v1::Component;

    #[test]
    fn components_are_grouped_by_category() {
        let comp = |name: &str, category: &str, status| Component {
            name: name.into(),
            category: category.into(),
            status: status as i32,
            detail: "ok".into(),
            metrics: [("nodes".to_string(), "3".to_string())].into(),
        };
        let s = GetSystemStatusResponse {
            version: "0.1.0".into(),
            uptime_seconds: 65,
            overall: ComponentStatus::Degraded as i32,
            components: vec![
                comp("registry", "core", ComponentStatus::Healthy),
                comp("store", "data", ComponentStatus::Degraded),
                comp("scheduler", "core", ComponentStatus::Healthy),
            ],
            ..Default::default()
        };
        let text = render(&s);
        assert!(text.contains("overall: degraded"), "{text}");
        assert!(text.contains("uptime:  1m5s"), "{text}");
        let core = text.find("[core]").unwrap();
        let data = text.find("[data]").unwrap();
        assert!(core < text.find("scheduler").unwrap() && text.find("scheduler").unwrap() < data);
        assert!(text.contains("store      degraded  ok      nodes=3"), "{text}");
    }
}
