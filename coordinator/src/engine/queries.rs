//! Read-only answers from the engine's state: lists, gets, topology, history,
//! system status.

use super::Engine;
use super::commands::{NodeFilter, TaskFilter, not_found_node};
use crate::api::ApiError;
use crate::convert;
use fog_core::domain::Millis;
use fog_core::topology;
use fog_proto::v1 as pb;
use std::collections::BTreeMap;
use std::time::Duration;

/// Figures the engine keeps about itself.
#[derive(Default, Debug, Clone)]
pub struct Stats {
    rounds: u64,
    placed: u64,
    last_round: Duration,
}

impl Stats {
    pub(super) fn record_round(&mut self, placed: usize, took: Duration) {
        self.rounds += 1;
        self.placed += placed as u64;
        self.last_round = took;
    }
}

impl Engine {
    pub(super) fn metrics_sample(&self, now: Millis) -> crate::metrics::StateSample {
        let mut nodes = fog_core::topology::NodeCounts::default();
        let mut heartbeat_ages = Vec::with_capacity(self.nodes.len());
        for e in self.nodes.iter() {
            nodes.add(e.status());
            if e.liveness != fog_core::registry::Liveness::Offline && e.last_heartbeat > 0 {
                heartbeat_ages.push(now.saturating_sub(e.last_heartbeat) as f64 / 1000.0);
            }
        }
        let c = self.tasks.counts();
        crate::metrics::StateSample {
            nodes: vec![
                ("active", nodes.active),
                ("idle", nodes.idle),
                ("busy", nodes.busy),
                ("suspect", nodes.suspect),
                ("offline", nodes.offline),
                ("maintenance", nodes.maintenance),
            ],
            tasks: vec![
                ("queued", c.queued),
                ("running", c.running),
                ("succeeded", c.completed),
                ("failed", c.failed),
                ("cancelled", c.cancelled),
            ],
            heartbeat_ages,
            sessions: self.sessions.len() as u64,
            sla_compliance: if c.placed == 0 { 1.0 } else { (c.sla_met as f64 / c.placed as f64).min(1.0) },
        }
    }

    pub(super) fn list_tasks(&self, f: &TaskFilter) -> pb::ListTasksResponse {
        let matches = |t: &fog_core::tasks::Task<convert::Spec>| {
            (f.states.is_empty() || f.states.contains(&t.state))
                && f.tier.is_none_or(|tier| t.params.tier == tier)
                && f.node.as_deref().is_none_or(|n| t.attempts.iter().any(|a| &*a.node == n))
        };
        let mut tasks = Vec::new();
        let mut next = String::new();
        let mut total = 0u64;
        // Total counts every match; the page holds the first `page_size` after the cursor.
        for t in self.tasks.iter_newest_first(None).filter(|t| matches(t)) {
            total += 1;
            let after_cursor = f.after.as_deref().is_none_or(|a| &*t.id < a);
            if !after_cursor {
                continue;
            }
            if tasks.len() < f.page_size {
                tasks.push(convert::task_pb(t));
            } else if next.is_empty() {
                next = tasks.last().map(|t: &pb::Task| t.id.clone()).unwrap_or_default();
            }
        }
        pb::ListTasksResponse { tasks, next_page_token: next, total_matching: total }
    }

