//! Node identity over mTLS against a real coordinator: join tokens, CSR
//! signing, identity only from the certificate, revocation, renewal.

use fog_e2e::identity::*;
use fog_e2e::raw::RawNode;
use fog_e2e::*;
use fog_proto::v1 as pb;
use fog_proto::v1::node_service_client::NodeServiceClient;
use fog_proto::v1::session_request::Msg as Up;
use fog_proto::v1::session_response::Msg as Down;
use std::time::Duration;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_with_a_token_and_holds_an_mtls_session() {
    let c = Coord::start_tls().await;
    let key = DeviceKey::new();
    let t = token(&c, "edge-1", &[("fog.io/attested", "true")]).await;
    assert!(t.starts_with("FOG1"), "{t}");
    let r = join(&c, &t, "edge-1", key.csr()).await.expect("join accepted");
    assert_eq!(r.node_id, "edge-1");
    assert_eq!(r.ca_chain_der.len(), 1);
    // The coordinator chose every field: one SPIFFE URI, node id as CN, not a CA.
    let (_, cert) = x509_parser::parse_x509_certificate(&r.certificate_der).expect("a certificate");
    let sans: Vec<String> = cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect();
    assert_eq!(sans, ["URI(\"spiffe://fog.local/node/edge-1\")"]);
    assert!(!cert.is_ca());
    assert!(cert.subject().to_string().contains("edge-1") && !cert.subject().to_string().contains("admin"));

    let channel = c.tls_channel(Some((&cert_pem(&r.certificate_der), &key.key_pem()))).await;
    // The hello carries no id: the certificate says who this is.
    let (node, welcome) = RawNode::open(channel, hello("")).await.expect("mTLS session");
    assert_eq!(welcome.node_id, "edge-1");
    node.heartbeat(1).await;
    c.wait_healthy(1).await;
    let n = c.get_node("edge-1").await;
    assert!(
        n.labels.iter().any(|l| l.key == "fog.io/attested" && l.value == "true"),
        "token labels applied: {:?}",
        n.labels
    );
    // The API shows when the session's certificate expires (what the panel's node detail displays).
    let expires = n.certificate_expires_at.expect("certificate expiry of the live session");
    assert_eq!(expires.seconds, cert.validity().not_after.timestamp());
    drop(node);
    let gone = fog_e2e::eventually("the session's close is seen", fog_e2e::DEADLINE, || async {
        let n = c.get_node("edge-1").await;
        (n.liveness != pb::Liveness::Healthy as i32).then_some(n)
    })
    .await;
    assert_eq!(gone.certificate_expires_at, None, "no session, no certificate shown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_tampered_csrs_are_refused_with_clear_errors() {
    let c = Coord::start_tls().await;
    let key = DeviceKey::new();
    let t = token(&c, "", &[]).await;
    join(&c, &t, "first", key.csr()).await.expect("first use works");
    let err = join(&c, &t, "second", key.csr()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("already used"), "{}", err.message());

    let bound = token(&c, "only-this-one", &[]).await;
    let err = join(&c, &bound, "someone-else", key.csr()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    let fresh = token(&c, "", &[]).await;
    let mut csr = key.csr();
    let last = csr.len() - 5;
    csr[last] ^= 0x55; // inside the signature
    let err = join(&c, &fresh, "tampered", csr).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("csr_der"), "{}", err.message());
    // The refused join did not spend the token.
    join(&c, &fresh, "tampered", key.csr()).await.expect("token still usable after a refused CSR");

    let err = join(&c, "FOG1nonsense", "x", key.csr()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("token"), "{}", err.message());

    // A well-formed token whose CA fingerprint is not ours: the agent would
    // refuse this coordinator, and the coordinator refuses the token.
    let other = token(&c, "", &[]).await;
    let forged = format!("FOG1{}{}", "0".repeat(64), &other[4 + 64..]);
    let err = join(&c, &forged, "x", key.csr()).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    // A wrong secret: its last character changed (to a different one, or the
    // token would stay valid whenever it ended in `0`).
    let last = if other.ends_with('0') { "1" } else { "0" };
    let err = join(&c, &format!("{}{last}", &other[..other.len() - 1]), "x", key.csr()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "a wrong secret: {err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_needs_a_certificate_and_a_node_cannot_speak_for_another() {
    let c = Coord::start_tls().await;
    // No client certificate.
    let err = RawNode::open(c.channel.clone(), hello("edge-a")).await.err().expect("refused");
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    // Node A's certificate, claiming to be B.
    let (key, cert) = joined(&c, "edge-a").await;
    let _ = joined(&c, "edge-b").await;
    let channel = c.tls_channel(Some((&cert, &key.key_pem()))).await;
    let err = RawNode::open(channel.clone(), hello("edge-b")).await.err().expect("refused");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // Its own name is fine.
    let (node, w) = RawNode::open(channel, hello("edge-a")).await.expect("own identity");
    assert_eq!(w.node_id, "edge-a");
    drop(node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_node_closes_its_session_at_once_and_refuses_its_certificate() {
    let c = Coord::start_tls().await;
    let (key, cert) = joined(&c, "doomed").await;
    let channel = c.tls_channel(Some((&cert, &key.key_pem()))).await;
    let (mut node, _) = RawNode::open(channel.clone(), hello("")).await.expect("session");
    node.heartbeat(1).await;
    c.wait_healthy(1).await;
    c.fleet().remove_node(pb::RemoveNodeRequest { node_id: "doomed".into() }).await.unwrap();
    assert!(node.ended_within(Duration::from_secs(1)).await.is_some(), "live session closed within a second");
    let err = RawNode::open(channel, hello("")).await.err().expect("reconnect refused");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("revoked"), "{}", err.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_is_renewed_over_the_live_session() {
    let c = Coord::start_tls().await;
    let (key, cert) = joined(&c, "rotator").await;
    let channel = c.tls_channel(Some((&cert, &key.key_pem()))).await;
    let (mut node, _) = RawNode::open(channel, hello("")).await.expect("session");
    node.heartbeat(1).await;
    c.wait_healthy(1).await;
    let new_key = DeviceKey::new();
    node.send(Up::RenewCertificate(pb::RenewCertificate { csr_der: new_key.csr() })).await;
    let renewed = loop {
        match node.next().await {
            Some(Down::CertificateRenewed(r)) => break r,
            Some(_) => continue,
            None => panic!("session ended during renewal"),
        }
    };
    let old_der = pem::parse(&cert).unwrap();
    let (_, old) = x509_parser::parse_x509_certificate(old_der.contents()).unwrap();
    let (_, new) = x509_parser::parse_x509_certificate(&renewed.certificate_der).unwrap();
    assert_ne!(old.raw_serial(), new.raw_serial());
    assert_eq!(old.subject().to_string(), new.subject().to_string());
    assert_eq!(
        new.public_key().raw,
        rcgen::PublicKeyData::subject_public_key_info(&new_key.key).as_slice(),
        "the new device key"
    );
    // The session survived the renewal…
    node.heartbeat(2).await;
    assert_eq!(c.get_node("rotator").await.liveness, pb::Liveness::Healthy as i32);
    // …and the new certificate opens sessions too.
    let channel = c.tls_channel(Some((&cert_pem(&renewed.certificate_der), &new_key.key_pem()))).await;
    let (_n2, w) = RawNode::open(channel, hello("")).await.expect("new certificate works");
    assert_eq!(w.node_id, "rotator");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fogctl_creates_join_tokens_over_tls_with_the_coordinators_ca() {
    let c = Coord::start_tls().await;
    let addr = c.running.as_ref().unwrap().addr;
    let ca = c.dir.path().join(fog_coordinator::server::CA_FILE);
    let out = tokio::process::Command::new(fog_e2e::process::binary("fogctl"))
        .arg("--coordinator")
        .arg(format!("https://localhost:{}", addr.port()))
        .arg("--ca-file")
        .arg(&ca)
        .args(["join-token", "create", "--name", "cli-node", "--label", "fog.io/onion-routing=true", "--ttl", "10m"])
        .env("FOG_TOKEN", &c.admin_token)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let token = stdout.trim();
    assert!(token.starts_with("FOG1"), "{token}");
    // The token works, once, for that name, and carries its admin label.
    let key = DeviceKey::new();
    let r = join(&c, token, "cli-node", key.csr()).await.expect("join with the fogctl token");
    assert_eq!(r.node_id, "cli-node");
    let n = c.get_node("cli-node").await;
    assert!(n.labels.iter().any(|l| l.key == "fog.io/onion-routing"), "{:?}", n.labels);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_supplied_ca_is_used_instead_of_a_generated_one() {
    use fog_coordinator::identity::{CertificateAuthority, TrustDomain};
    let files = tempfile::tempdir().unwrap();
    let ca =
        CertificateAuthority::generate(&TrustDomain::new("fog.local").unwrap(), std::time::SystemTime::now()).unwrap();
    let (cert_path, key_path) = (files.path().join("ca.crt"), files.path().join("ca.key"));
    std::fs::write(&cert_path, ca.cert_pem()).unwrap();
    std::fs::write(&key_path, ca.key_pem()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fog_coordinator::config::Config::for_tls_tests(dir.path().to_path_buf());
    cfg.tls.as_mut().unwrap().operator_ca = Some((cert_path, key_path));
    create_admin(dir.path()).await;
    let running = fog_coordinator::server::start(cfg).await.expect("starts with the operator's CA");
    let admin = mint_token(&running, "admin", fog_coordinator::auth::Role::Admin);
    let written = std::fs::read_to_string(dir.path().join(fog_coordinator::server::CA_FILE)).unwrap();
    assert_eq!(written, ca.cert_pem(), "the operator's CA is the one served");
    // Nodes join under it: their certificates verify against the operator's CA.
    let channel = tls_channel(running.addr, &ca.cert_pem(), None).await;
    let authed = fog_proto::auth::Bearer::new(&admin).unwrap().wrap(channel.clone());
    let token = fog_proto::v1::fleet_service_client::FleetServiceClient::new(authed)
        .create_join_token(pb::CreateJoinTokenRequest::default())
        .await
        .unwrap()
        .into_inner()
        .token;
    assert!(token.contains(&ca.fingerprint()), "the token pins the operator's CA");
    let key = DeviceKey::new();
    let r = NodeServiceClient::new(channel)
        .join(pb::JoinRequest { token, csr_der: key.csr(), node_name: "op-node".into() })
        .await
        .expect("join")
        .into_inner();
    assert_eq!(r.ca_chain_der, vec![ca.cert_der()]);
    running.stop().await;
}

/// Tokens live at least a minute, so this test waits for one to expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused() {
    let c = Coord::start_tls().await;
    let t = c
        .fleet()
        .create_join_token(pb::CreateJoinTokenRequest { ttl_seconds: 60, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let expires = std::time::UNIX_EPOCH + Duration::from_millis(fog_coordinator::convert::ms(&t.expires_at.unwrap()));
    let wait = expires.duration_since(std::time::SystemTime::now()).unwrap_or_default() + Duration::from_secs(1);
    tokio::time::sleep(wait).await; // the token's lifetime passing is the condition under test
    let err = join(&c, &t.token, "late", DeviceKey::new().csr()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("expired"), "{}", err.message());
}
