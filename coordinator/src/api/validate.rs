//! Request validation at the boundary: lengths, counts, ranges, enum values,
//! label syntax. Every check adds a violation naming the field; a request with
//! any violation is refused whole before it reaches the engine.

use super::error::ApiError;
use fog_core::domain;
use fog_proto::v1 as pb;
use std::fmt;

/// The field path `parent.name`, formatted only when a violation names it
/// (a valid request, the common case, formats no paths at all).
#[derive(Clone, Copy, Debug)]
struct Path<'a, P>(P, &'a str);

impl<P: fmt::Display> fmt::Display for Path<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// The path of a list's item, `list[i]`, formatted only when a violation names it.
#[derive(Clone, Copy, Debug)]
struct Item<P>(P, usize);

impl<P: fmt::Display> fmt::Display for Item<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.0, self.1)
    }
}

/// Checks the rules declared in the `.proto` files (`buf.validate`), with
/// the code fog-proto generates from them: every violation, with its field path.
pub fn declared<M: fog_proto::Validate>(msg: &M) -> Result<(), ApiError> {
    Violations::declared(msg).finish()
}

/// Collects field violations.
#[derive(Default, Debug)]
pub struct Violations(Vec<(String, String)>);

impl Violations {
    /// Adds a violation.
    pub fn add(&mut self, field: impl fmt::Display, why: impl Into<String>) {
        self.0.push((field.to_string(), why.into()));
    }

    /// Starts with the violations of the rules declared in the `.proto`
    /// files; the hand-written checks then add what those cannot express.
    pub fn declared<M: fog_proto::Validate>(msg: &M) -> Violations {
        Violations::declared_at("", msg)
    }

    /// [`Violations::declared`] for a message nested at `prefix` (e.g. a session message's variant).
    pub fn declared_at<M: fog_proto::Validate>(prefix: &str, msg: &M) -> Violations {
        let path = |p: String| if prefix.is_empty() { p } else { format!("{prefix}.{p}") };
        match msg.validate() {
            Ok(()) => Violations::default(),
            Err(e) => Violations(
                e.into_violations().into_iter().map(|v| (path(v.field_path()), v.message().to_string())).collect(),
            ),
        }
    }

    /// Ok if there were none. A field found by both the declared and the
    /// hand-written checks is reported once (the first description).
    /// A message-level rule (e.g. "exactly one of spec, task_id") has no
    /// field; it is dropped when a field-level violation says the same more
    /// precisely, and otherwise reported as field `request`.
    pub fn finish(mut self) -> Result<(), ApiError> {
        let mut seen = std::collections::HashSet::new();
        self.0.retain(|(field, _)| seen.insert(field.clone()));
        if self.0.len() > 1 {
            self.0.retain(|(field, _)| !field.is_empty());
        }
        for (field, _) in &mut self.0 {
            if field.is_empty() {
                *field = "request".into();
            }
        }
        if self.0.is_empty() { Ok(()) } else { Err(ApiError::Invalid(self.0)) }
    }

    /// Checks a string's length in characters.
    pub fn max_len(&mut self, field: impl fmt::Display + Copy, s: &str, max: usize) {
        let n = s.chars().count();
        if n > max {
            self.add(field, format!("must be at most {max} characters, got {n}"));
        }
    }

    /// Checks a list's length.
    pub fn max_items<T>(&mut self, field: impl fmt::Display + Copy, v: &[T], max: usize) {
        if v.len() > max {
            self.add(field, format!("must have at most {max} items, got {}", v.len()));
        }
    }

    /// Checks an enum value is known (and optionally not UNSPECIFIED).
    pub fn enum_value<E: TryFrom<i32>>(&mut self, field: impl fmt::Display + Copy, v: i32, allow_unspecified: bool) {
        if E::try_from(v).is_err() || (!allow_unspecified && v == 0) {
            self.add(field, format!("unknown enum value {v}"));
        }
    }

    /// Checks an id (`[a-z0-9-]`, 1..=63).
    pub fn id(&mut self, field: impl fmt::Display + Copy, s: &str) {
        if let Err(e) = domain::validate_id(s) {
            self.add(field, e.to_string());
        }
    }

    /// Checks labels; reserved keys only if `allow_reserved`.
    pub fn labels(&mut self, field: impl fmt::Display + Copy, labels: &[pb::Label], allow_reserved: bool) {
        self.max_items(field, labels, 64);
        for (i, l) in labels.iter().enumerate() {
            if let Err(e) = domain::validate_label_key(&l.key) {
                self.add(format!("{field}[{i}].key"), e.to_string());
            } else if !allow_reserved && domain::is_reserved_label(&l.key) {
                self.add(format!("{field}[{i}].key"), domain::NameError::Reserved.to_string());
            }
            if let Err(e) = domain::validate_label_value(&l.value) {
                self.add(format!("{field}[{i}].value"), e.to_string());
            }
        }
    }