    pub(super) fn list_nodes(&self, f: &NodeFilter, now: Millis) -> pb::ListNodesResponse {
        let mut matching: Vec<&fog_core::registry::NodeEntry> = self
            .nodes
            .iter()
            .filter(|e| {
                f.status.is_none_or(|s| e.status() == s)
                    && f.node_type.is_none_or(|t| e.node_type == t)
                    && f.region.as_deref().is_none_or(|r| e.region() == r)
                    && f.labels.iter().all(|(k, v)| e.labels.get(k) == Some(v))
            })
            .collect();
        let total = matching.len() as u64;
        matching.sort_by(|a, b| a.id.cmp(&b.id));
        let start = match &f.after {
            Some(a) => matching.partition_point(|e| &*e.id <= a.as_str()),
            None => 0,
        };
        let page: Vec<pb::Node> = matching[start..].iter().take(f.page_size).map(|e| self.node_pb(e, now)).collect();
        let next = if start + page.len() < matching.len() {
            page.last().map(|n| n.id.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        pb::ListNodesResponse { nodes: page, next_page_token: next, total_matching: total }
    }

    /// A node as the API shows it, with what only its live session knows.
    pub(super) fn node_pb(&self, e: &fog_core::registry::NodeEntry, now: Millis) -> pb::Node {
        let mut n = convert::node_pb(e, now);
        n.certificate_expires_at =
            self.sessions.get(&e.id).and_then(|s| s.cert_expires_at).map(prost_types::Timestamp::from);
        n
    }

    pub(super) fn get_node(&self, id: &str, now: Millis) -> Result<pb::GetNodeResponse, ApiError> {
        let e = self.nodes.get(id).ok_or_else(|| not_found_node(id))?;
        Ok(pb::GetNodeResponse {
            node: Some(self.node_pb(e, now)),
            task_ids: e.attempts.iter().map(|(t, _)| t.to_string()).collect(),
        })
    }

    /// The topology at the current revision, built from what was published
    /// (node states and aggregates as last announced), so that a watcher's
    /// snapshot plus the deltas after it always equal this answer at the same
    /// revision. Aggregates are announced once a second.
    pub(super) fn topology(&self, include_nodes: bool) -> pb::GetTopologyResponse {
        let aggregates =
            self.last_aggregates.clone().unwrap_or_else(|| topology::aggregate(&self.nodes, &self.task_counts()));
        let mut nodes: Vec<pb::TopologyNode> =
            if include_nodes { self.published.values().map(convert::topo_node_pb).collect() } else { Vec::new() };
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        pb::GetTopologyResponse {
            revision: self.topo.revision(),
            epoch: self.epoch.to_string(),
            aggregates: Some(convert::aggregates_pb(&aggregates)),
            regions: topology::regions(&self.nodes).iter().map(convert::region_pb).collect(),
            nodes,
        }
    }

    /// The last `limit` aggregate snapshots, oldest first.
    pub(super) fn history_pb(&self, limit: usize) -> Vec<pb::AggregateSnapshot> {
        self.history
            .last(limit)
            .map(|s| pb::AggregateSnapshot {
                taken_at: Some(convert::ts(s.taken_at)),
                revision: s.revision,
                aggregates: Some(convert::aggregates_pb(&s.aggregates)),
            })
            .collect()
    }

    pub(super) fn system_status(&self, now: Millis) -> pb::GetSystemStatusResponse {
        use pb::ComponentStatus as S;
        let c = self.tasks.counts();
        let healthy = self.nodes.iter().filter(|e| e.liveness == fog_core::registry::Liveness::Healthy).count();
        let writer = self.writer.stats();
        let mut components = vec![
            component(
                "registry",
                "core",
                S::Healthy,
                format!("{} nodes, {} healthy", self.nodes.len(), healthy),
                [("nodes", self.nodes.len().to_string()), ("healthy", healthy.to_string())],
            ),
            component(
                "scheduler",
                "core",
                S::Healthy,
                "five strategies, placement rounds after every change".into(),
                [
                    ("rounds", self.stats.rounds.to_string()),
                    ("placed", self.stats.placed.to_string()),
                    ("last_round_us", self.stats.last_round.as_micros().to_string()),
                ],
            ),
            component("task-queue", "core", S::Healthy, format!("{} queued, {} running", c.queued, c.running), {
                let q = self.tasks.queued_by_tier();
                [
                    ("queued", c.queued.to_string()),
                    ("running", c.running.to_string()),
                    ("completed", c.completed.to_string()),
                    ("failed", c.failed.to_string()),
                    ("queued_by_tier", format!("bronze={} silver={} gold={} platinum={}", q[0], q[1], q[2], q[3])),
                ]
            }),
            component(
                "liveness-monitor",
                "core",
                S::Healthy,
                format!(
                    "heartbeat {} ms, suspect after {} ms, offline after {} ms",
                    self.cfg.liveness.heartbeat_interval_ms,
                    self.cfg.liveness.suspect_after_ms,
                    self.cfg.liveness.offline_grace_ms
                ),
                [("tracked", self.liveness.len().to_string()), ("sessions", self.sessions.len().to_string())],
            ),
            component(
                "topology-stream",
                "network",
                S::Healthy,
                format!("revision {}, {} watchers", self.topo.revision(), self.topo_events.receiver_count()),
                [
                    ("revision", self.topo.revision().to_string()),
                    ("watchers", self.topo_events.receiver_count().to_string()),
                    ("task_watchers", self.task_events.receiver_count().to_string()),
                ],
            ),
            component(
                "store",
                "data",
                if writer.failed_commits > 0 { S::Degraded } else { S::Healthy },
                format!(
                    "{} backend, {} commits, {} mutations",
                    self.writer.backend(),
                    writer.commits,
                    writer.mutations
                ),
                [
                    ("commits", writer.commits.to_string()),
                    ("mutations", writer.mutations.to_string()),
                    ("failed_commits", writer.failed_commits.to_string()),
                    ("largest_commit", writer.largest_commit.to_string()),
                ],
            ),
            match &self.cfg.identity {
                Some(ctx) => {
                    let (tokens, revoked) = self.identity.counts();
                    component(
                        "identity",
                        "security",
                        S::Healthy,
                        format!(
                            "mTLS; CA of trust domain {}; {tokens} join tokens, {revoked} revoked certificates",
                            ctx.trust_domain()
                        ),
                        [
                            ("mode", "mtls".to_string()),
                            ("ca_fingerprint", ctx.ca.fingerprint()),
                            ("join_tokens", tokens.to_string()),
                            ("revoked_certificates", revoked.to_string()),
                        ],
                    )
                }
                None => component(
                    "identity",
                    "security",
                    S::Disabled,
                    "insecure dev mode: no mTLS, node identity from hello".into(),
                    [("mode", "insecure-dev".to_string())],
                ),
            },
            {
                let (users, api_tokens, sessions) = self.auth.counts();
                component(
                    "auth",
                    "security",
                    S::Healthy,
                    format!("{users} users, {api_tokens} API tokens, {sessions} live sign-in sessions"),
                    [
                        ("users", users.to_string()),
                        ("api_tokens", api_tokens.to_string()),
                        ("sessions", sessions.to_string()),
                    ],
                )
            },
        ];
        components.sort_by(|a, b| (a.category.as_str(), a.name.as_str()).cmp(&(b.category.as_str(), b.name.as_str())));
        let overall = components
            .iter()
            .map(|c| c.status)
            .filter(|s| *s != S::Disabled as i32)
            .max_by_key(|s| match S::try_from(*s).unwrap_or_default() {
                S::Down => 3,
                S::Degraded => 2,
                _ => 1,
            })
            .unwrap_or(S::Healthy as i32);
        pb::GetSystemStatusResponse {
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: Some(convert::ts(self.started_at)),
            uptime_seconds: now.saturating_sub(self.started_at) / 1000,
            overall,
            components,
            epoch: self.epoch.to_string(),
        }
    }
}

fn component<const N: usize>(
    name: &str,
    category: &str,
    status: pb::ComponentStatus,
    detail: String,
    metrics: [(&str, String); N],
) -> pb::Component {
    pb::Component {
        name: name.to_string(),
        category: category.to_string(),
        status: status as i32,
        detail,
        metrics: metrics.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<BTreeMap<_, _>>().into_iter().collect(),
    }
}
