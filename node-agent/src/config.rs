//! The agent's configuration: a TOML file (`--config`), `FOG_AGENT_*`
//! environment variables and flags, merged field by field with
//! flags > environment > file > defaults, then validated whole before the
//! agent does anything (bad config exits with code 64).
//!
//! Each source is read into a [`Layer`] (every field optional); the environment
//! is read through a lookup function so tests need not mutate the process
//! environment.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use fog_core::domain::{NodeType, is_reserved_label, validate_id, validate_label_key, validate_label_value};
use fog_proto::v1 as pb;
use serde::Deserialize;

use crate::exec::ExecPolicy;
use crate::identity::Credentials;
use crate::transport::Transport;

/// Exit code for bad configuration (EX_USAGE).
pub const EXIT_CONFIG: i32 = 64;

/// A configuration error, for people.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// One source of settings; `None` means "not set here".
#[derive(Args, Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Layer {
    /// Coordinator address(es), host:port or https://host:port (http:// with
    /// --insecure); repeat or comma-separate. Tried in turn on reconnect.
    /// Default with mTLS: the one joined. [env: FOG_AGENT_COORDINATORS]
    #[arg(long = "coordinator", value_delimiter = ',')]
    pub coordinators: Option<Vec<String>>,
    /// This node's id (a-z 0-9 -, at most 63); with mTLS it comes from the
    /// certificate (if set, it must match). [env: FOG_AGENT_NODE_ID]
    #[arg(long)]
    pub node_id: Option<String>,
    /// Human-friendly name (default: the node id). [env: FOG_AGENT_NAME]
    #[arg(long)]
    pub name: Option<String>,
    /// edge_device, relay_node, mixnode, compute_node (default) or gateway. [env: FOG_AGENT_NODE_TYPE]
    #[arg(long)]
    pub node_type: Option<String>,
    /// Region, e.g. eu-west. [env: FOG_AGENT_REGION]
    #[arg(long)]
    pub region: Option<String>,
    /// Zone. [env: FOG_AGENT_ZONE]
    #[arg(long)]
    pub zone: Option<String>,
    /// Latitude in degrees (with --longitude). [env: FOG_AGENT_LATITUDE]
    #[arg(long, allow_negative_numbers = true)]
    pub latitude: Option<f64>,
    /// Longitude in degrees (with --latitude). [env: FOG_AGENT_LONGITUDE]
    #[arg(long, allow_negative_numbers = true)]
    pub longitude: Option<f64>,
    /// Label key=value; repeat or comma-separate. `fog.io/` keys are refused
    /// (only admins set them). [env: FOG_AGENT_LABELS]
    #[arg(long = "label", value_delimiter = ',', value_parser = parse_label)]
    #[serde(default, deserialize_with = "labels_from_table")]
    pub labels: Option<Vec<(String, String)>>,
    /// CPU offered, in millicores (default: all detected cores). [env: FOG_AGENT_CPU_MILLIS]
    #[arg(long)]
    pub cpu_millis: Option<u32>,
    /// Memory offered, MiB (default: detected total). [env: FOG_AGENT_MEMORY_MB]
    #[arg(long)]
    pub memory_mb: Option<u64>,
    /// Storage offered, MiB (default: space available on the state dir). [env: FOG_AGENT_STORAGE_MB]
    #[arg(long)]
    pub storage_mb: Option<u64>,
    /// GPUs offered (default 0). [env: FOG_AGENT_GPUS]
    #[arg(long)]
    pub gpus: Option<u32>,
    /// Whether the node can route onion traffic. [env: FOG_AGENT_SUPPORTS_ONION_ROUTING]
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub supports_onion_routing: Option<bool>,
    /// State directory (created 0700). [env: FOG_AGENT_STATE_DIR]
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Commands exec tasks may run, matched literally; repeat or comma-separate.
    /// Default: none. [env: FOG_AGENT_ALLOW_COMMANDS]
    #[arg(long = "allow-command", value_delimiter = ',')]
    pub allow_commands: Option<Vec<String>>,
    /// Dev mode: exec tasks may run any command (logged as a warning). [env: FOG_AGENT_DEV]
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub dev: Option<bool>,
    /// Plaintext to the coordinator, identity from the hello (the coordinator
    /// must run with --insecure-dev). Default: mTLS with the certificate from
    /// `fog-agent join` in the state dir. [env: FOG_AGENT_INSECURE]
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub insecure: Option<bool>,
    /// Root of sysfs, for battery and temperature (default /sys). [env: FOG_AGENT_SYSFS_ROOT]
    #[arg(long)]
    pub sysfs_root: Option<PathBuf>,
    /// Root of procfs (default /proc). [env: FOG_AGENT_PROCFS_ROOT]
    #[arg(long)]
    pub procfs_root: Option<PathBuf>,
    /// First reconnect backoff ceiling (default 500ms). [env: FOG_AGENT_RECONNECT_MIN]
    #[arg(long)]
    pub reconnect_min: Option<String>,
    /// Reconnect backoff cap (default 30s). [env: FOG_AGENT_RECONNECT_MAX]
    #[arg(long)]
    pub reconnect_max: Option<String>,
    /// Grace between SIGTERM and SIGKILL when a process is stopped (default 5s). [env: FOG_AGENT_KILL_GRACE]
    #[arg(long)]
    pub kill_grace: Option<String>,
    /// Log filter, e.g. info or fog_agent=debug (default info). [env: FOG_AGENT_LOG]
    #[arg(long)]
    pub log: Option<String>,
    /// Log format: human (default) or json (one object per line). [env: FOG_AGENT_LOG_FORMAT]
    #[arg(long)]
    pub log_format: Option<String>,
    /// Export OpenTelemetry traces (one `run` span per attempt) to this OTLP/gRPC collector, e.g. http://127.0.0.1:4317 (default: off). [env: FOG_AGENT_OTLP_ENDPOINT]
    #[arg(long)]
    pub otlp_endpoint: Option<String>,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("label {s:?} is not key=value"))?;
    Ok((k.to_string(), v.to_string()))
}

