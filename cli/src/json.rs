//! Proto messages as JSON, for `-o json`. prost types do not derive serde, so
//! each message kind has a hand-written converter here.
//!
//! Faithful to the proto: field names as in the `.proto` files (snake_case),
//! every field present (defaults included), enums as their proto names (e.g.
//! `TASK_STATE_SUCCEEDED`; an unknown value as its number), timestamps as RFC
//! 3339 strings, unset messages and unset `optional` fields as `null`, maps as
//! objects. Two departures from the canonical proto3 JSON mapping, chosen for
//! shell use: 64-bit integers are JSON numbers, and `bytes` fields (task
//! stdout/stderr) are UTF-8 text (invalid bytes replaced) rather than base64.

use std::time::SystemTime;

use fog_proto::v1::*;
use prost_types::Timestamp;
use serde_json::{Map, Value, json};

/// A proto message that fogctl can print as JSON.
pub trait ToJson {
    /// The message as a JSON value.
    fn to_json(&self) -> Value;
}

impl<T: ToJson> ToJson for Option<T> {
    fn to_json(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToJson::to_json)
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn to_json(&self) -> Value {
        Value::Array(self.iter().map(ToJson::to_json).collect())
    }
}

macro_rules! enum_json {
    ($ty:ty, $v:expr) => {
        match <$ty>::try_from($v) {
            Ok(e) => Value::from(e.as_str_name()),
            Err(_) => Value::from($v),
        }
    };
}

/// A timestamp as RFC 3339 (nanoseconds only when set), or null.
pub fn timestamp(ts: Option<&Timestamp>) -> Value {
    match ts.and_then(|t| SystemTime::try_from(*t).ok().map(|st| (t.nanos, st))) {
        Some((0, st)) => Value::from(humantime::format_rfc3339_seconds(st).to_string()),
        Some((_, st)) => Value::from(humantime::format_rfc3339_nanos(st).to_string()),
        None => Value::Null,
    }
}

fn map_json<V: Clone + Into<Value>>(m: &std::collections::HashMap<String, V>) -> Value {
    let mut sorted: Vec<_> = m.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v.clone().into())).collect::<Map<_, _>>())
}

fn bytes_text(b: &[u8]) -> Value {
    Value::from(String::from_utf8_lossy(b).into_owned())
}

impl ToJson for Resources {
    fn to_json(&self) -> Value {
        json!({"cpu_millis": self.cpu_millis, "memory_mb": self.memory_mb,
               "storage_mb": self.storage_mb, "gpus": self.gpus})
    }
}

impl ToJson for Location {
    fn to_json(&self) -> Value {
        json!({"region": self.region, "zone": self.zone, "has_coordinates": self.has_coordinates,
               "latitude": self.latitude, "longitude": self.longitude})
    }
}

impl ToJson for Label {
    fn to_json(&self) -> Value {
        json!({"key": self.key, "value": self.value})
    }
}

impl ToJson for Node {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id, "name": self.name,
            "node_type": enum_json!(NodeType, self.node_type),
            "status": enum_json!(NodeStatus, self.status),
            "liveness": enum_json!(Liveness, self.liveness),
            "flapping": self.flapping, "cordoned": self.cordoned, "draining": self.draining,
            "maintenance": self.maintenance, "state_unwritable": self.state_unwritable,
            "location": self.location.to_json(), "labels": self.labels.to_json(),
            "capacity": self.capacity.to_json(), "allocated": self.allocated.to_json(),
            "cpu_usage": self.cpu_usage, "memory_usage": self.memory_usage,
            "power_mode": enum_json!(PowerMode, self.power_mode),
            "battery_percent": self.battery_percent, "charging": self.charging,
            "temperature_celsius": self.temperature_celsius,
            "active_tasks": self.active_tasks, "completed_tasks": self.completed_tasks,
            "failed_tasks": self.failed_tasks, "reputation": self.reputation,
            "uptime_percent": self.uptime_percent,
            "supports_onion_routing": self.supports_onion_routing,
            "session_rtt_ms": self.session_rtt_ms,
            "last_heartbeat": timestamp(self.last_heartbeat.as_ref()),
            "registered_at": timestamp(self.registered_at.as_ref()),
            "agent_version": self.agent_version,
            "session_replica": self.session_replica,
        })
    }
}

