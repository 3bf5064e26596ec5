//! The command line: every command, flag and value fogctl accepts, and how flag
//! values map to the proto enums. Parsing only; nothing here talks to anyone.

use clap::{Args, Parser, Subcommand, ValueEnum};
use fog_proto::v1::{NodeStatus, NodeType, PrivacyLevel, RoutingStrategy, SlaTier, TaskState, TopologyDetail};

/// The coordinator's dev-mode address.
pub const DEFAULT_COORDINATOR: &str = "http://127.0.0.1:7443";

const EXIT_CODES: &str = "\
Exit codes:
  0  success (for `tasks submit --wait`: every task succeeded)
  1  any other error; `tasks submit --wait`: a task failed or was cancelled
  2  usage error (bad flags or values)
  3  cannot reach the coordinator (connection refused, unavailable)
  4  not found (no such node or task)
  5  invalid argument (the coordinator's field violations are printed)
  6  not signed in or not allowed (run `fogctl login`, or pass --token)";

/// fogctl — operate a Fogplane fleet: nodes, tasks, topology.
#[derive(Debug, Parser)]
#[command(name = "fogctl", version, after_long_help = EXIT_CODES)]
#[command(long_about = "fogctl — operate a Fogplane fleet: inspect nodes, submit and follow \
tasks, explain placements, watch the topology, and run simulated nodes.")]
pub struct Cli {
    /// Coordinator URL [default: the context's, else http://127.0.0.1:7443].
    #[arg(long, global = true, env = "FOG_COORDINATOR")]
    pub coordinator: Option<String>,
    /// Named context to use (coordinator, CA, token) instead of the current one; see `fogctl config`.
    #[arg(long, global = true, env = "FOGCTL_CONTEXT")]
    pub context: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// CA certificate (PEM) to verify an https:// coordinator with — the coordinator writes it to
    /// `<data-dir>/ca.pem`.
    #[arg(long, global = true, env = "FOG_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Bearer token (an API token, or an access token); default: the one saved by `fogctl login`
    /// for this coordinator.
    #[arg(long, global = true, env = "FOG_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// W3C trace context to send with every call (`00-<trace id>-<span id>-<flags>`), so the
    /// coordinator's spans join the caller's trace; CI systems and otel-cli set TRACEPARENT.
    #[arg(long, global = true, env = "TRACEPARENT")]
    pub traceparent: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How replies are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// JSON (one document, or one per line for streams), proto field names.
    Json,
    /// YAML (one document; streams: a `---` document per event), proto field names.
    Yaml,
}

/// The nouns.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The coordinator's version, uptime and component health.
    Status,
    /// Inspect fog nodes.
    #[command(subcommand)]
    Nodes(NodesCommand),
    /// Submit, follow, cancel and explain tasks.
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// The fleet's shape: aggregates, regions, nodes; live with --watch.
    Topology(TopologyArgs),
    /// Run simulated nodes against the coordinator until Ctrl-C.
    Sim(SimArgs),
    /// Join tokens for new nodes (admin).
    #[command(subcommand, name = "join-token", alias = "tokens")]
    Tokens(TokensCommand),
    /// Sign in; the tokens are saved for this coordinator in the user's config directory.
    Login(LoginArgs),
    /// Sign out: end the saved session and forget its tokens.
    Logout,
    /// Who the coordinator thinks you are.
    Whoami,
    /// Users who sign in (admin).
    #[command(subcommand)]
    Users(UsersCommand),
    /// API tokens for automation (admin).
    #[command(subcommand)]
    Token(ApiTokenCommand),
    /// Named contexts (coordinator, CA, token), like kubectl's: `set-context`, `use-context`, …
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script, e.g. `fogctl completion bash > /etc/bash_completion.d/fogctl`.
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `fogctl config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Create or update a context from --coordinator, --ca-file and --token (given as flags or env).
    SetContext {
        /// Context name.
        name: String,
    },
    /// Make a context the current one.
    UseContext {
        /// Context name.
        name: String,
    },
    /// List contexts (`*` marks the current one).
    GetContexts,
    /// Print the current context's name.
    CurrentContext,
    /// Delete a context.
    DeleteContext {
        /// Context name.
        name: String,
    },
}

/// `fogctl login`
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Username.
    #[arg(long, short = 'u')]
    pub username: String,
    /// Read the password from standard input (first line) instead of FOG_PASSWORD.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `fogctl users …`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; the password is read from standard input (first line).
    Create {
        /// Username.
        username: String,
        /// Role.
        #[arg(long, value_enum, default_value_t = RoleArg::Viewer)]
        role: RoleArg,
    },
    /// List users.
    List,
    /// Delete a user and end their sessions.
    Delete {
        /// Username.
        username: String,
    },
}

/// `fogctl token …`
#[derive(Debug, Subcommand)]
pub enum ApiTokenCommand {
    /// Create an API token; prints the secret (shown once).
    Create {
        /// What it is for.
        #[arg(long)]
        name: String,
        /// Role.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Lifetime (e.g. 30d, 12h); default 90 days.
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<std::time::Duration>,
    },
    /// List API tokens.
    List,
    /// Revoke an API token.
    Revoke {
        /// Token id.
        id: String,
    },
    /// Start signing access tokens with a new key; tokens signed with the old one stay valid
    /// until they expire.
    RotateSigningKey,
}

/// A role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Read and watch.
    Viewer,
    /// Tasks, cordon, drain.
    Operator,
    /// Everything.
    Admin,
}

impl RoleArg {
    /// The proto value.
    pub fn to_pb(self) -> fog_proto::v1::Role {
        match self {
            RoleArg::Viewer => fog_proto::v1::Role::Viewer,
            RoleArg::Operator => fog_proto::v1::Role::Operator,
            RoleArg::Admin => fog_proto::v1::Role::Admin,
        }
    }
}

/// `fogctl tokens …`
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a single-use join token; prints the token (shown once).
    Create(TokensCreateArgs),
}

/// `fogctl tokens create`
#[derive(Debug, clap::Args)]
pub struct TokensCreateArgs {
    /// Only a node with this name may join with the token.
    #[arg(long)]
    pub name: Option<String>,
    /// Label the joining node receives (repeatable; `fog.io/` labels allowed).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Lifetime (e.g. 30m, 2h); default: the coordinator's (1h).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub ttl: Option<std::time::Duration>,
}

/// `fogctl nodes …`
#[derive(Debug, Subcommand)]
pub enum NodesCommand {
    /// List nodes (follows pages).
    List(NodesListArgs),
    /// Show one node.
    Get {
        /// Node id.
        id: String,
    },
    /// Stop placing new tasks on a node; what runs there keeps running (operator).
    Cordon {
        /// Node id.
        id: String,
    },
    /// Place tasks on a cordoned or drained node again (operator).
    Uncordon {
        /// Node id.
        id: String,
    },
    /// Cordon a node and move its tasks elsewhere (operator).
    Drain {
        /// Node id.
        id: String,
    },
    /// Put a node in maintenance (no new work, shown as maintenance) or take it out (operator).
    Maintenance {
        /// Node id.
        id: String,
        /// `on` or `off`.
        #[arg(value_enum)]
        state: OnOff,
    },
    /// Forget a node: its tasks are re-queued and its certificates revoked; it must join again (admin).
    Remove {
        /// Node id.
        id: String,
    },
    /// Set labels (`key=value`) and remove them (`key-`), like `kubectl label` (admin for `fog.io/` keys).
    Label {
        /// Node id.
        id: String,
        /// `key=value` to set, `key-` to remove.
        #[arg(required = true, value_name = "KEY=VALUE|KEY-")]
        changes: Vec<String>,
    },
}

/// A switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// Turn it on.
    On,
    /// Turn it off.
    Off,
}

/// Filters of `nodes list`.
#[derive(Debug, Args)]
pub struct NodesListArgs {
    /// Only nodes with this status.
    #[arg(long, value_enum)]
    pub status: Option<NodeStatusArg>,
    /// Only nodes of this type.
    #[arg(long = "type", value_enum)]
    pub node_type: Option<NodeTypeArg>,
    /// Only nodes in this region.
    #[arg(long)]
    pub region: Option<String>,
    /// Only nodes with this label (repeatable; all must match).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// At most this many nodes in total.
    #[arg(long)]
    pub limit: Option<u32>,
}

/// `fogctl tasks …`
#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Submit a task (or --count copies).
    Submit(Box<SubmitArgs>),
    /// Show one task with its attempts.
    Get {
        /// Task id.
        id: String,
    },
    /// List tasks, newest first (follows pages).
    List(TasksListArgs),
    /// Cancel a task.
    Cancel {
        /// Task id.
        id: String,
        /// Why (recorded on the task).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Stream task events, one line each: every task until Ctrl-C, or the ones given with a
    /// progress line until all have ended (exit 1 if any did not succeed).
    Watch {
        /// Task ids; none means every task.
        ids: Vec<String>,
    },
    /// Dry-run placement: chosen node, scored candidates, rejected nodes and why.
    Explain(Box<ExplainArgs>),
}

/// `tasks submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The task.
    #[command(flatten)]
    pub spec: TaskSpecArgs,
    /// Read the task from a YAML or JSON file (`-` for standard input), with the flags' names
    /// as keys (e.g. `echo: hi`, `tier: gold`, `env: {K: V}`), instead of the flags.
    #[arg(long, short = 'f', value_name = "PATH", conflicts_with = "TaskSpecArgs")]
    pub file: Option<std::path::PathBuf>,
    /// Idempotency key (with --count N, `-<i>` is appended for each copy).
    #[arg(long)]
    pub request_id: Option<String>,
    /// Follow the task(s) until they end and print the result; exit 1 if any failed.
    #[arg(long)]
    pub wait: bool,
    /// Submit this many copies and print their ids.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,
}