fn labels_from_table<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<(String, String)>>, D::Error> {
    let table: Option<BTreeMap<String, String>> = Option::deserialize(d)?;
    Ok(table.map(|t| t.into_iter().collect()))
}

macro_rules! merge {
    ($hi:expr, $lo:expr, $($f:ident),*) => {
        Layer { $($f: $hi.$f.or($lo.$f)),* }
    };
}

impl Layer {
    /// This layer over `lower`: each field from `self` if set, else from `lower`.
    pub fn over(self, lower: Layer) -> Layer {
        merge!(
            self,
            lower,
            coordinators,
            node_id,
            name,
            node_type,
            region,
            zone,
            latitude,
            longitude,
            labels,
            cpu_millis,
            memory_mb,
            storage_mb,
            gpus,
            supports_onion_routing,
            state_dir,
            allow_commands,
            dev,
            insecure,
            sysfs_root,
            procfs_root,
            reconnect_min,
            reconnect_max,
            kill_grace,
            log,
            log_format,
            otlp_endpoint
        )
    }

    /// Parses a TOML config file's text.
    pub fn from_toml(text: &str) -> Result<Layer, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError(format!("config file: {e}")))
    }

    /// Reads `FOG_AGENT_*` variables through `get`.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Layer, ConfigError> {
        let var = |name: &str| get(&format!("FOG_AGENT_{name}")).filter(|v| !v.is_empty());
        fn parsed<T: std::str::FromStr>(name: &str, v: Option<String>) -> Result<Option<T>, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            v.map(|v| v.parse::<T>().map_err(|e| ConfigError(format!("FOG_AGENT_{name}={v:?}: {e}")))).transpose()
        }
        let list = |name: &str| var(name).map(|v| v.split(',').map(|s| s.trim().to_string()).collect::<Vec<_>>());
        let labels = match list("LABELS") {
            None => None,
            Some(items) => Some(
                items
                    .iter()
                    .map(|s| parse_label(s).map_err(|e| ConfigError(format!("FOG_AGENT_LABELS: {e}"))))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        Ok(Layer {
            coordinators: list("COORDINATORS"),
            node_id: var("NODE_ID"),
            name: var("NAME"),
            node_type: var("NODE_TYPE"),
            region: var("REGION"),
            zone: var("ZONE"),
            latitude: parsed("LATITUDE", var("LATITUDE"))?,
            longitude: parsed("LONGITUDE", var("LONGITUDE"))?,
            labels,
            cpu_millis: parsed("CPU_MILLIS", var("CPU_MILLIS"))?,
            memory_mb: parsed("MEMORY_MB", var("MEMORY_MB"))?,
            storage_mb: parsed("STORAGE_MB", var("STORAGE_MB"))?,
            gpus: parsed("GPUS", var("GPUS"))?,
            supports_onion_routing: parsed("SUPPORTS_ONION_ROUTING", var("SUPPORTS_ONION_ROUTING"))?,
            state_dir: var("STATE_DIR").map(PathBuf::from),
            allow_commands: list("ALLOW_COMMANDS"),
            dev: parsed("DEV", var("DEV"))?,
            insecure: parsed("INSECURE", var("INSECURE"))?,
            sysfs_root: var("SYSFS_ROOT").map(PathBuf::from),
            procfs_root: var("PROCFS_ROOT").map(PathBuf::from),
            reconnect_min: var("RECONNECT_MIN"),
            reconnect_max: var("RECONNECT_MAX"),
            kill_grace: var("KILL_GRACE"),
            log: var("LOG"),
            log_format: var("LOG_FORMAT"),
            otlp_endpoint: var("OTLP_ENDPOINT"),
        })
    }
}

