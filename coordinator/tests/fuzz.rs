//! Decoders and validators hammered with generated input: every request
//! message type (random bytes, and valid encodings mutated), session
//! messages, access tokens and the other bearer formats, join tokens, and
//! node CSRs. Nothing may panic; nothing mutated may verify.
//!
//! The suite runs a bounded number of cases; `FOG_FUZZ_CASES=100000 cargo test
//! --release -p fog-coordinator --test fuzz` is the long run whose figures are
//! in SECURITY.md.

use fog_coordinator::api::validate::{Violations, declared, task_spec};
use fog_coordinator::auth::secrets::{ApiTokenSecret, RefreshSecret};
use fog_coordinator::auth::{AuthView, KeyRing, Role, SigningKeyRecord};
use fog_coordinator::identity::{CertificateAuthority, TrustDomain, parse_join_token};
use fog_proto::v1 as pb;
use proptest::prelude::*;
use prost::Message;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("FOG_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    ProptestConfig { cases: n, failure_persistence: None, ..ProptestConfig::default() }
}

/// A mutation of a byte string: flip, set, insert, delete or truncate at positions from `ops`.
fn mutate(mut bytes: Vec<u8>, ops: &[(u8, usize, u8)]) -> Vec<u8> {
    for &(op, at, val) in ops {
        let n = bytes.len();
        match op % 5 {
            0 if n > 0 => bytes[at % n] ^= 1 << (val % 8),
            1 if n > 0 => bytes[at % n] = val,
            2 => bytes.insert(at % (n + 1), val),
            3 if n > 0 => drop(bytes.remove(at % n)),
            4 => bytes.truncate(at % (n + 1)),
            _ => {}
        }
    }
    bytes
}

fn ops() -> impl Strategy<Value = Vec<(u8, usize, u8)>> {
    prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..8)
}

/// Decodes `bytes` as `M` and, if that works, runs the declared rules on it.
fn decode_and_check<M: Message + Default + fog_proto::Validate>(bytes: &[u8]) {
    if let Ok(m) = M::decode(bytes) {
        let _ = declared(&m);
    }
}

/// Every request type a client can send, through the checks the adapters run.
fn all_requests(bytes: &[u8]) {
    decode_and_check::<pb::ListNodesRequest>(bytes);
    decode_and_check::<pb::GetNodeRequest>(bytes);
    decode_and_check::<pb::CordonNodeRequest>(bytes);
    decode_and_check::<pb::DrainNodeRequest>(bytes);
    decode_and_check::<pb::SetMaintenanceRequest>(bytes);
    decode_and_check::<pb::RemoveNodeRequest>(bytes);
    decode_and_check::<pb::UpdateNodeLabelsRequest>(bytes);
    decode_and_check::<pb::CreateJoinTokenRequest>(bytes);
    decode_and_check::<pb::GetTaskRequest>(bytes);
    decode_and_check::<pb::ListTasksRequest>(bytes);
    decode_and_check::<pb::CancelTaskRequest>(bytes);
    decode_and_check::<pb::WatchTasksRequest>(bytes);
    decode_and_check::<pb::ExplainPlacementRequest>(bytes);
    decode_and_check::<pb::WatchTopologyRequest>(bytes);
    decode_and_check::<pb::GetTopologyHistoryRequest>(bytes);
    decode_and_check::<pb::JoinRequest>(bytes);
    if let Ok(r) = pb::SubmitTaskRequest::decode(bytes) {
        let _ = declared(&r);
        let mut v = Violations::default();
        task_spec(&mut v, "spec", r.spec.as_ref());
        let _ = v.finish();
    }
    let _ = pb::SignInRequest::decode(bytes);
    let _ = pb::CreateUserRequest::decode(bytes);
    let _ = pb::CreateApiTokenRequest::decode(bytes);
    if let Ok(r) = pb::SessionRequest::decode(bytes) {
        match r.msg {
            Some(pb::session_request::Msg::Hello(h)) => drop(fog_coordinator::api::registration(h)),
            Some(m) => drop(fog_coordinator::api::session_event(m, &mut Default::default())),
            None => {}
        }
    }
}

