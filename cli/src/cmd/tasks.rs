//! `fogctl tasks …`: submit, follow, list, cancel and explain tasks.

use fog_proto::auth::Authed;
use std::collections::{BTreeMap, HashSet};
use std::process::ExitCode;
use std::time::Duration;

use fog_proto::v1::task_service_client::TaskServiceClient;
use fog_proto::v1::{
    AttemptState, BuiltinTask, CancelTaskRequest, ExecTask, ExplainPlacementRequest, ExplainPlacementResponse,
    GetTaskRequest, Label, ListTasksRequest, ListTasksResponse, Location, PrivacyLevel, Resources, RoutingStrategy,
    SlaTier, SubmitTaskRequest, Task, TaskSpec, TaskState, WatchTasksRequest, WatchTasksResponse, builtin_task::Kind,
    task_spec::Workload,
};
use futures::StreamExt;

use super::Ctx;
use crate::args::{ExplainArgs, OutputFormat, SubmitArgs, TaskSpecArgs, TasksCommand, TasksListArgs};
use crate::error::CliError;
use crate::json::ToJson;
use crate::output::{self, Shape, Table, emit, key_values, text, time};
use crate::short;

const MAX_PAGE: u32 = 1000;

type Client = TaskServiceClient<Authed>;

/// Runs `fogctl tasks …`.
pub async fn run(ctx: &Ctx, cmd: TasksCommand) -> Result<ExitCode, CliError> {
    // Usage errors first: they must not depend on the coordinator being up.
    let mut cmd = cmd;
    match &mut cmd {
        TasksCommand::Submit(args) => {
            if let Some(path) = &args.file {
                args.spec = read_spec_file(path)?;
            }
            args.spec.validate().map_err(CliError::Usage)?;
            if !args.spec.has_workload() {
                return Err(CliError::Usage(
                    "a workload is required: one of --sleep-ms, --echo, --hash-rounds, --fail, --exec \
                     (in a spec file: sleep_ms, echo, hash_rounds, fail, exec)"
                        .into(),
                ));
            }
        }
        TasksCommand::Explain(args) => args.spec.validate().map_err(CliError::Usage)?,
        _ => {}
    }
    let mut client = TaskServiceClient::new(ctx.connect().await?);
    match cmd {
        TasksCommand::Submit(args) => return submit(ctx, &mut client, *args).await,
        TasksCommand::Get { id } => {
            let task = get(ctx, &mut client, &id).await?;
            emit(ctx.format, || task.to_json(), || render_task(&task));
        }
        TasksCommand::List(args) => {
            let all = list_all(ctx, &mut client, &args).await?;
            emit(ctx.format, || all.to_json(), || render_list(&all));
        }
        TasksCommand::Cancel { id, reason } => {
            let task = client
                .cancel_task(CancelTaskRequest { task_id: id, reason: reason.unwrap_or_default() })
                .await
                .map_err(|s| ctx.status(s))?
                .into_inner()
                .task
                .unwrap_or_default();
            emit(ctx.format, || task.to_json(), || format!("{} {}\n", task.id, state_name(task.state)));
        }
        TasksCommand::Watch { ids } => return watch(ctx, &mut client, ids).await,
        TasksCommand::Explain(args) => {
            let reply = explain(ctx, &mut client, *args).await?;
            emit(ctx.format, || reply.to_json(), || render_explain(&reply));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn labels(pairs: &[(String, String)]) -> Vec<Label> {
    pairs.iter().map(|(k, v)| Label { key: k.clone(), value: v.clone() }).collect()
}

/// The `TaskSpec` the flags describe. Unset flags stay at the proto defaults,
/// A task spec file: YAML or JSON (YAML parses both), `-` for standard input.
fn read_spec_file(path: &std::path::Path) -> Result<TaskSpecArgs, CliError> {
    let text = if path == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| CliError::Usage(format!("--file {}: {e}", path.display())))?;
    serde_yaml_ng::from_str(&text).map_err(|e| CliError::Usage(format!("--file {}: {e}", path.display())))
}

/// so the coordinator's defaults (tier retries and replicas, timeout) apply.
pub fn build_spec(a: &TaskSpecArgs) -> TaskSpec {
    let builtin = |kind| Some(Workload::Builtin(BuiltinTask { kind: Some(kind) }));
    let workload = if let Some(ms) = a.sleep_ms {
        builtin(Kind::SleepMs(ms))
    } else if let Some(t) = &a.echo {
        builtin(Kind::Echo(t.clone()))
    } else if let Some(n) = a.hash_rounds {
        builtin(Kind::HashRounds(n))
    } else if let Some(m) = &a.fail {
        builtin(Kind::Fail(m.clone()))
    } else {
        a.exec.as_ref().map(|cmd| {
            Workload::Exec(ExecTask {
                command: cmd.clone(),
                args: a.args.clone(),
                env: a.env.iter().cloned().collect(),
                working_dir: String::new(),
            })
        })
    };
    let resources = Resources {
        cpu_millis: a.cpu_millis.unwrap_or(0),
        memory_mb: a.memory_mb.unwrap_or(0),
        storage_mb: a.storage_mb.unwrap_or(0),
        gpus: a.gpus.unwrap_or(0),
    };
    let origin = (a.origin_region.is_some() || a.origin_lat.is_some()).then(|| Location {
        region: a.origin_region.clone().unwrap_or_default(),
        zone: String::new(),
        has_coordinates: a.origin_lat.is_some() && a.origin_lon.is_some(),
        latitude: a.origin_lat.unwrap_or(0.0),
        longitude: a.origin_lon.unwrap_or(0.0),
    });
    TaskSpec {
        name: a.name.clone().unwrap_or_default(),
        workload,
        resources: Some(resources),
        sla_tier: a.tier.map_or(SlaTier::Unspecified, |t| t.to_proto()) as i32,
        privacy_level: a.privacy.map_or(PrivacyLevel::Unspecified, |p| p.to_proto()) as i32,
        strategy: a.strategy.map_or(RoutingStrategy::Unspecified, |s| s.to_proto()) as i32,
        affinity_key: a.affinity_key.clone().unwrap_or_default(),
        preferred_labels: labels(&a.preferred_labels),
        required_labels: labels(&a.required_labels),
        origin,
        allowed_regions: a.allowed_regions.clone(),
        timeout_ms: a.timeout_ms.unwrap_or(0),
        max_retries: a.retries,
        replicas: a.replicas.unwrap_or(0),
    }
}

/// The idempotency key of copy `i` of `count`.
pub fn request_id_for(base: Option<&str>, i: u32, count: u32) -> String {
    match base {
        Some(b) if count > 1 => format!("{b}-{i}"),
        Some(b) => b.to_string(),
        None => String::new(),
    }
}

fn is_terminal(state: i32) -> bool {
    matches!(TaskState::try_from(state), Ok(TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled))
}

fn state_name(state: i32) -> String {
    short!(TaskState, state, "TASK_STATE_")
}

/// How long `submit_paced` keeps waiting out the coordinator's rate limit.
const PACED_FOR: Duration = Duration::from_secs(60);

/// Submits one task, waiting out the coordinator's rate limit: a limited call
/// was refused before it did anything (and `--count` copies carry request ids
/// when asked to), so it is safe to send again after the delay the
/// coordinator names in `RetryInfo`. Other errors return at once.
async fn submit_paced(
    client: &mut Client,
    request: SubmitTaskRequest,
) -> Result<fog_proto::v1::SubmitTaskResponse, tonic::Status> {
    use tonic_types::StatusExt;
    let give_up = std::time::Instant::now() + PACED_FOR;
    loop {
        match client.submit_task(request.clone()).await {
            Err(s) if s.code() == tonic::Code::ResourceExhausted && std::time::Instant::now() < give_up => {
                let wait = s
                    .get_details_retry_info()
                    .and_then(|r| r.retry_delay)
                    .unwrap_or(Duration::from_millis(200))
                    .clamp(Duration::from_millis(1), Duration::from_secs(5));
                tokio::time::sleep(wait).await;
            }
            other => return other.map(tonic::Response::into_inner),
        }
    }
}

async fn submit(ctx: &Ctx, client: &mut Client, args: SubmitArgs) -> Result<ExitCode, CliError> {
    let spec = build_spec(&args.spec);
    let mut tasks = Vec::with_capacity(args.count as usize);
    for i in 0..args.count {
        let request = SubmitTaskRequest {
            spec: Some(spec.clone()),
            request_id: request_id_for(args.request_id.as_deref(), i, args.count),
        };
        let task = submit_paced(client, request).await.map_err(|s| ctx.status(s))?.task.unwrap_or_default();
        if !args.wait {
            match ctx.format {
                OutputFormat::Json | OutputFormat::Yaml => output::machine(ctx.format, &task.to_json(), Shape::Item),
                OutputFormat::Table => println!("{}", task.id),
            }
        }
        tasks.push(task);
    }
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let ids: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
    eprintln!("submitted {}; waiting…", ids.join(", "));
    let finished = wait_for(ctx, client, &ids).await?;
    let mut all_ok = true;
    for task in &finished {
        all_ok &= task.state == TaskState::Succeeded as i32;
        match ctx.format {
            OutputFormat::Json | OutputFormat::Yaml => output::machine(ctx.format, &task.to_json(), Shape::Document),
            OutputFormat::Table => print!("{}", render_result(task)),
        }
    }
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::from(crate::error::EXIT_FAILURE) })
}