/// `tasks explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Explain an existing task instead of a spec given by flags.
    #[arg(long, conflicts_with_all = ["name", "sleep_ms", "echo", "hash_rounds", "fail", "exec", "cpu_millis", "memory_mb", "tier", "privacy", "strategy", "affinity_key", "origin_region"])]
    pub task: Option<String>,
    /// The spec to dry-run (workload flags are optional here: placement ignores the workload).
    #[command(flatten)]
    pub spec: TaskSpecArgs,
    /// How many candidates and rejected nodes to list.
    #[arg(long)]
    pub limit: Option<u32>,
}

/// Flags describing a task spec (shared by `submit` and `explain`). A spec
/// file (`tasks submit --file`) has the same keys, snake_case, with maps for
/// `env`, `preferred_labels` and `required_labels`.
#[derive(Debug, Args, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskSpecArgs {
    /// A name for people.
    #[arg(long)]
    pub name: Option<String>,
    /// Workload: sleep this many milliseconds.
    #[arg(long, group = "workload")]
    pub sleep_ms: Option<u64>,
    /// Workload: echo this text.
    #[arg(long, group = "workload")]
    pub echo: Option<String>,
    /// Workload: SHA-256 chain of this many rounds.
    #[arg(long, group = "workload")]
    pub hash_rounds: Option<u32>,
    /// Workload: fail with this message.
    #[arg(long, group = "workload", value_name = "MSG")]
    pub fail: Option<String>,
    /// Workload: run this program (if the agent's policy allows it).
    #[arg(long, group = "workload", value_name = "CMD")]
    pub exec: Option<String>,
    /// Argument of --exec (repeatable).
    #[arg(long = "arg", value_name = "A", requires = "exec", allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Environment variable of --exec (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", requires = "exec", value_parser = parse_label)]
    #[serde(deserialize_with = "pairs")]
    pub env: Vec<(String, String)>,
    /// CPU to reserve, in thousandths of a core.
    #[arg(long)]
    pub cpu_millis: Option<u32>,
    /// Memory to reserve, MiB.
    #[arg(long)]
    pub memory_mb: Option<u64>,
    /// Storage to reserve, MiB.
    #[arg(long)]
    pub storage_mb: Option<u64>,
    /// GPUs to reserve.
    #[arg(long)]
    pub gpus: Option<u32>,
    /// SLA tier.
    #[arg(long, value_enum)]
    pub tier: Option<TierArg>,
    /// Privacy level.
    #[arg(long, value_enum)]
    pub privacy: Option<PrivacyArg>,
    /// Routing strategy.
    #[arg(long, value_enum)]
    pub strategy: Option<StrategyArg>,
    /// Affinity key (affinity strategy).
    #[arg(long)]
    pub affinity_key: Option<String>,
    /// Preferred node label (repeatable; soft).
    #[arg(long = "prefer-label", value_name = "KEY=VALUE", value_parser = parse_label)]
    #[serde(deserialize_with = "pairs")]
    pub preferred_labels: Vec<(String, String)>,
    /// Required node label (repeatable; hard).
    #[arg(long = "require-label", value_name = "KEY=VALUE", value_parser = parse_label)]
    #[serde(deserialize_with = "pairs")]
    pub required_labels: Vec<(String, String)>,
    /// Origin region of the task's data or user (proximity).
    #[arg(long)]
    pub origin_region: Option<String>,
    /// Origin latitude in degrees.
    #[arg(long, requires = "origin_lon", allow_hyphen_values = true)]
    pub origin_lat: Option<f64>,
    /// Origin longitude in degrees.
    #[arg(long, requires = "origin_lat", allow_hyphen_values = true)]
    pub origin_lon: Option<f64>,
    /// Region the task may run in (repeatable; CONFIDENTIAL and SECRET).
    #[arg(long = "allowed-region", value_name = "REGION")]
    pub allowed_regions: Vec<String>,
    /// Time limit of one attempt, ms.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Retries after a failed attempt (default: the tier's).
    #[arg(long)]
    pub retries: Option<u32>,
    /// Replicas on distinct nodes (default: the tier's).
    #[arg(long)]
    pub replicas: Option<u32>,
}