/// Capacity the operator set; unset parts are detected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapacityOverride {
    /// Millicores.
    pub cpu_millis: Option<u32>,
    /// MiB.
    pub memory_mb: Option<u64>,
    /// MiB.
    pub storage_mb: Option<u64>,
    /// GPUs.
    pub gpus: Option<u32>,
}

impl CapacityOverride {
    /// `detected` with the overrides applied.
    pub fn apply(&self, detected: pb::Resources) -> pb::Resources {
        pb::Resources {
            cpu_millis: self.cpu_millis.unwrap_or(detected.cpu_millis),
            memory_mb: self.memory_mb.unwrap_or(detected.memory_mb),
            storage_mb: self.storage_mb.unwrap_or(detected.storage_mb),
            gpus: self.gpus.unwrap_or(detected.gpus),
        }
    }
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Coordinator addresses, in the order they are tried.
    pub coordinators: Vec<String>,
    /// How to reach them.
    pub transport: Transport,
    /// Node id (insecure mode: sent in the hello).
    pub node_id: String,
    /// Name.
    pub name: String,
    /// Kind of device.
    pub node_type: pb::NodeType,
    /// Where it is.
    pub location: pb::Location,
    /// Node labels.
    pub labels: Vec<(String, String)>,
    /// Operator capacity overrides.
    pub capacity: CapacityOverride,
    /// Onion routing capability.
    pub supports_onion_routing: bool,
    /// State directory.
    pub state_dir: PathBuf,
    /// The node's key, certificate and CA (mTLS); None in insecure mode.
    pub credentials: Option<Credentials>,
    /// Exec policy.
    pub policy: ExecPolicy,
    /// Dev mode.
    pub dev: bool,
    /// sysfs root.
    pub sysfs_root: PathBuf,
    /// procfs root.
    pub procfs_root: PathBuf,
    /// Reconnect backoff base.
    pub reconnect_min: Duration,
    /// Reconnect backoff cap.
    pub reconnect_max: Duration,
    /// SIGTERM → SIGKILL grace.
    pub kill_grace: Duration,
    /// Log filter.
    pub log: String,
    /// Logs as JSON lines instead of human text.
    pub log_json: bool,
    /// OTLP/gRPC trace collector (off when None).
    pub otlp_endpoint: Option<String>,
}