impl ToJson for GetNodeResponse {
    fn to_json(&self) -> Value {
        json!({"node": self.node.to_json(), "task_ids": self.task_ids})
    }
}

impl ToJson for ListNodesResponse {
    fn to_json(&self) -> Value {
        json!({"nodes": self.nodes.to_json(), "next_page_token": self.next_page_token,
               "total_matching": self.total_matching})
    }
}

impl ToJson for BuiltinTask {
    fn to_json(&self) -> Value {
        use builtin_task::Kind;
        match &self.kind {
            Some(Kind::SleepMs(v)) => json!({"sleep_ms": v}),
            Some(Kind::Echo(v)) => json!({"echo": v}),
            Some(Kind::HashRounds(v)) => json!({"hash_rounds": v}),
            Some(Kind::Fail(v)) => json!({"fail": v}),
            None => json!({}),
        }
    }
}

impl ToJson for ExecTask {
    fn to_json(&self) -> Value {
        json!({"command": self.command, "args": self.args, "env": map_json(&self.env),
               "working_dir": self.working_dir})
    }
}

impl ToJson for TaskSpec {
    fn to_json(&self) -> Value {
        let mut v = json!({
            "name": self.name,
            "resources": self.resources.to_json(),
            "sla_tier": enum_json!(SlaTier, self.sla_tier),
            "privacy_level": enum_json!(PrivacyLevel, self.privacy_level),
            "strategy": enum_json!(RoutingStrategy, self.strategy),
            "affinity_key": self.affinity_key,
            "preferred_labels": self.preferred_labels.to_json(),
            "required_labels": self.required_labels.to_json(),
            "origin": self.origin.to_json(),
            "allowed_regions": self.allowed_regions,
            "timeout_ms": self.timeout_ms,
            "max_retries": self.max_retries,
            "replicas": self.replicas,
        });
        // The oneof: exactly one of its fields appears, as in proto JSON.
        match &self.workload {
            Some(task_spec::Workload::Builtin(b)) => v["builtin"] = b.to_json(),
            Some(task_spec::Workload::Exec(e)) => v["exec"] = e.to_json(),
            None => {}
        }
        v
    }
}

impl ToJson for Attempt {
    fn to_json(&self) -> Value {
        json!({"attempt": self.attempt, "node_id": self.node_id,
               "state": enum_json!(AttemptState, self.state),
               "assigned_at": timestamp(self.assigned_at.as_ref()),
               "finished_at": timestamp(self.finished_at.as_ref()),
               "exit_code": self.exit_code, "error": self.error})
    }
}

impl ToJson for TaskOutput {
    fn to_json(&self) -> Value {
        json!({"stdout": bytes_text(&self.stdout), "stderr": bytes_text(&self.stderr),
               "truncated": self.truncated})
    }
}

impl ToJson for Task {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id, "spec": self.spec.to_json(),
            "state": enum_json!(TaskState, self.state),
            "attempts": self.attempts.to_json(),
            "accepted_attempt": self.accepted_attempt,
            "output": self.output.to_json(), "error": self.error,
            "retries_used": self.retries_used,
            "submitted_at": timestamp(self.submitted_at.as_ref()),
            "placed_at": timestamp(self.placed_at.as_ref()),
            "finished_at": timestamp(self.finished_at.as_ref()),
            "sla_met": self.sla_met, "request_id": self.request_id,
        })
    }
}

impl ToJson for ListTasksResponse {
    fn to_json(&self) -> Value {
        json!({"tasks": self.tasks.to_json(), "next_page_token": self.next_page_token,
               "total_matching": self.total_matching})
    }
}

impl ToJson for WatchTasksResponse {
    fn to_json(&self) -> Value {
        json!({"task": self.task.to_json(), "sequence": self.sequence, "lagged": self.lagged})
    }
}