/// Valid messages of several types, as seeds for mutation.
fn seeds() -> Vec<Vec<u8>> {
    let spec = pb::TaskSpec {
        name: "seed".into(),
        resources: Some(pb::Resources { cpu_millis: 100, memory_mb: 64, storage_mb: 0, gpus: 0 }),
        sla_tier: pb::SlaTier::Gold as i32,
        affinity_key: "k".into(),
        required_labels: vec![pb::Label { key: "zone".into(), value: "a".into() }],
        workload: Some(pb::task_spec::Workload::Exec(pb::ExecTask {
            command: "/bin/echo".into(),
            args: vec!["hi".into()],
            ..Default::default()
        })),
        ..Default::default()
    };
    vec![
        pb::SubmitTaskRequest { spec: Some(spec), request_id: "r1".into() }.encode_to_vec(),
        pb::ListNodesRequest { region: "eu-west".into(), page_size: 10, ..Default::default() }.encode_to_vec(),
        pb::UpdateNodeLabelsRequest {
            node_id: "n1".into(),
            set: vec![pb::Label { key: "a".into(), value: "b".into() }],
            remove: vec!["c".into()],
        }
        .encode_to_vec(),
        pb::SessionRequest {
            msg: Some(pb::session_request::Msg::Hello(pb::Hello {
                node_id: "n1".into(),
                capacity: Some(pb::Resources { cpu_millis: 1000, memory_mb: 1024, storage_mb: 0, gpus: 0 }),
                labels: vec![pb::Label { key: "zone".into(), value: "a".into() }],
                ..Default::default()
            })),
        }
        .encode_to_vec(),
        pb::SessionRequest {
            msg: Some(pb::session_request::Msg::TaskResult(pb::TaskResult {
                attempt: Some(pb::AttemptRef { task_id: "t-1".into(), attempt: 1 }),
                outcome: pb::AttemptOutcome::Succeeded as i32,
                ..Default::default()
            })),
        }
        .encode_to_vec(),
        pb::WatchTopologyRequest { resume_revision: 5, epoch: "e".into(), ..Default::default() }.encode_to_vec(),
    ]
}

static RING: LazyLock<Arc<KeyRing>> = LazyLock::new(|| {
    Arc::new(KeyRing::new(vec![SigningKeyRecord::generate(0).unwrap()], "fogplane", "fogplane-api", 30))
});

fn now_s() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs()
}

static GOOD_TOKEN: LazyLock<String> =
    LazyLock::new(|| RING.sign(&RING.claims("alice", Role::Operator, "s1", now_s(), 600)).unwrap());

static VIEW: LazyLock<AuthView> = LazyLock::new(|| AuthView {
    keys: RING.clone(),
    users: [("alice".to_string(), Role::Operator)].into_iter().collect(),
    api_tokens: Default::default(),
    ended_sessions: Default::default(),
});

static CA: LazyLock<CertificateAuthority> = LazyLock::new(|| {
    CertificateAuthority::generate(&TrustDomain::new("fog.local").unwrap(), SystemTime::now()).unwrap()
});

/// A device's CSR and the SubjectPublicKeyInfo of its key.
static GOOD_CSR: LazyLock<(Vec<u8>, Vec<u8>)> = LazyLock::new(|| {
    let key = rcgen::KeyPair::generate().unwrap();
    let csr =
        rcgen::CertificateParams::new(vec!["x".to_string()]).unwrap().serialize_request(&key).unwrap().der().to_vec();
    (csr, rcgen::PublicKeyData::subject_public_key_info(&key))
});

/// The decoded bytes of each part of a JWT.
fn canonical(token: &str) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    token.split('.').map(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap_or_default()).collect()
}

proptest! {
    #![proptest_config(cases(2000))]

    #[test]
    fn random_bytes_never_panic_a_decoder_or_validator(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        all_requests(&bytes);
    }

    #[test]
    fn mutated_valid_messages_never_panic_a_decoder_or_validator(seed in 0usize..6, ops in ops()) {
        let s = seeds();
        all_requests(&mutate(s[seed % s.len()].clone(), &ops));
    }

    #[test]
    fn random_strings_are_never_accepted_as_credentials(s in ".{0,600}") {
        prop_assert!(VIEW.authenticate(&s, now_s() * 1000).is_err());
        let _ = ApiTokenSecret::parse(&s);
        let _ = RefreshSecret::parse(&s);
        let _ = parse_join_token(&s);
    }

    #[test]
    fn a_mutated_access_token_never_verifies_as_anything_else(ops in ops()) {
        let good = GOOD_TOKEN.as_bytes().to_vec();
        let bad = mutate(good.clone(), &ops);
        if let Ok(s) = String::from_utf8(bad)
            && let Ok(p) = VIEW.authenticate(&s, now_s() * 1000)
        {
            // Base64url has spare bits in the last character of a part: a change
            // there can decode to the same bytes — the same token, not a forgery.
            prop_assert_eq!(p.subject, "alice");
            prop_assert_eq!(canonical(&s), canonical(&GOOD_TOKEN));
        }
    }

    #[test]
    fn random_and_mutated_csrs_never_panic_or_get_another_key_signed(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        ops in ops(),
    ) {
        let ttl = Duration::from_secs(3600);
        let _ = CA.sign_node_csr(&bytes, "n1", ttl, SystemTime::now());
        let (csr, spki) = &*GOOD_CSR;
        if let Ok(cert) = CA.sign_node_csr(&mutate(csr.clone(), &ops), "n1", ttl, SystemTime::now()) {
            // Whatever a mutation left parseable, only the key that signed the CSR gets a certificate.
            let (_, parsed) = x509_parser::parse_x509_certificate(&cert.der).unwrap();
            prop_assert_eq!(parsed.public_key().raw, spki.as_slice());
        }
    }
}
