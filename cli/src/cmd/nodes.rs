//! `fogctl nodes …`: the operators' view of the fleet, and its admin actions
//! (cordon, uncordon, drain, maintenance, remove, labels).

use fog_proto::auth::Authed;
use std::process::ExitCode;

use fog_proto::v1::fleet_service_client::FleetServiceClient;
use fog_proto::v1::{
    CordonNodeRequest, DrainNodeRequest, GetNodeRequest, GetNodeResponse, Label, ListNodesRequest, ListNodesResponse,
    Liveness, Node, NodeStatus, NodeType, PowerMode, RemoveNodeRequest, SetMaintenanceRequest, UncordonNodeRequest,
    UpdateNodeLabelsRequest,
};

use super::Ctx;
use crate::args::{NodesCommand, NodesListArgs, OnOff};
use crate::error::CliError;
use crate::json::ToJson;
use crate::output::{Table, age, cores, emit, key_values, mib, percent, time};
use crate::short;

/// Largest page the contract allows.
const MAX_PAGE: u32 = 1000;

/// Runs `fogctl nodes …`.
pub async fn run(ctx: &Ctx, cmd: NodesCommand) -> Result<ExitCode, CliError> {
    let mut client = FleetServiceClient::new(ctx.connect().await?);
    match cmd {
        NodesCommand::List(args) => {
            let all = list_all(&mut client, ctx, &args).await?;
            emit(ctx.format, || all.to_json(), || render_list(&all));
        }
        NodesCommand::Get { id } => {
            let reply = client.get_node(GetNodeRequest { node_id: id }).await.map_err(|s| ctx.status(s))?.into_inner();
            emit(ctx.format, || reply.to_json(), || render_node(&reply));
        }
        NodesCommand::Cordon { id } => {
            let r = client.cordon_node(CordonNodeRequest { node_id: id }).await.map_err(|s| ctx.status(s))?;
            changed(ctx, r.into_inner().node, "cordoned: no new tasks are placed here");
        }
        NodesCommand::Uncordon { id } => {
            let r = client.uncordon_node(UncordonNodeRequest { node_id: id }).await.map_err(|s| ctx.status(s))?;
            changed(ctx, r.into_inner().node, "uncordoned: tasks may be placed here again");
        }
        NodesCommand::Drain { id } => {
            let r = client.drain_node(DrainNodeRequest { node_id: id }).await.map_err(|s| ctx.status(s))?;
            changed(ctx, r.into_inner().node, "draining: cordoned, its tasks move elsewhere");
        }
        NodesCommand::Maintenance { id, state } => {
            let maintenance = state == OnOff::On;
            let r = client
                .set_maintenance(SetMaintenanceRequest { node_id: id, maintenance })
                .await
                .map_err(|s| ctx.status(s))?;
            let what = if maintenance { "in maintenance" } else { "out of maintenance" };
            changed(ctx, r.into_inner().node, what);
        }
        NodesCommand::Remove { id } => {
            let r = client
                .remove_node(RemoveNodeRequest { node_id: id.clone() })
                .await
                .map_err(|s| ctx.status(s))?
                .into_inner();
            emit(
                ctx.format,
                || serde_json::json!({"node_id": id, "removed": true, "requeued_tasks": r.requeued_tasks}),
                || format!("{id}: removed; {} task(s) re-queued; it must join again\n", r.requeued_tasks),
            );
        }
        NodesCommand::Label { id, changes } => {
            let (set, remove) = label_changes(&changes)?;
            let r = client
                .update_node_labels(UpdateNodeLabelsRequest { node_id: id, set, remove })
                .await
                .map_err(|s| ctx.status(s))?;
            changed(ctx, r.into_inner().node, "labels updated");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a node after an admin action: the node for programs, one line for people.
fn changed(ctx: &Ctx, node: Option<Node>, what: &str) {
    let node = node.unwrap_or_default();
    emit(
        ctx.format,
        || node.to_json(),
        || {
            let labels: Vec<String> = node.labels.iter().map(|l| format!("{}={}", l.key, l.value)).collect();
            format!("{}: {what} (status {}; labels {})\n", node.id, status_text(&node), labels.join(","))
        },
    );
}

/// `key=value` → set, `key-` → remove, as `kubectl label` takes them.
fn label_changes(changes: &[String]) -> Result<(Vec<Label>, Vec<String>), CliError> {
    let mut set = Vec::new();
    let mut remove = Vec::new();
    for c in changes {
        if let Some((key, value)) = c.split_once('=') {
            set.push(Label { key: key.to_string(), value: value.to_string() });
        } else if let Some(key) = c.strip_suffix('-').filter(|k| !k.is_empty()) {
            remove.push(key.to_string());
        } else {
            return Err(CliError::Usage(format!("label change {c:?}: expected key=value (set) or key- (remove)")));
        }
    }
    Ok((set, remove))
}

/// Follows pages until the last one or `--limit`; returns them as one response.
async fn list_all(
    client: &mut FleetServiceClient<Authed>,
    ctx: &Ctx,
    args: &NodesListArgs,
) -> Result<ListNodesResponse, CliError> {
    let limit = args.limit.map(|l| l as usize);
    let mut all = ListNodesResponse::default();
    let mut token = String::new();
    loop {
        let want = limit.map_or(MAX_PAGE as usize, |l| (l - all.nodes.len()).min(MAX_PAGE as usize));
        let page = client
            .list_nodes(ListNodesRequest {
                status: args.status.map_or(0, |s| s.to_proto() as i32),
                node_type: args.node_type.map_or(0, |t| t.to_proto() as i32),
                region: args.region.clone().unwrap_or_default(),
                labels: args.labels.iter().map(|(k, v)| Label { key: k.clone(), value: v.clone() }).collect(),
                page_size: want as u32,
                page_token: token,
            })
            .await
            .map_err(|s| ctx.status(s))?
            .into_inner();
        all.total_matching = page.total_matching;
        all.nodes.extend(page.nodes);
        token = page.next_page_token;
        if let Some(l) = limit {
            all.nodes.truncate(l);
            if all.nodes.len() >= l {
                all.next_page_token = token;
                break;
            }
        }
        if token.is_empty() {
            break;
        }
    }
    Ok(all)
}

fn render_list(r: &ListNodesResponse) -> String {
    if r.nodes.is_empty() {
        return "no nodes match\n".to_string();
    }
    let mut t = Table::new(&["ID", "TYPE", "STATUS", "REGION", "CPU", "MEMORY", "TASKS", "LOAD", "REP", "HEARTBEAT"]);
    for n in &r.nodes {
        t.row(vec![
            n.id.clone(),
            short!(NodeType, n.node_type, "NODE_TYPE_"),
            status_text(n),
            n.location.as_ref().map(|l| l.region.clone()).unwrap_or_default(),
            usage_of(n, |r| u64::from(r.cpu_millis), cores),
            usage_of(n, |r| r.memory_mb, mib),
            n.active_tasks.to_string(),
            format!("{}/{}", percent(n.cpu_usage), percent(n.memory_usage)),
            format!("{:.2}", n.reputation),
            age(n.last_heartbeat.as_ref()),
        ]);
    }
    let mut out = t.render();
    if (r.nodes.len() as u64) < r.total_matching {
        out.push_str(&format!("({} of {} nodes shown)\n", r.nodes.len(), r.total_matching));
    }
    out
}

/// Status plus the admin flags that qualify it, e.g. `idle,cordoned`.
fn status_text(n: &Node) -> String {
    let mut s = short!(NodeStatus, n.status, "NODE_STATUS_");
    let flags = [
        (n.cordoned, "cordoned"),
        (n.draining, "draining"),
        (n.flapping, "flapping"),
        (n.state_unwritable, "disk-unwritable"),
    ];
    for (on, flag) in flags {
        if on {
            s.push(',');
            s.push_str(flag);
        }
    }
    s
}

/// `allocated/capacity` of one resource.
fn usage_of(n: &Node, get: impl Fn(&fog_proto::v1::Resources) -> u64, fmt: fn(u64) -> String) -> String {
    let alloc = n.allocated.as_ref().map_or(0, &get);
    let cap = n.capacity.as_ref().map_or(0, &get);
    format!("{}/{}", fmt(alloc), fmt(cap))
}

fn render_node(r: &GetNodeResponse) -> String {
    let Some(n) = &r.node else {
        return "no node in the reply\n".to_string();
    };
    let loc = n.location.clone().unwrap_or_default();
    let place = if loc.has_coordinates {
        format!("{} {} ({:.4}, {:.4})", loc.region, loc.zone, loc.latitude, loc.longitude)
    } else {
        format!("{} {}", loc.region, loc.zone)
    };
    let labels: Vec<String> = n.labels.iter().map(|l| format!("{}={}", l.key, l.value)).collect();
    let battery = if n.battery_percent < 0 {
        "none".to_string()
    } else {
        format!("{}%{}", n.battery_percent, if n.charging { " (charging)" } else { "" })
    };
    let temperature =
        if n.temperature_celsius <= -1000.0 { "-".to_string() } else { format!("{:.1} °C", n.temperature_celsius) };
    let gpus = |r: &Option<fog_proto::v1::Resources>| r.as_ref().map_or(0, |r| r.gpus);
    let storage = usage_of(n, |r| r.storage_mb, mib);
    let mut rows = vec![
        ("id", n.id.clone()),
        ("name", n.name.clone()),
        ("type", short!(NodeType, n.node_type, "NODE_TYPE_")),
        ("status", status_text(n)),
        ("liveness", short!(Liveness, n.liveness, "LIVENESS_")),
        ("maintenance", n.maintenance.to_string()),
        ("location", place.trim().to_string()),
        ("labels", labels.join(", ")),
        (
            "cpu",
            format!(
                "{} cores allocated, usage {}",
                usage_of(n, |r| u64::from(r.cpu_millis), cores),
                percent(n.cpu_usage)
            ),
        ),
        ("memory", format!("{} allocated, usage {}", usage_of(n, |r| r.memory_mb, mib), percent(n.memory_usage))),
        ("storage", format!("{storage} allocated")),
        ("gpus", format!("{}/{}", gpus(&n.allocated), gpus(&n.capacity))),
        (
            "power",
            format!("{}, battery {battery}, temperature {temperature}", short!(PowerMode, n.power_mode, "POWER_MODE_")),
        ),
        ("tasks", format!("{} active, {} completed, {} failed", n.active_tasks, n.completed_tasks, n.failed_tasks)),
        ("reputation", format!("{:.3}", n.reputation)),
        ("uptime", format!("{:.1}%", n.uptime_percent)),
        ("onion routing", n.supports_onion_routing.to_string()),
        ("session rtt", format!("{:.1} ms", n.session_rtt_ms)),
        ("last heartbeat", format!("{} ({})", time(n.last_heartbeat.as_ref()), age(n.last_heartbeat.as_ref()))),
        ("registered", time(n.registered_at.as_ref())),
        ("agent", n.agent_version.clone()),
    ];
    if !n.session_replica.is_empty() {
        rows.push(("session held by", n.session_replica.clone()));
    }
    let mut out = key_values(&rows);
    if !r.task_ids.is_empty() {
        out.push_str(&format!("\ntasks on the node ({}):\n", r.task_ids.len()));
        for id in &r.task_ids {
            out.push_str(&format!("  {id}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use fog_proto::v1::Resources;

    #[test]
    fn list_shows_usage_and_flags() {
        let node = Node {
            id: "n1".into(),
            node_type: NodeType::Gateway as i32,
            status: NodeStatus::Idle as i32,
            cordoned: true,
            state_unwritable: true,
            capacity: Some(Resources { cpu_millis: 4000, memory_mb: 8192, ..Default::default() }),
            allocated: Some(Resources { cpu_millis: 1500, memory_mb: 512, ..Default::default() }),
            ..Default::default()
        };
        let text = render_list(&ListNodesResponse { nodes: vec![node], total_matching: 3, ..Default::default() });
        assert!(text.contains("n1  gateway  idle,cordoned,disk-unwritable"), "{text}");
        assert!(text.contains("1.5/4"), "{text}");
        assert!(text.contains("512Mi/8Gi"), "{text}");
        assert!(text.ends_with("(1 of 3 nodes shown)\n"), "{text}");
    }

    #[test]
    fn get_shows_tasks_and_no_battery() {
        let r = GetNodeResponse {
            node: Some(Node {
                id: "n1".into(),
                battery_percent: -1,
                temperature_celsius: -1000.0,
                ..Default::default()
            }),
            task_ids: vec!["t1".into()],
        };
        let text = render_node(&r);
        assert!(text.contains("battery none, temperature -"), "{text}");
        assert!(text.contains("tasks on the node (1):\n  t1\n"), "{text}");
    }
}