impl ToJson for PlacementCandidate {
    fn to_json(&self) -> Value {
        json!({"node_id": self.node_id, "score": self.score, "reason": self.reason})
    }
}

impl ToJson for RejectedNode {
    fn to_json(&self) -> Value {
        json!({"node_id": self.node_id, "reasons": self.reasons})
    }
}

impl ToJson for ExplainPlacementResponse {
    fn to_json(&self) -> Value {
        json!({
            "strategy": enum_json!(RoutingStrategy, self.strategy),
            "chosen_node_id": self.chosen_node_id,
            "candidates": self.candidates.to_json(), "rejected": self.rejected.to_json(),
            "nodes_considered": self.nodes_considered, "nodes_fitting": self.nodes_fitting,
            "rejection_counts": map_json(&self.rejection_counts),
        })
    }
}

impl ToJson for Component {
    fn to_json(&self) -> Value {
        json!({"name": self.name, "category": self.category,
               "status": enum_json!(ComponentStatus, self.status),
               "detail": self.detail, "metrics": map_json(&self.metrics)})
    }
}

impl ToJson for GetSystemStatusResponse {
    fn to_json(&self) -> Value {
        json!({"version": self.version, "started_at": timestamp(self.started_at.as_ref()),
               "uptime_seconds": self.uptime_seconds,
               "overall": enum_json!(ComponentStatus, self.overall),
               "components": self.components.to_json(), "epoch": self.epoch})
    }
}

impl ToJson for TopologyNode {
    fn to_json(&self) -> Value {
        json!({"id": self.id, "region": self.region, "zone": self.zone,
               "node_type": enum_json!(NodeType, self.node_type),
               "status": enum_json!(NodeStatus, self.status),
               "flapping": self.flapping, "load": self.load, "session_rtt_ms": self.session_rtt_ms,
               "active_tasks": self.active_tasks, "latitude": self.latitude,
               "longitude": self.longitude, "has_coordinates": self.has_coordinates})
    }
}

impl ToJson for NodeCounts {
    fn to_json(&self) -> Value {
        json!({"total": self.total, "active": self.active, "idle": self.idle, "busy": self.busy,
               "suspect": self.suspect, "offline": self.offline, "maintenance": self.maintenance})
    }
}

impl ToJson for Aggregates {
    fn to_json(&self) -> Value {
        let mut by_type: Vec<_> = self.nodes_by_type.iter().collect();
        by_type.sort_by(|a, b| a.0.cmp(b.0));
        let by_type: Map<String, Value> = by_type.into_iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
        json!({
            "nodes": self.nodes.to_json(), "nodes_by_type": by_type,
            "total_capacity": self.total_capacity.to_json(), "available": self.available.to_json(),
            "queued_tasks": self.queued_tasks, "running_tasks": self.running_tasks,
            "completed_tasks": self.completed_tasks, "failed_tasks": self.failed_tasks,
            "sla_compliance": self.sla_compliance, "average_load": self.average_load,
        })
    }
}

impl ToJson for RegionSummary {
    fn to_json(&self) -> Value {
        json!({"region": self.region, "nodes": self.nodes.to_json(), "zones": self.zones,
               "average_load": self.average_load})
    }
}

impl ToJson for GetTopologyResponse {
    fn to_json(&self) -> Value {
        json!({"revision": self.revision, "epoch": self.epoch,
               "aggregates": self.aggregates.to_json(), "regions": self.regions.to_json(),
               "nodes": self.nodes.to_json()})
    }
}

impl ToJson for TopologySnapshot {
    fn to_json(&self) -> Value {
        json!({"first": self.first, "last": self.last, "nodes": self.nodes.to_json(),
               "aggregates": self.aggregates.to_json(), "regions": self.regions.to_json()})
    }
}

impl ToJson for NodeDelta {
    fn to_json(&self) -> Value {
        json!({"node": self.node.to_json(), "removed": self.removed})
    }
}