impl TaskSpecArgs {
    /// Checks what clap cannot express: exec-only flags need `--exec`.
    pub fn validate(&self) -> Result<(), String> {
        if self.exec.is_none() && (!self.args.is_empty() || !self.env.is_empty()) {
            return Err("--arg and --env need --exec".into());
        }
        Ok(())
    }

    /// Whether a workload flag was given.
    pub fn has_workload(&self) -> bool {
        self.sleep_ms.is_some()
            || self.echo.is_some()
            || self.hash_rounds.is_some()
            || self.fail.is_some()
            || self.exec.is_some()
    }
}

/// Filters of `tasks list`.
#[derive(Debug, Args)]
pub struct TasksListArgs {
    /// Only tasks in this state (repeatable).
    #[arg(long = "state", value_enum)]
    pub states: Vec<TaskStateArg>,
    /// Only tasks of this tier.
    #[arg(long, value_enum)]
    pub tier: Option<TierArg>,
    /// Only tasks with an attempt on this node.
    #[arg(long = "node", value_name = "ID")]
    pub node_id: Option<String>,
    /// At most this many tasks in total.
    #[arg(long)]
    pub limit: Option<u32>,
}

/// `fogctl topology [--nodes] [--watch [--detail D]]` or `fogctl topology history`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TopologyArgs {
    /// Include the per-node list.
    #[arg(long)]
    pub nodes: bool,
    /// Stream changes instead of printing once.
    #[arg(long)]
    pub watch: bool,
    /// What a watch shows.
    #[arg(long, value_enum, default_value_t = DetailArg::Status, requires = "watch")]
    pub detail: DetailArg,
    /// `history`: the last aggregate snapshots.
    #[command(subcommand)]
    pub command: Option<TopologyCommand>,
}

