//! The fit filter every strategy applies first. One rule set, two uses: the
//! hot path ([`fits`]) stops at the first failure and never formats a string;
//! [`check_fit`] collects every reason for explain-placement.

use super::TaskNeeds;
use crate::domain::{LABEL_REGION, PrivacyLevel};
use crate::registry::{Liveness, NodeEntry};

/// Where the rule set reports a failed check; returns whether to keep checking.
trait Reasons {
    fn reject(&mut self, kind: &'static str, why: impl FnOnce() -> String) -> bool;
}

struct FirstFailure;
impl Reasons for FirstFailure {
    fn reject(&mut self, _: &'static str, _: impl FnOnce() -> String) -> bool {
        false
    }
}

struct Collect(Vec<(&'static str, String)>);
impl Reasons for Collect {
    fn reject(&mut self, kind: &'static str, why: impl FnOnce() -> String) -> bool {
        self.0.push((kind, why()));
        true
    }
}

/// The upper-case name of a privacy level.
pub(crate) fn level_name(l: PrivacyLevel) -> &'static str {
    match l {
        PrivacyLevel::Public => "PUBLIC",
        PrivacyLevel::Private => "PRIVATE",
        PrivacyLevel::Confidential => "CONFIDENTIAL",
        PrivacyLevel::Secret => "SECRET",
    }
}

fn scan(n: &NodeEntry, needs: &TaskNeeds, r: &mut impl Reasons) -> bool {
    let mut ok = true;
    macro_rules! reject {
        ($kind:expr, $($fmt:tt)*) => {{
            ok = false;
            if !r.reject($kind, || format!($($fmt)*)) {
                return false;
            }
        }};
    }
    match n.liveness {
        Liveness::Healthy => {}
        Liveness::Suspect => reject!("suspect", "liveness: node is suspect"),
        Liveness::Offline => reject!("offline", "liveness: node is offline"),
        Liveness::Unknown => reject!("unknown", "liveness: node not seen since registration or restart"),
    }
    if n.cordoned {
        reject!("cordoned", "cordoned by an operator");
    }
    if n.draining {
        reject!("draining", "draining");
    }
    if n.maintenance {
        reject!("maintenance", "in maintenance");
    }
    if !n.live.power_mode.accepts_work() {
        reject!("power", "power: node is in {:?} mode and takes no new work", n.live.power_mode);
    }
    if n.live.state_unwritable {
        reject!("storage", "storage: the agent cannot write its state directory (disk full or read-only)");
    }
    let (free, want) = (n.free(), &needs.resources);
    if free.cpu_millis < want.cpu_millis {
        reject!("cpu", "cpu: needs {}m, free {}m", want.cpu_millis, free.cpu_millis);
    }
    if free.memory_mb < want.memory_mb {
        reject!("memory", "memory: needs {} MiB, free {} MiB", want.memory_mb, free.memory_mb);
    }
    if free.storage_mb < want.storage_mb {
        reject!("storage", "storage: needs {} MiB, free {} MiB", want.storage_mb, free.storage_mb);
    }
    if free.gpus < want.gpus {
        reject!("gpu", "gpu: needs {}, free {}", want.gpus, free.gpus);
    }
    let has = |(k, v): &(String, String)| n.labels.get(k) == Some(v);
    if !needs.required_labels.iter().all(has) {
        reject!(
            "labels",
            "labels: missing {}",
            needs
                .required_labels
                .iter()
                .filter(|l| !has(l))
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let ceiling = n.privacy_ceiling();
    if ceiling < needs.privacy {
        reject!(
            "privacy",
            "privacy: task is {}, node may host at most {}",
            level_name(needs.privacy),
            level_name(ceiling)
        );
    }
    if needs.privacy >= PrivacyLevel::Confidential && !needs.allowed_regions.is_empty() {
        match n.residency_region() {
            None => reject!(
                "residency",
                "residency: node has no admin region ({LABEL_REGION}); allowed: {}",
                needs.allowed_regions.join(", ")
            ),
            Some(region) if !needs.allowed_regions.iter().any(|a| a == region) => {
                reject!("residency", "residency: node is in {region}; allowed: {}", needs.allowed_regions.join(", "))
            }
            Some(_) => {}
        }
    }
    if n.exclusive_attempts > 0 {
        reject!("co-tenancy", "co-tenancy: node runs a SECRET task and takes nothing else");
    } else if needs.privacy == PrivacyLevel::Secret && !n.attempts.is_empty() {
        reject!(
            "co-tenancy",
            "co-tenancy: a SECRET task needs an empty node, node runs {} attempt(s)",
            n.attempts.len()
        );
    }
    ok
}

/// The fit filter: `Ok` or every reason it fails, as (kind, human text).
/// Kinds: `offline`/`suspect`/`unknown` (liveness), `cordoned`, `draining`,
/// `maintenance`, `power`, `cpu`, `memory`, `storage`, `gpu`, `labels`,
/// `privacy`, `residency`, `co-tenancy`. Flapping is not part of fit: the
/// scheduler prefers steady nodes and falls back to flapping ones.
pub fn check_fit(node: &NodeEntry, needs: &TaskNeeds) -> Result<(), Vec<(&'static str, String)>> {
    let mut c = Collect(Vec::new());
    if scan(node, needs, &mut c) { Ok(()) } else { Err(c.0) }
}

/// `check_fit(..).is_ok()` without building any reason.
pub(crate) fn fits(node: &NodeEntry, needs: &TaskNeeds) -> bool {
    scan(node, needs, &mut FirstFailure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LABEL_ATTESTED, LABEL_ONION, LABEL_OPERATOR_OWNED, PowerMode, Resources};
    use crate::registry::NodeRegistration;

    fn node() -> NodeEntry {
        let mut e = NodeEntry::new(
            NodeRegistration {
                id: "n1".into(),
                capacity: Resources { cpu_millis: 4000, memory_mb: 4096, storage_mb: 1000, gpus: 0 },
                ..Default::default()
            },
            0,
        );
        e.liveness = Liveness::Healthy;
        e
    }

    fn kinds(n: &NodeEntry, needs: &TaskNeeds) -> Vec<&'static str> {
        let r = check_fit(n, needs);
        assert_eq!(r.is_ok(), fits(n, needs));
        r.err().unwrap_or_default().into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn a_healthy_node_with_room_fits() {
        assert!(check_fit(&node(), &TaskNeeds::default()).is_ok());
    }

    #[test]
    fn every_failed_rule_is_reported() {
        let mut n = node();
        n.liveness = Liveness::Offline;
        n.cordoned = true;
        n.live.power_mode = PowerMode::PowerSave;
        n.live.state_unwritable = true;
        n.allocated = Resources { cpu_millis: 3500, ..Resources::ZERO };
        let needs = TaskNeeds {
            resources: Resources { cpu_millis: 2000, gpus: 1, ..Resources::ZERO },
            required_labels: vec![("zone".into(), "a".into())],
            privacy: PrivacyLevel::Private,
            ..Default::default()
        };
        assert_eq!(kinds(&n, &needs), ["offline", "cordoned", "power", "storage", "cpu", "gpu", "labels", "privacy"]);
        let reasons = check_fit(&n, &needs).unwrap_err();
        assert_eq!(reasons[3].1, "storage: the agent cannot write its state directory (disk full or read-only)");
        assert_eq!(reasons[4].1, "cpu: needs 2000m, free 500m");
        assert_eq!(reasons[6].1, "labels: missing zone=a");
        assert_eq!(reasons[7].1, "privacy: task is PRIVATE, node may host at most PUBLIC");
    }

    #[test]
    fn residency_trusts_only_the_admin_region() {
        let mut n = node();
        for l in [LABEL_ONION, LABEL_OPERATOR_OWNED, LABEL_ATTESTED] {
            n.labels.insert(l.into(), "true".into());
        }
        n.location.region = "eu-west".into();
        let needs = TaskNeeds {
            privacy: PrivacyLevel::Confidential,
            allowed_regions: vec!["eu-west".into()],
            ..Default::default()
        };
        assert_eq!(kinds(&n, &needs), ["residency"]);
        n.labels.insert(LABEL_REGION.into(), "us-east".into());
        assert_eq!(kinds(&n, &needs), ["residency"]);
        n.labels.insert(LABEL_REGION.into(), "eu-west".into());
        assert!(kinds(&n, &needs).is_empty());
        // PRIVATE ignores residency.
        let private = TaskNeeds { privacy: PrivacyLevel::Private, ..needs.clone() };
        n.labels.remove(LABEL_REGION);
        assert!(kinds(&n, &private).is_empty());
    }

    #[test]
    fn secret_tasks_do_not_share_nodes() {
        let mut n = node();
        for l in [LABEL_ONION, LABEL_OPERATOR_OWNED, LABEL_ATTESTED] {
            n.labels.insert(l.into(), "true".into());
        }
        let secret = TaskNeeds { privacy: PrivacyLevel::Secret, ..Default::default() };
        assert!(kinds(&n, &secret).is_empty());
        n.attempts.insert(("t1".into(), 1));
        assert_eq!(kinds(&n, &secret), ["co-tenancy"]);
        assert!(kinds(&n, &TaskNeeds::default()).is_empty());
        n.exclusive_attempts = 1;
        assert_eq!(kinds(&n, &TaskNeeds::default()), ["co-tenancy"]);
        // Confidential needs onion + (owned or attested).
        let mut m = node();
        m.labels.insert(LABEL_ONION.into(), "true".into());
        let conf = TaskNeeds { privacy: PrivacyLevel::Confidential, ..Default::default() };
        assert_eq!(kinds(&m, &conf), ["privacy"]);
        m.labels.insert(LABEL_ATTESTED.into(), "true".into());
        assert!(kinds(&m, &conf).is_empty());
        assert_eq!(kinds(&m, &secret), ["privacy"]);
    }
}