impl ToJson for WatchTopologyResponse {
    fn to_json(&self) -> Value {
        use watch_topology_response::Event;
        let mut v = json!({"revision": self.revision, "epoch": self.epoch,
                           "snapshot_reason": enum_json!(SnapshotReason, self.snapshot_reason)});
        match &self.event {
            Some(Event::Snapshot(s)) => v["snapshot"] = s.to_json(),
            Some(Event::Node(n)) => v["node"] = n.to_json(),
            Some(Event::Aggregates(a)) => v["aggregates"] = a.to_json(),
            Some(Event::Bookmark(t)) => v["bookmark"] = timestamp(Some(t)),
            None => {}
        }
        v
    }
}

impl ToJson for AggregateSnapshot {
    fn to_json(&self) -> Value {
        json!({"taken_at": timestamp(self.taken_at.as_ref()), "revision": self.revision,
               "aggregates": self.aggregates.to_json()})
    }
}

impl ToJson for GetTopologyHistoryResponse {
    fn to_json(&self) -> Value {
        json!({"snapshots": self.snapshots.to_json()})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_json_uses_proto_names() {
        let task = Task {
            id: "t1".into(),
            state: TaskState::Succeeded as i32,
            spec: Some(TaskSpec {
                name: "n".into(),
                workload: Some(task_spec::Workload::Builtin(BuiltinTask {
                    kind: Some(builtin_task::Kind::Echo("hi".into())),
                })),
                sla_tier: SlaTier::Gold as i32,
                max_retries: Some(0),
                ..Default::default()
            }),
            attempts: vec![Attempt { attempt: 1, node_id: "n1".into(), state: 3, ..Default::default() }],
            output: Some(TaskOutput { stdout: b"hi".to_vec(), ..Default::default() }),
            submitted_at: Some(Timestamp { seconds: 1_700_000_000, nanos: 0 }),
            ..Default::default()
        };
        let v = task.to_json();
        assert_eq!(v["state"], "TASK_STATE_SUCCEEDED");
        assert_eq!(v["spec"]["sla_tier"], "SLA_TIER_GOLD");
        assert_eq!(v["spec"]["privacy_level"], "PRIVACY_LEVEL_UNSPECIFIED");
        assert_eq!(v["spec"]["builtin"], json!({"echo": "hi"}));
        assert_eq!(v["spec"]["max_retries"], 0);
        assert!(v["spec"].get("exec").is_none());
        assert_eq!(v["attempts"][0]["state"], "ATTEMPT_STATE_SUCCEEDED");
        assert_eq!(v["output"]["stdout"], "hi");
        assert_eq!(v["submitted_at"], "2023-11-14T22:13:20Z");
        assert_eq!(v["placed_at"], Value::Null);
        assert_eq!(v["sla_met"], Value::Null);
    }

    #[test]
    fn unknown_enum_values_stay_numbers() {
        let n = Node { status: 42, ..Default::default() };
        assert_eq!(n.to_json()["status"], 42);
        assert_eq!(n.to_json()["node_type"], "NODE_TYPE_UNSPECIFIED");
    }

    #[test]
    fn topology_event_carries_its_oneof() {
        let ev = WatchTopologyResponse {
            revision: 7,
            epoch: "e".into(),
            event: Some(watch_topology_response::Event::Node(NodeDelta {
                node: Some(TopologyNode { id: "n1".into(), status: 2, ..Default::default() }),
                removed: false,
            })),
            snapshot_reason: 0,
        };
        let v = ev.to_json();
        assert_eq!(v["revision"], 7);
        assert_eq!(v["node"]["node"]["status"], "NODE_STATUS_IDLE");
        assert!(v.get("snapshot").is_none());
    }

    #[test]
    fn maps_are_sorted_objects() {
        let mut r = ExplainPlacementResponse::default();
        r.rejection_counts.insert("offline".into(), 2);
        r.rejection_counts.insert("cpu".into(), 5);
        let v = r.to_json();
        assert_eq!(v["rejection_counts"], json!({"cpu": 5, "offline": 2}));
        assert_eq!(serde_json::to_string(&v["rejection_counts"]).unwrap(), r#"{"cpu":5,"offline":2}"#);
    }
}