/// Subcommands of `topology`.
#[derive(Debug, Subcommand)]
pub enum TopologyCommand {
    /// The last aggregate snapshots (at most 100), oldest first.
    History {
        /// At most this many snapshots.
        #[arg(long)]
        limit: Option<u32>,
    },
}

/// `fogctl sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// How many nodes.
    #[arg(long, default_value_t = 10)]
    pub nodes: usize,
    /// Node ids are `<prefix>-<index, 5 digits>`.
    #[arg(long, default_value = "sim")]
    pub id_prefix: String,
    /// Index of the first node.
    #[arg(long, default_value_t = 0)]
    pub start_index: usize,
    /// HTTP/2 connections to share among the nodes (default: one per 1000 nodes).
    #[arg(long)]
    pub connections: Option<usize>,
    /// Share of built-ins that fail on purpose (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Speed factor for sleep tasks (2 = twice as fast).
    #[arg(long, default_value_t = 1.0)]
    pub task_speed: f64,
    /// Nodes started per second (spreads the connection burst of large fleets).
    #[arg(long, default_value_t = 2000)]
    pub spawn_rate: u32,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

/// A `{key: value}` map of a spec file as the flags' `(key, value)` pairs.
fn pairs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    let map: std::collections::BTreeMap<String, String> = serde::Deserialize::deserialize(d)?;
    Ok(map.into_iter().collect())
}