    /// Checks a location.
    pub fn location(&mut self, field: impl fmt::Display + Copy, l: &pb::Location) {
        if !l.region.is_empty()
            && let Err(e) = domain::validate_id(&l.region)
        {
            self.add(Path(field, "region"), e.to_string());
        }
        self.max_len(Path(field, "zone"), &l.zone, 63);
        if l.has_coordinates {
            if !(l.latitude.is_finite() && (-90.0..=90.0).contains(&l.latitude)) {
                self.add(Path(field, "latitude"), "must be between -90 and 90");
            }
            if !(l.longitude.is_finite() && (-180.0..=180.0).contains(&l.longitude)) {
                self.add(Path(field, "longitude"), "must be between -180 and 180");
            }
        }
    }

    /// Checks a page size (0 = default, else 1..=max).
    pub fn page_size(&mut self, field: impl fmt::Display + Copy, v: u32, max: u32) {
        if v > max {
            self.add(field, format!("must be at most {max}, got {v}"));
        }
    }
}

/// Upper bounds on what a task may ask for (a single node never has more).
pub const MAX_CPU_MILLIS: u32 = 1_024_000;
/// Memory bound (16 TiB).
pub const MAX_MEMORY_MB: u64 = 16 * 1024 * 1024;
/// Storage bound (1 PiB).
pub const MAX_STORAGE_MB: u64 = 1024 * 1024 * 1024;
/// GPU bound.
pub const MAX_GPUS: u32 = 64;
/// Longest timeout (24 h).
pub const MAX_TIMEOUT_MS: u64 = 86_400_000;

/// Validates a task spec at `field` (e.g. "spec").
pub fn task_spec(v: &mut Violations, field: &str, spec: Option<&pb::TaskSpec>) {
    let Some(s) = spec else {
        v.add(field, "is required");
        return;
    };
    let f = |name| Path(field, name);
    v.max_len(f("name"), &s.name, 128);
    match &s.workload {
        None => v.add(f("workload"), "one of builtin or exec is required"),
        Some(pb::task_spec::Workload::Builtin(b)) => match &b.kind {
            None => v.add(f("builtin.kind"), "one of sleep_ms, echo, hash_rounds or fail is required"),
            Some(pb::builtin_task::Kind::SleepMs(ms)) if *ms > MAX_TIMEOUT_MS => {
                v.add(f("builtin.sleep_ms"), format!("must be at most {MAX_TIMEOUT_MS}"))
            }
            Some(pb::builtin_task::Kind::Echo(t)) if t.len() > 4096 => {
                v.add(f("builtin.echo"), "must be at most 4096 bytes")
            }
            Some(pb::builtin_task::Kind::HashRounds(n)) if *n > 100_000_000 => {
                v.add(f("builtin.hash_rounds"), "must be at most 100000000")
            }
            Some(pb::builtin_task::Kind::Fail(t)) if t.len() > 4096 => {
                v.add(f("builtin.fail"), "must be at most 4096 bytes")
            }
            Some(_) => {}
        },
        Some(pb::task_spec::Workload::Exec(e)) => {
            if e.command.is_empty() {
                v.add(f("exec.command"), "must not be empty");
            }
            v.max_len(f("exec.command"), &e.command, 4096);
            v.max_items(f("exec.args"), &e.args, 256);
            for (i, a) in e.args.iter().enumerate() {
                v.max_len(Item(f("exec.args"), i), a, 4096);
            }
            if e.env.len() > 64 {
                v.add(f("exec.env"), format!("must have at most 64 entries, got {}", e.env.len()));
            }
            for (k, val) in &e.env {
                if k.is_empty() || k.contains('=') || k.contains('\0') || k.len() > 256 {
                    v.add(f("exec.env"), format!("invalid variable name {k:?}"));
                }
                v.max_len(f("exec.env"), val, 4096);
            }
            v.max_len(f("exec.working_dir"), &e.working_dir, 4096);
        }
    }
    if let Some(r) = &s.resources {
        if r.cpu_millis > MAX_CPU_MILLIS {
            v.add(f("resources.cpu_millis"), format!("must be at most {MAX_CPU_MILLIS}"));
        }
        if r.memory_mb > MAX_MEMORY_MB {
            v.add(f("resources.memory_mb"), format!("must be at most {MAX_MEMORY_MB}"));
        }
        if r.storage_mb > MAX_STORAGE_MB {
            v.add(f("resources.storage_mb"), format!("must be at most {MAX_STORAGE_MB}"));
        }
        if r.gpus > MAX_GPUS {
            v.add(f("resources.gpus"), format!("must be at most {MAX_GPUS}"));
        }
    }
    v.enum_value::<pb::SlaTier>(f("sla_tier"), s.sla_tier, true);
    v.enum_value::<pb::PrivacyLevel>(f("privacy_level"), s.privacy_level, true);
    v.enum_value::<pb::RoutingStrategy>(f("strategy"), s.strategy, true);
    v.max_len(f("affinity_key"), &s.affinity_key, 256);
    if s.strategy == pb::RoutingStrategy::Affinity as i32 && s.affinity_key.is_empty() {
        v.add(f("affinity_key"), "is required with the affinity strategy");
    }
    v.labels(f("preferred_labels"), &s.preferred_labels, true);
    v.labels(f("required_labels"), &s.required_labels, true);
    if let Some(o) = &s.origin {
        v.location(f("origin"), o);
    }
    v.max_items(f("allowed_regions"), &s.allowed_regions, 64);
    for (i, r) in s.allowed_regions.iter().enumerate() {
        if let Err(e) = domain::validate_id(r) {
            v.add(format!("{field}.allowed_regions[{i}]"), e.to_string());
        }
    }
    if s.timeout_ms > MAX_TIMEOUT_MS {
        v.add(f("timeout_ms"), format!("must be at most {MAX_TIMEOUT_MS}"));
    }
    if s.max_retries.is_some_and(|r| r > 20) {
        v.add(f("max_retries"), "must be at most 20");
    }
    if s.replicas > 5 {
        v.add(f("replicas"), "must be at most 5");
    }
}