/// Follows the tasks until each is terminal; returns them in the order of `ids`.
async fn wait_for(ctx: &Ctx, client: &mut Client, ids: &[String]) -> Result<Vec<Task>, CliError> {
    let mut done: BTreeMap<String, Task> = BTreeMap::new();
    let wanted: HashSet<&String> = ids.iter().collect();
    let mut failures = 0u32;
    while done.len() < ids.len() {
        let pending: Vec<String> = ids.iter().filter(|id| !done.contains_key(*id)).cloned().collect();
        // initial_state closes the race between submitting and starting the watch.
        let stream = client.watch_tasks(WatchTasksRequest { task_ids: pending.clone(), initial_state: true }).await;
        let mut stream = match stream {
            Ok(s) => s.into_inner(),
            Err(s) if failures < 5 && s.code() == tonic::Code::Unavailable => {
                failures += 1;
                tokio::time::sleep(Duration::from_millis(500 * u64::from(failures))).await;
                continue;
            }
            Err(s) => return Err(ctx.status(s)),
        };
        while let Some(event) = stream.next().await {
            let event = match event {
                Ok(e) => e,
                Err(s) if s.code() == tonic::Code::Unavailable && failures < 5 => {
                    failures += 1;
                    break;
                }
                Err(s) => return Err(ctx.status(s)),
            };
            if event.lagged {
                // Events were dropped: re-read what we wait for.
                for id in &pending {
                    let task = get(ctx, client, id).await?;
                    if is_terminal(task.state) {
                        done.insert(task.id.clone(), task);
                    }
                }
            }
            if let Some(task) = event.task
                && wanted.contains(&task.id)
                && is_terminal(task.state)
            {
                done.insert(task.id.clone(), task);
            }
            if done.len() == ids.len() {
                break;
            }
        }
    }
    Ok(ids.iter().filter_map(|id| done.remove(id)).collect())
}