/// Maps a clap value enum onto its proto enum.
macro_rules! proto_enum_arg {
    ($(#[$doc:meta])* $name:ident => $proto:ident { $($variant:ident => $pv:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum $name { $(#[allow(missing_docs)] $variant),+ }
        impl $name {
            /// The proto enum value.
            pub fn to_proto(self) -> $proto {
                match self { $($name::$variant => $proto::$pv),+ }
            }
        }
    };
}

proto_enum_arg!(
    /// `--tier`
    TierArg => SlaTier { Bronze => Bronze, Silver => Silver, Gold => Gold, Platinum => Platinum }
);
proto_enum_arg!(
    /// `--privacy`
    PrivacyArg => PrivacyLevel { Public => Public, Private => Private, Confidential => Confidential, Secret => Secret }
);
proto_enum_arg!(
    /// `--strategy`
    StrategyArg => RoutingStrategy {
        RoundRobin => RoundRobin, LeastLoaded => LeastLoaded, Affinity => Affinity,
        Proximity => Proximity, PrivacyAware => PrivacyAware,
    }
);
proto_enum_arg!(
    /// `--state`
    TaskStateArg => TaskState {
        Queued => Queued, Assigned => Assigned, Running => Running,
        Succeeded => Succeeded, Failed => Failed, Cancelled => Cancelled,
    }
);
proto_enum_arg!(
    /// `nodes list --status`
    NodeStatusArg => NodeStatus {
        Active => Active, Idle => Idle, Busy => Busy, Suspect => Suspect,
        Offline => Offline, Maintenance => Maintenance,
    }
);
proto_enum_arg!(
    /// `nodes list --type`
    NodeTypeArg => NodeType {
        EdgeDevice => EdgeDevice, RelayNode => RelayNode, Mixnode => Mixnode,
        ComputeNode => ComputeNode, Gateway => Gateway,
    }
);
proto_enum_arg!(
    /// `topology --watch --detail`
    DetailArg => TopologyDetail { Aggregates => Aggregates, Status => NodeStatus, Metrics => NodeMetrics }
);

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("fogctl").chain(args.iter().copied()))
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_and_globals() {
        let cli = parse(&["status"]).unwrap();
        assert_eq!(cli.output, OutputFormat::Table);
        let cli = parse(&["nodes", "list", "-o", "json", "--coordinator", "http://x:1"]).unwrap();
        assert_eq!(cli.output, OutputFormat::Json);
        assert_eq!(cli.coordinator.as_deref(), Some("http://x:1"));
    }

    #[test]
    fn submit_flags_parse() {
        let cli = parse(&[
            "tasks",
            "submit",
            "--name",
            "n",
            "--echo",
            "hi",
            "--tier",
            "gold",
            "--privacy",
            "confidential",
            "--strategy",
            "privacy-aware",
            "--allowed-region",
            "eu-west",
            "--allowed-region",
            "eu-central",
            "--origin-lat",
            "-33.9",
            "--origin-lon",
            "18.4",
            "--retries",
            "0",
            "--count",
            "3",
            "--wait",
        ])
        .unwrap();
        let Command::Tasks(TasksCommand::Submit(s)) = cli.command else { panic!() };
        assert_eq!(s.spec.echo.as_deref(), Some("hi"));
        assert_eq!(s.spec.tier, Some(TierArg::Gold));
        assert_eq!(s.spec.strategy.unwrap().to_proto(), RoutingStrategy::PrivacyAware);
        assert_eq!(s.spec.allowed_regions, ["eu-west", "eu-central"]);
        assert_eq!(s.spec.origin_lat, Some(-33.9));
        assert_eq!(s.spec.retries, Some(0));
        assert_eq!((s.count, s.wait), (3, true));
    }

    #[test]
    fn usage_errors_are_rejected() {
        // Two workloads.
        assert!(parse(&["tasks", "submit", "--echo", "a", "--sleep-ms", "5"]).is_err());
        // --arg without --exec.
        let cli = parse(&["tasks", "submit", "--echo", "a", "--arg", "x"]);
        let Ok(Cli { command: Command::Tasks(TasksCommand::Submit(s)), .. }) = cli else { panic!() };
        assert!(s.spec.validate().is_err());
        // Bad enum value, bad label, zero count, lat without lon.
        assert!(parse(&["tasks", "submit", "--echo", "a", "--tier", "iron"]).is_err());
        assert!(parse(&["nodes", "list", "--label", "novalue"]).is_err());
        assert!(parse(&["tasks", "submit", "--echo", "a", "--count", "0"]).is_err());
        assert!(parse(&["tasks", "submit", "--echo", "a", "--origin-lat", "1"]).is_err());
        // --detail only with --watch; explain --task excludes spec flags.
        assert!(parse(&["topology", "--detail", "metrics"]).is_err());
        assert!(parse(&["tasks", "explain", "--task", "t1", "--tier", "gold"]).is_err());
    }

    #[test]
    fn exec_with_args_and_labels() {
        let cli =
            parse(&["tasks", "submit", "--exec", "/bin/echo", "--arg", "-n", "--arg", "x", "--env", "A=b=c"]).unwrap();
        let Command::Tasks(TasksCommand::Submit(s)) = cli.command else { panic!() };
        assert_eq!(s.spec.args, ["-n", "x"]);
        assert_eq!(s.spec.env, [("A".to_string(), "b=c".to_string())]);
        let cli = parse(&["nodes", "list", "--label", "a=1", "--label", "b=", "--type", "edge-device"]).unwrap();
        let Command::Nodes(NodesCommand::List(l)) = cli.command else { panic!() };
        assert_eq!(l.labels.len(), 2);
        assert_eq!(l.node_type.unwrap().to_proto(), NodeType::EdgeDevice);
    }

    #[test]
    fn topology_forms() {
        let cli = parse(&["topology", "--watch", "--detail", "metrics"]).unwrap();
        let Command::Topology(t) = cli.command else { panic!() };
        assert!(t.watch && t.command.is_none());
        assert_eq!(t.detail.to_proto(), TopologyDetail::NodeMetrics);
        let cli = parse(&["topology", "history", "--limit", "5"]).unwrap();
        let Command::Topology(t) = cli.command else { panic!() };
        assert!(matches!(t.command, Some(TopologyCommand::History { limit: Some(5) })));
    }

    #[test]
    fn help_documents_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("3  cannot reach the coordinator"), "{help}");
    }
}