/// Validates a task id.
pub fn task_id(v: &mut Violations, field: &str, id: &str) {
    if id.is_empty() {
        v.add(field, "must not be empty");
    } else {
        v.max_len(field, id, 64);
        if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            v.add(field, "must contain only letters, digits and -");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> pb::TaskSpec {
        pb::TaskSpec {
            workload: Some(pb::task_spec::Workload::Builtin(pb::BuiltinTask {
                kind: Some(pb::builtin_task::Kind::Echo("hi".into())),
            })),
            ..Default::default()
        }
    }

    fn fields(s: &pb::TaskSpec) -> Vec<String> {
        let mut v = Violations::default();
        task_spec(&mut v, "spec", Some(s));
        v.0.into_iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn a_minimal_spec_is_valid() {
        assert!(fields(&spec()).is_empty());
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut s = spec();
        s.name = "x".repeat(129);
        s.sla_tier = 99;
        s.replicas = 6;
        s.strategy = pb::RoutingStrategy::Affinity as i32;
        s.resources = Some(pb::Resources { cpu_millis: u32::MAX, ..Default::default() });
        s.origin = Some(pb::Location { has_coordinates: true, latitude: 91.0, ..Default::default() });
        s.required_labels = vec![pb::Label { key: "bad key".into(), value: "v".into() }];
        s.workload = Some(pb::task_spec::Workload::Exec(pb::ExecTask {
            command: "/bin/true".into(),
            args: vec!["ok".into(), "x".repeat(4097)],
            ..Default::default()
        }));
        let f = fields(&s);
        for want in [
            "spec.name",
            "spec.sla_tier",
            "spec.replicas",
            "spec.affinity_key",
            "spec.resources.cpu_millis",
            "spec.origin.latitude",
            "spec.required_labels[0].key",
            "spec.exec.args[1]",
        ] {
            assert!(f.iter().any(|x| x == want), "{want} missing from {f:?}");
        }
        assert!(!f.iter().any(|x| x == "spec.exec.args[0]"), "a valid argument named in {f:?}");
    }

    #[test]
    fn missing_workload_is_refused() {
        let s = pb::TaskSpec::default();
        assert_eq!(fields(&s), ["spec.workload"]);
    }

    #[test]
    fn reserved_labels_only_where_allowed() {
        let l = vec![pb::Label { key: "fog.io/attested".into(), value: "true".into() }];
        let mut v = Violations::default();
        v.labels("labels", &l, false);
        assert_eq!(v.0.len(), 1);
        let mut v = Violations::default();
        v.labels("labels", &l, true);
        assert!(v.0.is_empty());
    }
}