async fn get(ctx: &Ctx, client: &mut Client, id: &str) -> Result<Task, CliError> {
    Ok(client
        .get_task(GetTaskRequest { task_id: id.to_string() })
        .await
        .map_err(|s| ctx.status(s))?
        .into_inner()
        .task
        .unwrap_or_default())
}

async fn list_all(ctx: &Ctx, client: &mut Client, args: &TasksListArgs) -> Result<ListTasksResponse, CliError> {
    let limit = args.limit.map(|l| l as usize);
    let mut all = ListTasksResponse::default();
    let mut token = String::new();
    loop {
        let want = limit.map_or(MAX_PAGE as usize, |l| (l - all.tasks.len()).min(MAX_PAGE as usize));
        let page = client
            .list_tasks(ListTasksRequest {
                states: args.states.iter().map(|s| s.to_proto() as i32).collect(),
                sla_tier: args.tier.map_or(0, |t| t.to_proto() as i32),
                node_id: args.node_id.clone().unwrap_or_default(),
                page_size: want as u32,
                page_token: token,
            })
            .await
            .map_err(|s| ctx.status(s))?
            .into_inner();
        all.total_matching = page.total_matching;
        all.tasks.extend(page.tasks);
        token = page.next_page_token;
        if let Some(l) = limit {
            all.tasks.truncate(l);
            if all.tasks.len() >= l {
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

/// How far a set of tasks has come: the latest state of each.
#[derive(Debug)]
pub struct Progress {
    states: BTreeMap<String, i32>,
}

impl Progress {
    /// None of `ids` seen yet.
    pub fn new(ids: &[String]) -> Progress {
        Progress { states: ids.iter().map(|id| (id.clone(), TaskState::Unspecified as i32)).collect() }
    }

    /// Records a task's state if it is one of ours; true if it is.
    pub fn update(&mut self, task: &Task) -> bool {
        match self.states.get_mut(&task.id) {
            Some(s) => {
                *s = task.state;
                true
            }
            None => false,
        }
    }

    /// Whether every task has ended.
    pub fn done(&self) -> bool {
        self.states.values().all(|s| is_terminal(*s))
    }

    /// Whether every task succeeded.
    pub fn all_succeeded(&self) -> bool {
        self.states.values().all(|s| *s == TaskState::Succeeded as i32)
    }

    /// `2/5 finished (2 succeeded, 0 failed, 0 cancelled)`.
    pub fn summary(&self) -> String {
        let count = |st: TaskState| self.states.values().filter(|s| **s == st as i32).count();
        let finished = self.states.values().filter(|s| is_terminal(**s)).count();
        format!(
            "{finished}/{} finished ({} succeeded, {} failed, {} cancelled)",
            self.states.len(),
            count(TaskState::Succeeded),
            count(TaskState::Failed),
            count(TaskState::Cancelled),
        )
    }
}

/// `tasks watch`: every task's events until Ctrl-C; or, given ids, theirs
/// with a progress line, until all have ended (exit 1 if any did not succeed).
async fn watch(ctx: &Ctx, client: &mut Client, ids: Vec<String>) -> Result<ExitCode, CliError> {
    let initial_state = !ids.is_empty();
    let mut progress = (!ids.is_empty()).then(|| Progress::new(&ids));
    let mut stream = client
        .watch_tasks(WatchTasksRequest { task_ids: ids, initial_state })
        .await
        .map_err(|s| ctx.status(s))?
        .into_inner();
    loop {
        let event = tokio::select! {
            e = stream.next() => e,
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        };
        let e = match event {
            None => {
                eprintln!("watch ended by the coordinator");
                return Ok(ExitCode::SUCCESS);
            }
            Some(Err(s)) => return Err(ctx.status(s)),
            Some(Ok(e)) => e,
        };
        match ctx.format {
            OutputFormat::Json | OutputFormat::Yaml => output::machine(ctx.format, &e.to_json(), Shape::Item),
            OutputFormat::Table => {
                if e.lagged {
                    eprintln!("(events were dropped; re-read the tasks with `fogctl tasks get`)");
                }
                if e.task.is_some() {
                    println!("{}", watch_line(&e));
                }
            }
        }
        if let (Some(p), Some(task)) = (&mut progress, &e.task)
            && p.update(task)
        {
            if ctx.format == OutputFormat::Table {
                eprintln!("progress: {}", p.summary());
            }
            if p.done() {
                return Ok(if p.all_succeeded() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
            }
        }
    }
}

/// One line per task event: sequence, id, state, node of the latest attempt, name, error.
pub fn watch_line(e: &WatchTasksResponse) -> String {
    let task = e.task.clone().unwrap_or_default();
    let node = task.attempts.last().map(|a| a.node_id.as_str()).unwrap_or("-");
    let name = task.spec.as_ref().map(|s| s.name.as_str()).unwrap_or("");
    let mut line = format!("{:>6}  {}  {:<9}  {}", e.sequence, task.id, state_name(task.state), node);
    if !name.is_empty() {
        line.push_str(&format!("  {name}"));
    }
    if !task.error.is_empty() {
        line.push_str(&format!("  error: {}", task.error));
    }
    line
}

async fn explain(ctx: &Ctx, client: &mut Client, args: ExplainArgs) -> Result<ExplainPlacementResponse, CliError> {
    let mut request = ExplainPlacementRequest { limit: args.limit.unwrap_or(0), ..Default::default() };
    match args.task {
        Some(id) => request.task_id = id,
        None => {
            let mut spec = build_spec(&args.spec);
            if spec.workload.is_none() {
                // Placement does not depend on the workload, but a spec needs one to be valid.
                spec.workload = Some(Workload::Builtin(BuiltinTask { kind: Some(Kind::SleepMs(0)) }));
            }
            request.spec = Some(spec);
        }
    }
    Ok(client.explain_placement(request).await.map_err(|s| ctx.status(s))?.into_inner())
}

fn workload_text(spec: Option<&TaskSpec>) -> String {
    match spec.and_then(|s| s.workload.as_ref()) {
        Some(Workload::Builtin(b)) => match &b.kind {
            Some(Kind::SleepMs(ms)) => format!("sleep {ms} ms"),
            Some(Kind::Echo(t)) => format!("echo {t:?}"),
            Some(Kind::HashRounds(n)) => format!("hash {n} rounds"),
            Some(Kind::Fail(m)) => format!("fail {m:?}"),
            None => "builtin (empty)".into(),
        },
        Some(Workload::Exec(e)) => format!("exec {} {}", e.command, e.args.join(" ")).trim_end().to_string(),
        None => "-".into(),
    }
}

fn render_list(r: &ListTasksResponse) -> String {
    if r.tasks.is_empty() {
        return "no tasks match\n".to_string();
    }
    let mut t = Table::new(&["ID", "NAME", "STATE", "TIER", "NODE", "ATTEMPTS", "SUBMITTED", "WORKLOAD"]);
    for task in &r.tasks {
        let spec = task.spec.as_ref();
        t.row(vec![
            task.id.clone(),
            spec.map(|s| s.name.clone()).unwrap_or_default(),
            state_name(task.state),
            short!(SlaTier, spec.map_or(0, |s| s.sla_tier), "SLA_TIER_"),
            task.attempts.last().map(|a| a.node_id.clone()).unwrap_or_else(|| "-".into()),
            task.attempts.len().to_string(),
            time(task.submitted_at.as_ref()),
            workload_text(spec),
        ]);
    }
    let mut out = t.render();
    if (r.tasks.len() as u64) < r.total_matching {
        out.push_str(&format!("({} of {} tasks shown)\n", r.tasks.len(), r.total_matching));
    }
    out
}

fn render_task(task: &Task) -> String {
    let spec = task.spec.clone().unwrap_or_default();
    let res = spec.resources.unwrap_or_default();
    let sla = match task.sla_met {
        Some(true) => "met",
        Some(false) => "missed",
        None => "-",
    };
    let mut out = key_values(&[
        ("id", task.id.clone()),
        ("name", spec.name.clone()),
        ("state", state_name(task.state)),
        ("workload", workload_text(task.spec.as_ref())),
        ("tier", short!(SlaTier, spec.sla_tier, "SLA_TIER_")),
        ("privacy", short!(PrivacyLevel, spec.privacy_level, "PRIVACY_LEVEL_")),
        ("strategy", short!(RoutingStrategy, spec.strategy, "ROUTING_STRATEGY_")),
        (
            "resources",
            format!(
                "cpu {}m, memory {} MiB, storage {} MiB, gpus {}",
                res.cpu_millis, res.memory_mb, res.storage_mb, res.gpus
            ),
        ),
        ("retries used", task.retries_used.to_string()),
        ("submitted", time(task.submitted_at.as_ref())),
        ("placed", time(task.placed_at.as_ref())),
        ("finished", time(task.finished_at.as_ref())),
        ("sla", sla.to_string()),
        ("request id", task.request_id.clone()),
        ("error", task.error.clone()),
    ]);
    if !task.attempts.is_empty() {
        let mut t = Table::new(&["ATTEMPT", "NODE", "STATE", "ASSIGNED", "FINISHED", "ERROR"]);
        for a in &task.attempts {
            let mark = if a.attempt == task.accepted_attempt { "*" } else { "" };
            t.row(vec![
                format!("{}{mark}", a.attempt),
                a.node_id.clone(),
                short!(AttemptState, a.state, "ATTEMPT_STATE_"),
                time(a.assigned_at.as_ref()),
                time(a.finished_at.as_ref()),
                a.error.clone(),
            ]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }
    if let Some(o) = &task.output
        && (!o.stdout.is_empty() || !o.stderr.is_empty())
    {
        out.push_str(&format!("\nstdout{}:\n{}\n", if o.truncated { " (truncated)" } else { "" }, text(&o.stdout)));
        if !o.stderr.is_empty() {
            out.push_str(&format!("stderr:\n{}\n", text(&o.stderr)));
        }
    }
    out
}

/// The result of a finished task, for `submit --wait`.
fn render_result(task: &Task) -> String {
    let node = task
        .attempts
        .iter()
        .find(|a| a.attempt == task.accepted_attempt)
        .or(task.attempts.last())
        .map(|a| a.node_id.as_str())
        .unwrap_or("-");
    let mut out = format!("{} {} on {node}\n", task.id, state_name(task.state));
    if !task.error.is_empty() {
        out.push_str(&format!("error: {}\n", task.error));
    }
    if let Some(o) = task.output.as_ref().filter(|o| !o.stdout.is_empty()) {
        out.push_str(&text(&o.stdout));
        if !o.stdout.ends_with(b"\n") {
            out.push('\n');
        }
    }
    out
}

fn render_explain(r: &ExplainPlacementResponse) -> String {
    let chosen = if r.chosen_node_id.is_empty() { "(none fits)".to_string() } else { r.chosen_node_id.clone() };
    let mut out = key_values(&[
        ("strategy", short!(RoutingStrategy, r.strategy, "ROUTING_STRATEGY_")),
        ("chosen node", chosen),
        ("nodes", format!("{} considered, {} fit", r.nodes_considered, r.nodes_fitting)),
    ]);
    if !r.candidates.is_empty() {
        let mut t = Table::new(&["CANDIDATE", "SCORE", "REASON"]);
        for c in &r.candidates {
            t.row(vec![c.node_id.clone(), format!("{:.3}", c.score), c.reason.clone()]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }
    if !r.rejected.is_empty() {
        let mut t = Table::new(&["REJECTED", "REASONS"]);
        for n in &r.rejected {
            t.row(vec![n.node_id.clone(), n.reasons.join("; ")]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }
    if !r.rejection_counts.is_empty() {
        let mut counts: Vec<_> = r.rejection_counts.iter().collect();
        counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut t = Table::new(&["REJECTED FOR", "NODES"]);
        for (why, n) in counts {
            t.row(vec![why.clone(), n.to_string()]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;
    use fog_proto::v1::{Attempt, PlacementCandidate, RejectedNode, TaskOutput};

    fn spec_of(args: &[&str]) -> TaskSpec {
        let cli = Cli::try_parse_from(["fogctl", "tasks", "submit"].iter().chain(args)).unwrap();
        let Command::Tasks(TasksCommand::Submit(s)) = cli.command else { panic!() };
        build_spec(&s.spec)
    }

    #[test]
    fn spec_from_flags() {
        let s = spec_of(&[
            "--name",
            "job",
            "--hash-rounds",
            "500",
            "--cpu-millis",
            "250",
            "--memory-mb",
            "64",
            "--tier",
            "silver",
            "--privacy",
            "secret",
            "--strategy",
            "proximity",
            "--origin-region",
            "eu-west",
            "--origin-lat",
            "53.3",
            "--origin-lon",
            "-6.2",
            "--require-label",
            "gpu=yes",
            "--timeout-ms",
            "9000",
            "--replicas",
            "2",
        ]);
        assert_eq!(s.workload, Some(Workload::Builtin(BuiltinTask { kind: Some(Kind::HashRounds(500)) })));
        assert_eq!(s.resources, Some(Resources { cpu_millis: 250, memory_mb: 64, ..Default::default() }));
        assert_eq!(s.sla_tier, SlaTier::Silver as i32);
        assert_eq!(s.privacy_level, PrivacyLevel::Secret as i32);
        assert_eq!(s.strategy, RoutingStrategy::Proximity as i32);
        let origin = s.origin.unwrap();
        assert!(origin.has_coordinates && origin.region == "eu-west" && origin.longitude == -6.2);
        assert_eq!(s.required_labels, vec![Label { key: "gpu".into(), value: "yes".into() }]);
        assert_eq!((s.timeout_ms, s.replicas, s.max_retries), (9000, 2, None));
    }

    #[test]
    fn spec_files_use_the_flags_names_in_yaml_or_json() {
        let yaml = "name: job\nhash_rounds: 500\ncpu_millis: 250\ntier: silver\nstrategy: privacy-aware\n\
                    required_labels: {gpu: 'yes'}\nreplicas: 2\n";
        let s = build_spec(&serde_yaml_ng::from_str(yaml).unwrap());
        assert_eq!(s.workload, Some(Workload::Builtin(BuiltinTask { kind: Some(Kind::HashRounds(500)) })));
        assert_eq!((s.name.as_str(), s.sla_tier, s.replicas), ("job", SlaTier::Silver as i32, 2));
        assert_eq!(s.strategy, RoutingStrategy::PrivacyAware as i32);
        assert_eq!(s.required_labels, vec![Label { key: "gpu".into(), value: "yes".into() }]);
        let json = r#"{"exec": "/bin/echo", "args": ["hi"], "env": {"A": "b"}}"#;
        let Some(Workload::Exec(e)) = build_spec(&serde_yaml_ng::from_str(json).unwrap()).workload else { panic!() };
        assert_eq!((e.args, e.env.get("A").map(String::as_str)), (vec!["hi".to_string()], Some("b")));
        // A misspelt key or value is named, not ignored.
        let typo = serde_yaml_ng::from_str::<TaskSpecArgs>("ech0: hi").unwrap_err().to_string();
        assert!(typo.contains("ech0"), "{typo}");
        let bad = serde_yaml_ng::from_str::<TaskSpecArgs>("echo: hi\ntier: diamond").unwrap_err().to_string();
        assert!(bad.contains("diamond"), "{bad}");
    }

    #[test]
    fn unset_flags_leave_defaults_to_the_coordinator() {
        let s = spec_of(&["--exec", "/bin/echo", "--arg", "hi"]);
        assert_eq!(s.sla_tier, 0);
        assert_eq!(s.strategy, 0);
        assert!(s.origin.is_none());
        assert_eq!(s.max_retries, None);
        let Some(Workload::Exec(e)) = s.workload else { panic!() };
        assert_eq!((e.command.as_str(), e.args.as_slice()), ("/bin/echo", &["hi".to_string()][..]));
        assert_eq!(spec_of(&["--echo", "x", "--retries", "0"]).max_retries, Some(0));
    }

    #[test]
    fn request_ids_per_copy() {
        assert_eq!(request_id_for(Some("r"), 0, 1), "r");
        assert_eq!(request_id_for(Some("r"), 2, 3), "r-2");
        assert_eq!(request_id_for(None, 2, 3), "");
    }

    #[test]
    fn terminal_states() {
        assert!(is_terminal(TaskState::Succeeded as i32));
        assert!(is_terminal(TaskState::Cancelled as i32));
        assert!(!is_terminal(TaskState::Running as i32));
        assert!(!is_terminal(99));
    }

    #[test]
    fn result_and_watch_lines() {
        let task = Task {
            id: "t1".into(),
            state: TaskState::Succeeded as i32,
            accepted_attempt: 2,
            attempts: vec![
                Attempt { attempt: 1, node_id: "a".into(), ..Default::default() },
                Attempt { attempt: 2, node_id: "b".into(), ..Default::default() },
            ],
            output: Some(TaskOutput { stdout: b"hello".to_vec(), ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(render_result(&task), "t1 succeeded on b\nhello\n");
        let line = watch_line(&WatchTasksResponse { task: Some(task), sequence: 12, lagged: false });
        assert_eq!(line, "    12  t1  succeeded  b");
    }

    #[test]
    fn explain_lists_candidates_and_rejections() {
        let r = ExplainPlacementResponse {
            strategy: RoutingStrategy::LeastLoaded as i32,
            chosen_node_id: "n2".into(),
            candidates: vec![PlacementCandidate { node_id: "n2".into(), score: 0.9, reason: "headroom 90%".into() }],
            rejected: vec![RejectedNode {
                node_id: "n1".into(),
                reasons: vec!["cpu: needs 2000m, free 500m".into(), "offline".into()],
            }],
            nodes_considered: 2,
            nodes_fitting: 1,
            rejection_counts: [("cpu".to_string(), 1u64), ("offline".to_string(), 1u64)].into(),
        };
        let text = render_explain(&r);
        assert!(text.contains("chosen node: n2"), "{text}");
        assert!(text.contains("n2         0.900  headroom 90%"), "{text}");
        assert!(text.contains("n1        cpu: needs 2000m, free 500m; offline"), "{text}");
        assert!(text.contains("cpu           1"), "{text}");
    }
}