fn duration(name: &str, v: Option<String>, default: Duration) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) => humantime::parse_duration(&s).map_err(|e| ConfigError(format!("{name} {s:?}: {e}"))),
    }
}

fn node_type(s: &str) -> Result<pb::NodeType, ConfigError> {
    let t = NodeType::ALL.into_iter().find(|t| t.as_str() == s);
    match t {
        Some(NodeType::EdgeDevice) => Ok(pb::NodeType::EdgeDevice),
        Some(NodeType::RelayNode) => Ok(pb::NodeType::RelayNode),
        Some(NodeType::Mixnode) => Ok(pb::NodeType::Mixnode),
        Some(NodeType::ComputeNode) => Ok(pb::NodeType::ComputeNode),
        Some(NodeType::Gateway) => Ok(pb::NodeType::Gateway),
        None => {
            let names: Vec<&str> = NodeType::ALL.iter().map(|t| t.as_str()).collect();
            err(format!("node type {s:?} is not one of {}", names.join(", ")))
        }
    }
}

impl AgentConfig {
    /// Validates a merged layer completely.
    pub fn from_layer(l: Layer) -> Result<AgentConfig, ConfigError> {
        let state_dir = l.state_dir.unwrap_or_else(|| PathBuf::from("/var/lib/fog-agent"));
        let insecure = l.insecure.unwrap_or(false);
        let credentials = if insecure {
            None
        } else if Credentials::exist(&state_dir) {
            Some(Credentials::load(&state_dir).map_err(|e| ConfigError(format!("node credentials: {e}")))?)
        } else {
            return err(format!(
                "no node certificate in {}: run `fog-agent join --token … --coordinator https://…` first \
                 (or, for dev, --insecure against a coordinator started with --insecure-dev)",
                state_dir.display()
            ));
        };
        let transport = match &credentials {
            None => Transport::Plaintext { connect_timeout: Duration::from_secs(5) },
            Some(c) => Transport::Tls {
                ca: c.ca_pem.clone(),
                cert: c.cert_pem.clone(),
                key: c.key_pem.clone(),
                connect_timeout: Duration::from_secs(5),
            },
        };
        let mut coordinators: Vec<String> = l
            .coordinators
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if coordinators.is_empty()
            && let Some(joined) = credentials.as_ref().and_then(|c| c.coordinator.clone())
        {
            coordinators.push(joined);
        }
        if coordinators.is_empty() {
            return err("no coordinator address: set --coordinator (FOG_AGENT_COORDINATORS)");
        }
        for a in &coordinators {
            transport.check_address(a).map_err(|e| ConfigError(e.to_string()))?;
        }
        let node_id = match (&credentials, l.node_id) {
            (Some(c), Some(id)) if id != c.node_id => {
                return err(format!(
                    "node id {id:?} differs from the certificate's ({:?}); with mTLS the certificate is the identity",
                    c.node_id
                ));
            }
            (Some(c), _) => c.node_id.clone(),
            (None, Some(id)) => id,
            (None, None) => {
                return err(
                    "no node id: set --node-id (FOG_AGENT_NODE_ID); in insecure mode it is the node's identity",
                );
            }
        };
        validate_id(&node_id).map_err(|e| ConfigError(format!("node id {node_id:?}: {e}")))?;
        let name = l.name.unwrap_or_else(|| node_id.clone());
        if name.chars().count() > 128 {
            return err("name: at most 128 characters");
        }
        let node_type = node_type(l.node_type.as_deref().unwrap_or("compute_node"))?;
        let has_coordinates = match (l.latitude, l.longitude) {
            (None, None) => false,
            (Some(lat), Some(lon)) => {
                if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                    return err(format!("coordinates ({lat}, {lon}) are out of range"));
                }
                true
            }
            _ => return err("set both latitude and longitude, or neither"),
        };
        let location = pb::Location {
            region: l.region.unwrap_or_default(),
            zone: l.zone.unwrap_or_default(),
            has_coordinates,
            latitude: l.latitude.unwrap_or(0.0),
            longitude: l.longitude.unwrap_or(0.0),
        };
        let labels = l.labels.unwrap_or_default();
        for (k, v) in &labels {
            if is_reserved_label(k) {
                return err(format!("label {k:?}: `fog.io/` labels are set by admins, never by the node"));
            }
            validate_label_key(k).map_err(|e| ConfigError(format!("label key {k:?}: {e}")))?;
            validate_label_value(v).map_err(|e| ConfigError(format!("label {k:?} value {v:?}: {e}")))?;
        }
        let capacity = CapacityOverride {
            cpu_millis: l.cpu_millis,
            memory_mb: l.memory_mb,
            storage_mb: l.storage_mb,
            gpus: l.gpus,
        };
        if capacity.cpu_millis == Some(0) || capacity.memory_mb == Some(0) {
            return err("cpu_millis and memory_mb must be positive when set");
        }
        let dev = l.dev.unwrap_or(false);
        let allow = l.allow_commands.unwrap_or_default();
        if allow.iter().any(|c| c.trim().is_empty()) {
            return err("allow_commands: empty command");
        }
        let policy = if dev {
            ExecPolicy::AllowAll
        } else if allow.is_empty() {
            ExecPolicy::DenyAll
        } else {
            ExecPolicy::Allow(allow)
        };
        let reconnect_min = duration("reconnect_min", l.reconnect_min, Duration::from_millis(500))?;
        let reconnect_max = duration("reconnect_max", l.reconnect_max, Duration::from_secs(30))?;
        if reconnect_min.is_zero() || reconnect_max < reconnect_min {
            return err("reconnect_min must be positive and at most reconnect_max");
        }
        let kill_grace = duration("kill_grace", l.kill_grace, Duration::from_secs(5))?;
        Ok(AgentConfig {
            coordinators,
            transport,
            node_id,
            name,
            node_type,
            location,
            labels,
            capacity,
            supports_onion_routing: l.supports_onion_routing.unwrap_or(false),
            state_dir,
            credentials,
            policy,
            dev,
            sysfs_root: l.sysfs_root.unwrap_or_else(|| PathBuf::from("/sys")),
            procfs_root: l.procfs_root.unwrap_or_else(|| PathBuf::from("/proc")),
            reconnect_min,
            reconnect_max,
            kill_grace,
            log: l.log.unwrap_or_else(|| "info".into()),
            log_json: match l.log_format.as_deref() {
                None | Some("human") => false,
                Some("json") => true,
                Some(other) => {
                    return Err(ConfigError(format!("log_format {other:?}: expected human or json")));
                }
            },
            otlp_endpoint: l.otlp_endpoint,
        })
    }

    /// Loads the whole configuration: `flags` over the environment (`env`) over
    /// the file at `file` (if any), then validates.
    pub fn load(
        flags: Layer,
        file: Option<&std::path::Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<AgentConfig, ConfigError> {
        let file_layer = match file {
            None => Layer::default(),
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|e| ConfigError(format!("config file {}: {e}", p.display())))?;
                Layer::from_toml(&text)?
            }
        };
        AgentConfig::from_layer(flags.over(Layer::from_env(env)?.over(file_layer)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(args_override_self = true)]
    struct Flags {
        #[command(flatten)]
        layer: Layer,
    }

    fn flags(args: &[&str]) -> Layer {
        Flags::try_parse_from(std::iter::once("fog-agent").chain(args.iter().copied())).unwrap().layer
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    fn file(text: &str) -> (tempfile::NamedTempFile, PathBuf) {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        let p = f.path().to_path_buf();
        (f, p)
    }

    const FILE: &str = r#"
        coordinators = ["10.0.0.1:7443", "10.0.0.2:7443"]
        node_id = "from-file"
        name = "file name"
        region = "eu-west"
        insecure = true
        kill_grace = "2s"
        allow_commands = ["/bin/echo"]
        [labels]
        site = "lab"
    "#;

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let (_f, path) = file(FILE);
        let c = AgentConfig::load(
            flags(&["--node-id", "from-flag"]),
            Some(&path),
            env(&[("FOG_AGENT_NODE_ID", "from-env"), ("FOG_AGENT_NAME", "env name"), ("FOG_AGENT_ZONE", "z1")]),
        )
        .unwrap();
        assert_eq!(c.node_id, "from-flag");
        assert_eq!(c.name, "env name");
        assert_eq!(c.location.region, "eu-west");
        assert_eq!(c.location.zone, "z1");
        assert_eq!(c.coordinators, ["10.0.0.1:7443", "10.0.0.2:7443"]);
        assert_eq!(c.kill_grace, Duration::from_secs(2));
        assert_eq!(c.reconnect_max, Duration::from_secs(30), "default");
        assert_eq!(c.labels, [("site".to_string(), "lab".to_string())]);
        assert_eq!(c.policy, ExecPolicy::Allow(vec!["/bin/echo".into()]));
        assert_eq!(c.node_type, pb::NodeType::ComputeNode);
        // Env lists are comma-separated; flags may repeat or comma-separate.
        let c = AgentConfig::load(
            flags(&["--coordinator", "a:1,b:2", "--coordinator", "c:3", "--label", "x=1", "--dev"]),
            Some(&path),
            env(&[("FOG_AGENT_LABELS", "y=2,z=3"), ("FOG_AGENT_COORDINATORS", "e:1")]),
        )
        .unwrap();
        assert_eq!(c.coordinators, ["a:1", "b:2", "c:3"]);
        assert_eq!(c.labels, [("x".to_string(), "1".to_string())]);
        assert_eq!(c.policy, ExecPolicy::AllowAll);
        let c = AgentConfig::load(Layer::default(), Some(&path), env(&[("FOG_AGENT_LABELS", "y=2,z=3")])).unwrap();
        assert_eq!(c.labels.len(), 2);
    }

    #[test]
    fn defaults_when_only_the_essentials_are_set() {
        let c = AgentConfig::load(
            flags(&["--coordinator", "127.0.0.1:1", "--node-id", "n1", "--insecure"]),
            None,
            env(&[]),
        )
        .unwrap();
        assert_eq!(c.name, "n1");
        assert_eq!(c.policy, ExecPolicy::DenyAll);
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/fog-agent"));
        assert_eq!(c.sysfs_root, PathBuf::from("/sys"));
        assert_eq!(c.reconnect_min, Duration::from_millis(500));
        assert!(!c.dev && !c.location.has_coordinates);
    }

    fn invalid(args: &[&str], vars: &[(&str, &str)]) -> String {
        let base = ["--coordinator", "127.0.0.1:1", "--node-id", "n1", "--insecure"];
        let all: Vec<&str> = base.iter().chain(args).copied().collect();
        AgentConfig::load(flags(&all), None, env(vars)).unwrap_err().0
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        assert!(invalid(&["--label", "fog.io/attested=true"], &[]).contains("fog.io/"));
        assert!(invalid(&[], &[("FOG_AGENT_LABELS", "fog.io/region=eu")]).contains("fog.io/"));
        assert!(invalid(&["--node-id", "Bad_Id"], &[]).contains("node id"));
        assert!(invalid(&["--node-type", "phone"], &[]).contains("node type"));
        assert!(invalid(&["--latitude", "91", "--longitude", "0"], &[]).contains("out of range"));
        assert!(invalid(&["--latitude", "45"], &[]).contains("both"));
        assert!(invalid(&["--coordinator", "https://x:1"], &[]).contains("TLS"));
        assert!(invalid(&["--reconnect-max", "1ms"], &[]).contains("reconnect"));
        assert!(invalid(&["--kill-grace", "soon"], &[]).contains("kill_grace"));
        assert!(invalid(&[], &[("FOG_AGENT_CPU_MILLIS", "lots")]).contains("FOG_AGENT_CPU_MILLIS"));
        assert!(invalid(&["--cpu-millis", "0"], &[]).contains("positive"));
        let no_insecure = AgentConfig::load(flags(&["--coordinator", "a:1", "--node-id", "n"]), None, env(&[]));
        assert!(no_insecure.unwrap_err().0.contains("--insecure"));
        let no_coord = AgentConfig::load(flags(&["--node-id", "n", "--insecure"]), None, env(&[]));
        assert!(no_coord.unwrap_err().0.contains("coordinator"));
        assert!(Layer::from_toml("nodeid = \"x\"").unwrap_err().0.contains("unknown field"));
    }

    #[test]
    fn capacity_overrides_apply_over_detection() {
        let c = AgentConfig::load(
            flags(&["--coordinator", "a:1", "--node-id", "n", "--insecure", "--cpu-millis", "1500"]),
            None,
            env(&[("FOG_AGENT_GPUS", "1")]),
        )
        .unwrap();
        let detected = pb::Resources { cpu_millis: 8000, memory_mb: 4096, storage_mb: 100, gpus: 0 };
        assert_eq!(
            c.capacity.apply(detected),
            pb::Resources { cpu_millis: 1500, memory_mb: 4096, storage_mb: 100, gpus: 1 }
        );
    }

    #[test]
    fn mtls_is_the_default_and_takes_the_identity_from_the_state_dir() {
        use crate::identity::{CA_FILE, CERT_FILE, COORDINATOR_FILE, KEY_FILE, cert_pem, write_private};
        let dir = tempfile::tempdir().unwrap();
        let sd = dir.path().to_str().unwrap().to_string();
        let none = AgentConfig::load(flags(&["--state-dir", &sd]), None, env(&[])).unwrap_err().0;
        assert!(none.contains("fog-agent join") && none.contains("--insecure"), "{none}");
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.subject_alt_names = vec![rcgen::SanType::URI("spiffe://fog.local/node/edge-9".try_into().unwrap())];
        let der = p.self_signed(&key).unwrap().der().to_vec();
        write_private(dir.path(), KEY_FILE, key.serialize_pem().as_bytes()).unwrap();
        write_private(dir.path(), CA_FILE, cert_pem(&der).as_bytes()).unwrap();
        write_private(dir.path(), COORDINATOR_FILE, b"https://127.0.0.1:7443\n").unwrap();
        write_private(dir.path(), CERT_FILE, cert_pem(&der).as_bytes()).unwrap();
        let c = AgentConfig::load(flags(&["--state-dir", &sd]), None, env(&[])).unwrap();
        assert_eq!(c.node_id, "edge-9");
        assert_eq!(c.coordinators, ["https://127.0.0.1:7443"], "the joined coordinator by default");
        assert!(matches!(c.transport, Transport::Tls { .. }));
        assert!(!format!("{c:?}").contains("PRIVATE KEY"), "Debug never shows the key");
        let other = AgentConfig::load(flags(&["--state-dir", &sd, "--node-id", "edge-1"]), None, env(&[]));
        assert!(other.unwrap_err().0.contains("certificate"));
        let plain = AgentConfig::load(flags(&["--state-dir", &sd, "--coordinator", "http://h:1"]), None, env(&[]));
        assert!(plain.unwrap_err().0.contains("https"));
    }
}
