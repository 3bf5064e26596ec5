//! The negative-test matrix: every way in that must stay shut, each case its
//! own test against a running coordinator. Tokens (forged, expired, wrong
//! audience…), roles (a viewer tries every mutation, an operator every admin
//! action), credentials on the wrong service, nodes touching other nodes,
//! admin-only labels, join-token reuse, oversized and invalid messages,
//! refresh-token reuse, and floods that must not starve heartbeats.

use base64::Engine as _;
use fog_coordinator::auth::Role;
use fog_e2e::field_violations as fields;
use fog_e2e::identity::*;
use fog_e2e::raw::RawNode;
use fog_e2e::*;
use fog_proto::auth::Bearer;
use fog_proto::v1 as pb;
use fog_proto::v1::auth_service_client::AuthServiceClient;
use fog_proto::v1::fleet_service_client::FleetServiceClient;
use fog_proto::v1::node_service_client::NodeServiceClient;
use fog_proto::v1::task_service_client::TaskServiceClient;
use fog_proto::v1::topology_service_client::TopologyServiceClient;
use serde_json::{Value, json};
use std::time::Duration;
use tonic::Code;
use tonic_types::StatusExt;

fn now_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Well-formed access-token claims for `admin`, signed by the coordinator's own key after `edit`.
fn forged(c: &Coord, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let keys = c.running.as_ref().unwrap().engine.auth_view().borrow().keys.clone();
    let mut claims = serde_json::to_value(keys.claims("admin", Role::Admin, "s-forged", now_s(), 600)).unwrap();
    edit(claims.as_object_mut().unwrap());
    keys.sign_json(&claims).unwrap()
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn current_kid(c: &Coord) -> String {
    let keys = c.running.as_ref().unwrap().engine.auth_view().borrow().keys.clone();
    keys.records().iter().rfind(|k| k.retire_at_ms.is_none()).unwrap().kid.clone()
}

fn claims_json(c: &Coord) -> Value {
    let keys = c.running.as_ref().unwrap().engine.auth_view().borrow().keys.clone();
    serde_json::to_value(keys.claims("admin", Role::Admin, "s-forged", now_s(), 600)).unwrap()
}

/// Lists nodes with `token` and returns the refusal's code (panics if it was accepted).
async fn refused_with(c: &Coord, token: &str) -> tonic::Status {
    let channel = match Bearer::new(token) {
        Ok(b) => b.wrap(c.channel.clone()),
        Err(_) => panic!("token is not ASCII"),
    };
    FleetServiceClient::new(channel)
        .list_nodes(pb::ListNodesRequest::default())
        .await
        .expect_err("the coordinator must refuse this token")
}

async fn unauthenticated(c: &Coord, token: &str) {
    let s = refused_with(c, token).await;
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
}

fn denied<T: std::fmt::Debug>(r: Result<T, tonic::Status>) {
    let s = r.expect_err("the coordinator must refuse this role");
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    assert!(s.message().contains("requires role"), "{s:?}");
}

/// One test per case, each with a fresh coordinator `$c`.
macro_rules! case {
    ($name:ident, |$c:ident| $body:block) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let $c = Coord::start().await;
            $body
        }
    };
}

// ---- access tokens --------------------------------------------------------

case!(a_request_without_credentials_is_unauthenticated, |c| {
    let s = FleetServiceClient::new(c.channel.clone()).list_nodes(pb::ListNodesRequest::default()).await.unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated);
    assert!(s.message().contains("Bearer"), "{s:?}");
});

case!(a_garbage_token_is_unauthenticated, |c| {
    unauthenticated(&c, "not-a-token").await;
    unauthenticated(&c, "a.b.c").await;
});

case!(a_non_bearer_scheme_is_unauthenticated, |c| {
    let mut req = tonic::Request::new(pb::ListNodesRequest::default());
    req.metadata_mut().insert("authorization", format!("Basic {}", c.admin_token).parse().unwrap());
    let s = FleetServiceClient::new(c.channel.clone()).list_nodes(req).await.unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
});

case!(an_unsigned_alg_none_token_is_refused, |c| {
    let header = json!({"alg": "none", "typ": "JWT", "kid": current_kid(&c)});
    unauthenticated(&c, &format!("{}.{}.", b64(&header), b64(&claims_json(&c)))).await;
});

case!(an_hmac_token_keyed_with_the_public_key_is_refused, |c| {
    let keys = c.running.as_ref().unwrap().engine.auth_view().borrow().keys.clone();
    let public = base64::engine::general_purpose::STANDARD.decode(&keys.records().last().unwrap().public).unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.kid = Some(current_kid(&c));
    let key = jsonwebtoken::EncodingKey::from_secret(&public).unwrap();
    let token = jsonwebtoken::encode(&h, &claims_json(&c), &key).unwrap();
    let s = refused_with(&c, &token).await;
    assert_eq!(s.code(), Code::Unauthenticated);
    assert!(s.message().contains("algorithm"), "{s:?}");
});

case!(an_expired_token_is_refused, |c| {
    let t = forged(&c, |m| {
        m.insert("nbf".into(), json!(now_s() - 900));
        m.insert("exp".into(), json!(now_s() - 60));
    });
    assert!(refused_with(&c, &t).await.message().contains("expired"));
});

case!(a_token_not_yet_valid_is_refused, |c| {
    let t = forged(&c, |m| {
        m.insert("nbf".into(), json!(now_s() + 120));
        m.insert("exp".into(), json!(now_s() + 600));
    });
    assert!(refused_with(&c, &t).await.message().contains("not yet valid"));
});

case!(a_token_for_another_audience_is_refused, |c| {
    let t = forged(&c, |m| drop(m.insert("aud".into(), json!("some-other-api"))));
    assert!(refused_with(&c, &t).await.message().contains("audience"));
});

case!(a_token_from_another_issuer_is_refused, |c| {
    let t = forged(&c, |m| drop(m.insert("iss".into(), json!("evil-idp"))));
    assert!(refused_with(&c, &t).await.message().contains("issuer"));
});

case!(a_token_with_an_unknown_kid_is_refused, |c| {
    let t = forged(&c, |_| {});
    let (_, rest) = t.split_once('.').unwrap();
    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": "k-doesnotexist"});
    let s = refused_with(&c, &format!("{}.{rest}", b64(&header))).await;
    assert!(s.message().contains("unknown signing key"), "{s:?}");
});

case!(a_string_nbf_far_in_the_future_is_refused, |c| {
    // CVE-2026-25537: a string `nbf` must not be treated as absent.
    let t = forged(&c, |m| drop(m.insert("nbf".into(), json!("99999999999"))));
    unauthenticated(&c, &t).await;
});

case!(claims_of_the_wrong_type_are_refused, |c| {
    unauthenticated(&c, &forged(&c, |m| drop(m.insert("exp".into(), json!("never"))))).await;
    unauthenticated(&c, &forged(&c, |m| drop(m.insert("sub".into(), json!(["admin"]))))).await;
    unauthenticated(&c, &forged(&c, |m| drop(m.insert("role".into(), json!("root"))))).await;
});

case!(a_token_signed_by_another_key_under_our_kid_is_refused, |c| {
    let mut evil = fog_coordinator::auth::SigningKeyRecord::generate(0).unwrap();
    evil.kid = current_kid(&c);
    let ring = fog_coordinator::auth::KeyRing::new(vec![evil], "fogplane", "fogplane-api", 30);
    let t = ring.sign(&ring.claims("admin", Role::Admin, "s", now_s(), 600)).unwrap();
    assert!(refused_with(&c, &t).await.message().contains("signature"));
});

case!(a_tampered_payload_is_refused, |c| {
    let t = c.token_as("vera", Role::Viewer).await;
    let parts: Vec<&str> = t.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["role"] = json!("admin");
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    unauthenticated(&c, &tampered).await;
});

case!(a_deleted_users_tokens_stop_working, |c| {
    let t = c.token_as("leaver", Role::Operator).await;
    c.auth().delete_user(pb::DeleteUserRequest { username: "leaver".into() }).await.unwrap();
    let s = refused_with(&c, &t).await;
    assert_eq!(s.code(), Code::Unauthenticated);
});

case!(a_wrong_password_and_an_unknown_user_get_the_same_answer, |c| {
    let mut auth = AuthServiceClient::new(c.channel.clone());
    let wrong = auth
        .sign_in(pb::SignInRequest { username: "admin".into(), password: "not the password".into() })
        .await
        .unwrap_err();
    let unknown = auth
        .sign_in(pb::SignInRequest { username: "nobody".into(), password: "not the password".into() })
        .await
        .unwrap_err();
    assert_eq!((wrong.code(), unknown.code()), (Code::Unauthenticated, Code::Unauthenticated));
    assert_eq!(wrong.message(), unknown.message());
});

case!(repeated_sign_in_attempts_are_rate_limited_with_retry_advice, |c| {
    let mut auth = AuthServiceClient::new(c.channel.clone());
    let mut limited = None;
    for _ in 0..40 {
        let r =
            auth.sign_in(pb::SignInRequest { username: "admin".into(), password: "guess-guess-guess".into() }).await;
        if let Err(s) = r
            && s.code() == Code::ResourceExhausted
        {
            limited = Some(s);
            break;
        }
    }
    let s = limited.expect("guessing is limited");
    assert!(s.get_details_retry_info().and_then(|r| r.retry_delay).is_some(), "RetryInfo: {s:?}");
});

// ---- refresh tokens and sessions ------------------------------------------

case!(refresh_token_reuse_revokes_the_whole_session, |c| {
    let signed_in = c.sign_in_as("rita", Role::Operator).await.tokens.unwrap();
    let mut auth = AuthServiceClient::new(c.channel.clone());
    let first = signed_in.refresh_token.clone();
    let next = auth.refresh(pb::RefreshRequest { refresh_token: first.clone() }).await.unwrap().into_inner();
    let next = next.tokens.unwrap();
    // The new access token works…
    FleetServiceClient::new(c.with_token(&next.access_token))
        .list_nodes(pb::ListNodesRequest::default())
        .await
        .expect("rotated token works");
    // …until someone replays the spent refresh token.
    let s = auth.refresh(pb::RefreshRequest { refresh_token: first }).await.unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated);
    assert!(s.message().contains("already used"), "{s:?}");
    let s = auth.refresh(pb::RefreshRequest { refresh_token: next.refresh_token }).await.unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated, "the newest refresh token of the family is revoked too");
    eventually("the family's access tokens are revoked", DEADLINE, || async {
        FleetServiceClient::new(c.with_token(&next.access_token))
            .list_nodes(pb::ListNodesRequest::default())
            .await
            .is_err()
            .then_some(())
    })
    .await;
    unauthenticated(&c, &signed_in.access_token).await;
});

case!(a_signed_out_sessions_access_token_is_refused, |c| {
    let t = c.sign_in_as("sam", Role::Viewer).await.tokens.unwrap();
    AuthServiceClient::new(c.channel.clone())
        .sign_out(pb::SignOutRequest { refresh_token: t.refresh_token.clone() })
        .await
        .unwrap();
    unauthenticated(&c, &t.access_token).await;
    let s = AuthServiceClient::new(c.channel.clone())
        .refresh(pb::RefreshRequest { refresh_token: t.refresh_token })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated);
});

case!(a_revoked_api_token_is_refused_at_once, |c| {
    let created = c
        .auth()
        .create_api_token(pb::CreateApiTokenRequest { name: "ci".into(), role: pb::Role::Operator as i32, ttl: None })
        .await
        .unwrap()
        .into_inner();
    let secret = created.secret;
    FleetServiceClient::new(c.with_token(&secret)).list_nodes(pb::ListNodesRequest::default()).await.unwrap();
    c.auth().revoke_api_token(pb::RevokeApiTokenRequest { id: created.token.unwrap().id }).await.unwrap();
    unauthenticated(&c, &secret).await;
    // A guessed secret for a real id is refused too.
    unauthenticated(&c, &format!("{}0", &secret[..secret.len() - 1])).await;
});

// ---- a viewer tries every mutation ----------------------------------------

async fn viewer(c: &Coord) -> fog_proto::auth::Authed {
    let t = c.token_as("vic", Role::Viewer).await;
    c.with_token(&t)
}

case!(viewer_cannot_submit_a_task, |c| {
    denied(
        TaskServiceClient::new(viewer(&c).await)
            .submit_task(pb::SubmitTaskRequest { spec: Some(echo("x")), request_id: String::new() })
            .await,
    );
    let listed = c.tasks().list_tasks(pb::ListTasksRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.total_matching, 0, "nothing was submitted");
});

case!(viewer_cannot_cancel_a_task, |c| {
    let t = c.submit(sleep(60_000)).await;
    denied(
        TaskServiceClient::new(viewer(&c).await)
            .cancel_task(pb::CancelTaskRequest { task_id: t.id.clone(), reason: String::new() })
            .await,
    );
    assert_ne!(c.task(&t.id).await.state, pb::TaskState::Cancelled as i32);
});

case!(viewer_cannot_cordon_a_node, |c| {
    denied(FleetServiceClient::new(viewer(&c).await).cordon_node(pb::CordonNodeRequest { node_id: "n1".into() }).await);
});

case!(viewer_cannot_uncordon_a_node, |c| {
    denied(
        FleetServiceClient::new(viewer(&c).await).uncordon_node(pb::UncordonNodeRequest { node_id: "n1".into() }).await,
    );
});

case!(viewer_cannot_drain_a_node, |c| {
    denied(FleetServiceClient::new(viewer(&c).await).drain_node(pb::DrainNodeRequest { node_id: "n1".into() }).await);
});

case!(viewer_cannot_set_maintenance, |c| {
    denied(
        FleetServiceClient::new(viewer(&c).await)
            .set_maintenance(pb::SetMaintenanceRequest { node_id: "n1".into(), maintenance: true })
            .await,
    );
});

case!(viewer_cannot_remove_a_node, |c| {
    let _n = c.node(spec("keep-me", 1000));
    c.wait_healthy(1).await;
    denied(
        FleetServiceClient::new(viewer(&c).await)
            .remove_node(pb::RemoveNodeRequest { node_id: "keep-me".into() })
            .await,
    );
    c.get_node("keep-me").await;
});

case!(viewer_cannot_change_labels, |c| {
    denied(
        FleetServiceClient::new(viewer(&c).await)
            .update_node_labels(pb::UpdateNodeLabelsRequest {
                node_id: "n1".into(),
                set: vec![pb::Label { key: "fog.io/attested".into(), value: "true".into() }],
                remove: vec![],
            })
            .await,
    );
});

case!(viewer_cannot_create_a_join_token, |c| {
    denied(FleetServiceClient::new(viewer(&c).await).create_join_token(pb::CreateJoinTokenRequest::default()).await);
});

case!(viewer_cannot_create_users, |c| {
    denied(
        AuthServiceClient::new(viewer(&c).await)
            .create_user(pb::CreateUserRequest {
                username: "mallory".into(),
                password: "long-enough-password".into(),
                role: pb::Role::Admin as i32,
            })
            .await,
    );
});

case!(viewer_cannot_list_or_delete_users, |c| {
    let v = viewer(&c).await;
    denied(AuthServiceClient::new(v.clone()).list_users(pb::ListUsersRequest {}).await);
    denied(AuthServiceClient::new(v).delete_user(pb::DeleteUserRequest { username: "admin".into() }).await);
});

case!(viewer_cannot_create_or_list_api_tokens, |c| {
    let v = viewer(&c).await;
    denied(
        AuthServiceClient::new(v.clone())
            .create_api_token(pb::CreateApiTokenRequest { name: "x".into(), role: pb::Role::Admin as i32, ttl: None })
            .await,
    );
    denied(AuthServiceClient::new(v).list_api_tokens(pb::ListApiTokensRequest {}).await);
});

case!(viewer_cannot_revoke_api_tokens_or_rotate_keys, |c| {
    let v = viewer(&c).await;
    denied(
        AuthServiceClient::new(v.clone())
            .revoke_api_token(pb::RevokeApiTokenRequest { id: "0123456789abcdef".into() })
            .await,
    );
    denied(AuthServiceClient::new(v).rotate_signing_key(pb::RotateSigningKeyRequest {}).await);
});

case!(viewer_can_read_and_watch, |c| {
    // The other side of the matrix: what a viewer may do works.
    let v = viewer(&c).await;
    FleetServiceClient::new(v.clone()).list_nodes(pb::ListNodesRequest::default()).await.unwrap();
    TopologyServiceClient::new(v.clone()).get_topology(pb::GetTopologyRequest::default()).await.unwrap();
    let me = AuthServiceClient::new(v).who_am_i(pb::WhoAmIRequest {}).await.unwrap().into_inner();
    assert_eq!((me.subject.as_str(), me.role), ("vic", pb::Role::Viewer as i32));
});

// ---- an operator tries admin actions ---------------------------------------

async fn operator(c: &Coord) -> fog_proto::auth::Authed {
    let t = c.token_as("olga", Role::Operator).await;
    c.with_token(&t)
}

case!(operator_cannot_remove_nodes_or_set_labels, |c| {
    let o = operator(&c).await;
    denied(FleetServiceClient::new(o.clone()).remove_node(pb::RemoveNodeRequest { node_id: "n1".into() }).await);
    denied(
        FleetServiceClient::new(o)
            .update_node_labels(pb::UpdateNodeLabelsRequest {
                node_id: "n1".into(),
                set: vec![pb::Label { key: "fog.io/operator-owned".into(), value: "true".into() }],
                remove: vec![],
            })
            .await,
    );
});

case!(operator_cannot_create_join_tokens, |c| {
    denied(FleetServiceClient::new(operator(&c).await).create_join_token(pb::CreateJoinTokenRequest::default()).await);
});

case!(operator_cannot_manage_users_tokens_or_keys, |c| {
    let o = operator(&c).await;
    denied(
        AuthServiceClient::new(o.clone())
            .create_user(pb::CreateUserRequest {
                username: "x".into(),
                password: "long-enough-password".into(),
                role: pb::Role::Admin as i32,
            })
            .await,
    );
    denied(
        AuthServiceClient::new(o.clone())
            .create_api_token(pb::CreateApiTokenRequest { name: "x".into(), role: pb::Role::Admin as i32, ttl: None })
            .await,
    );
    denied(AuthServiceClient::new(o).rotate_signing_key(pb::RotateSigningKeyRequest {}).await);
});

case!(an_api_token_cannot_do_more_than_its_role, |c| {
    let created = c
        .auth()
        .create_api_token(pb::CreateApiTokenRequest { name: "ro".into(), role: pb::Role::Viewer as i32, ttl: None })
        .await
        .unwrap()
        .into_inner();
    denied(
        TaskServiceClient::new(c.with_token(&created.secret))
            .submit_task(pb::SubmitTaskRequest { spec: Some(echo("x")), request_id: String::new() })
            .await,
    );
});

case!(a_token_claiming_a_higher_role_than_the_user_has_gets_the_users_role, |c| {
    c.token_as("pete", Role::Viewer).await;
    let t = forged(&c, |m| {
        m.insert("sub".into(), json!("pete"));
        m.insert("role".into(), json!("admin"));
    });
    denied(FleetServiceClient::new(c.with_token(&t)).create_join_token(pb::CreateJoinTokenRequest::default()).await);
});

// ---- credentials on the wrong service --------------------------------------

case!(a_user_token_is_refused_on_the_node_session, |c| {
    let (_tx, rx) = tokio::sync::mpsc::channel::<pb::SessionRequest>(1);
    let s =
        NodeServiceClient::new(c.admin()).session(tokio_stream::wrappers::ReceiverStream::new(rx)).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    assert!(s.message().contains("not valid on NodeService"), "{s:?}");
});

case!(a_user_token_is_refused_on_join, |c| {
    let s = NodeServiceClient::new(c.admin())
        .join(pb::JoinRequest { token: "x".into(), csr_der: vec![1], node_name: String::new() })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_certificate_is_refused_on_user_services_even_with_a_token() {
    let c = Coord::start_tls().await;
    let (key, cert) = joined(&c, "edge-x").await;
    let channel = c.tls_channel(Some((&cert, &key.key_pem()))).await;
    let s = FleetServiceClient::new(channel.clone()).list_nodes(pb::ListNodesRequest::default()).await.unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    assert!(s.message().contains("node certificates are valid only on NodeService"), "{s:?}");
    let with_token = Bearer::new(&c.admin_token).unwrap().wrap(channel);
    let s = TaskServiceClient::new(with_token)
        .submit_task(pb::SubmitTaskRequest { spec: Some(echo("x")), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
}

// ---- nodes and their own state ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cannot_open_a_session_as_another_node() {
    let c = Coord::start_tls().await;
    let (key, cert) = joined(&c, "edge-a").await;
    let _ = joined(&c, "edge-b").await;
    let channel = c.tls_channel(Some((&cert, &key.key_pem()))).await;
    let s = RawNode::open(channel, hello("edge-b")).await.err().expect("refused");
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
}

case!(a_node_cannot_report_the_result_of_another_nodes_attempt, |c| {
    let (mut b, _) = RawNode::connect(c.channel.clone(), "node-b", 1000, vec![]).await;
    let (mut a, _) = RawNode::connect(c.channel.clone(), "node-a", 0, vec![]).await;
    let t = c.submit(sleep(60_000)).await;
    let assignment = b.next_assignment().await;
    assert_eq!(assignment.attempt.as_ref().unwrap().task_id, t.id);
    let attempt = assignment.attempt.unwrap().attempt;
    a.result(&t.id, attempt, pb::AttemptOutcome::Succeeded, "forged").await;
    let ack = a.next_ack().await;
    assert!(!ack.accepted, "node A's result for node B's attempt is not accepted");
    let task = c.task(&t.id).await;
    assert_eq!(task.state, pb::TaskState::Assigned as i32, "B's task is untouched: {task:?}");
    assert_eq!(task.accepted_attempt, 0, "{task:?}");
    // B's own result still counts.
    b.result(&t.id, attempt, pb::AttemptOutcome::Succeeded, "real").await;
    assert!(b.next_ack().await.accepted);
    c.wait_state(&t.id, pb::TaskState::Succeeded).await;
});

case!(a_node_cannot_promote_itself_with_admin_labels, |c| {
    for key in ["fog.io/attested", "fog.io/operator-owned", "fog.io/onion-routing", "fog.io/region", "fog.io/trust"] {
        let mut h = hello("climber");
        h.labels = vec![pb::Label { key: key.into(), value: "true".into() }];
        let s = RawNode::open(c.channel.clone(), h).await.err().expect("refused");
        assert_eq!(s.code(), Code::InvalidArgument, "{key}: {s:?}");
        assert!(
            s.get_details_bad_request()
                .is_some_and(|b| b.field_violations.iter().any(|v| v.field.starts_with("hello.labels"))),
            "{key}: {s:?}"
        );
    }
    assert!(c.fleet().get_node(pb::GetNodeRequest { node_id: "climber".into() }).await.is_err(), "never registered");
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_token_works_once() {
    let c = Coord::start_tls().await;
    let t = token(&c, "", &[]).await;
    join(&c, &t, "first", DeviceKey::new().csr()).await.expect("first use");
    let s = join(&c, &t, "second", DeviceKey::new().csr()).await.unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
}

// ---- malformed and oversized input -------------------------------------------

case!(an_oversized_task_submission_is_refused_and_the_coordinator_lives_on, |c| {
    let mut spec = echo("x");
    spec.name = "n".repeat(300 * 1024);
    let s =
        c.tasks().submit_task(pb::SubmitTaskRequest { spec: Some(spec), request_id: String::new() }).await.unwrap_err();
    assert!(matches!(s.code(), Code::OutOfRange | Code::ResourceExhausted | Code::InvalidArgument), "{s:?}");
    c.tasks().list_tasks(pb::ListTasksRequest::default()).await.expect("still serving");
});

case!(an_oversized_sign_in_is_refused, |c| {
    let s = AuthServiceClient::new(c.channel.clone())
        .sign_in(pb::SignInRequest { username: "admin".into(), password: "p".repeat(20 * 1024) })
        .await
        .unwrap_err();
    assert!(matches!(s.code(), Code::OutOfRange | Code::ResourceExhausted), "{s:?}");
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_fields_are_named_on_every_service() {
    // mTLS, so that Join validates rather than saying joins are off.
    let c = Coord::start_tls().await;
    let s = c.fleet().get_node(pb::GetNodeRequest { node_id: "NOT OK".into() }).await.unwrap_err();
    assert!(fields(&s).contains(&"node_id".to_string()), "fleet: {s:?}");
    let mut bad = echo("x");
    bad.sla_tier = 99;
    let s =
        c.tasks().submit_task(pb::SubmitTaskRequest { spec: Some(bad), request_id: String::new() }).await.unwrap_err();
    assert!(fields(&s).iter().any(|f| f == "spec.sla_tier"), "task: {s:?}");
    let s =
        c.topology().watch_topology(pb::WatchTopologyRequest { detail: 42, ..Default::default() }).await.unwrap_err();
    assert!(fields(&s).iter().any(|f| f == "detail"), "topology: {s:?}");
    let s = c
        .auth()
        .create_user(pb::CreateUserRequest { username: "Bad Name".into(), password: "short".into(), role: 0 })
        .await
        .unwrap_err();
    let f = fields(&s);
    assert!(["username", "password", "role"].iter().all(|x| f.contains(&x.to_string())), "auth: {f:?}");
    let s = NodeServiceClient::new(c.channel.clone())
        .join(pb::JoinRequest { token: "nope".into(), csr_der: vec![], node_name: String::new() })
        .await
        .unwrap_err();
    let f = fields(&s);
    assert!(f.contains(&"token".to_string()) && f.contains(&"csr_der".to_string()), "node: {f:?}");
}

case!(a_bad_message_mid_session_ends_it_with_the_field_named, |c| {
    let (mut n, _) = RawNode::connect(c.channel.clone(), "sloppy", 1000, vec![]).await;
    n.send(fog_proto::v1::session_request::Msg::TaskResult(pb::TaskResult { attempt: None, ..Default::default() }))
        .await;
    let s = n.ended_with_status(Duration::from_secs(5)).await.expect("the session ends with a status");
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("task_result.attempt"), "{s:?}");
});

// ---- watches end with their credential ------------------------------------------

/// Waits for a watch stream to end with an error status.
async fn ends_with<T>(stream: &mut tonic::Streaming<T>) -> tonic::Status {
    tokio::time::timeout(DEADLINE, async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without a status"),
                Err(s) => return s,
            }
        }
    })
    .await
    .expect("the watch ends")
}

case!(a_watch_ends_when_its_api_token_is_revoked, |c| {
    let created = c
        .auth()
        .create_api_token(pb::CreateApiTokenRequest { name: "dash".into(), role: pb::Role::Viewer as i32, ttl: None })
        .await
        .unwrap()
        .into_inner();
    let mut stream = TopologyServiceClient::new(c.with_token(&created.secret))
        .watch_topology(pb::WatchTopologyRequest::default())
        .await
        .unwrap()
        .into_inner();
    stream.message().await.unwrap().expect("the snapshot starts");
    c.auth().revoke_api_token(pb::RevokeApiTokenRequest { id: created.token.unwrap().id }).await.unwrap();
    assert_eq!(ends_with(&mut stream).await.code(), Code::Unauthenticated);
});

case!(a_watch_ends_when_its_session_is_signed_out, |c| {
    let t = c.sign_in_as("wanda", Role::Viewer).await.tokens.unwrap();
    let mut stream = TaskServiceClient::new(c.with_token(&t.access_token))
        .watch_tasks(pb::WatchTasksRequest::default())
        .await
        .unwrap()
        .into_inner();
    AuthServiceClient::new(c.channel.clone())
        .sign_out(pb::SignOutRequest { refresh_token: t.refresh_token })
        .await
        .unwrap();
    let s = ends_with(&mut stream).await;
    assert_eq!(s.code(), Code::Unauthenticated);
    assert!(s.message().contains("session ended"), "{s:?}");
});

case!(a_watch_ends_when_its_user_is_deleted, |c| {
    let t = c.token_as("temp", Role::Operator).await;
    let mut stream = TopologyServiceClient::new(c.with_token(&t))
        .watch_topology(pb::WatchTopologyRequest::default())
        .await
        .unwrap()
        .into_inner();
    c.auth().delete_user(pb::DeleteUserRequest { username: "temp".into() }).await.unwrap();
    assert_eq!(ends_with(&mut stream).await.code(), Code::Unauthenticated);
});

// ---- floods -------------------------------------------------------------------

/// A channel to the coordinator from a given loopback address (each client
/// its own address, as in the field: the per-address budget is shared by
/// everyone behind one address).
async fn from(c: &Coord, ip: &str) -> tonic::transport::Channel {
    let url = format!("http://{}", c.running.as_ref().unwrap().addr);
    let ip: std::net::IpAddr = ip.parse().unwrap();
    tonic::transport::Endpoint::from_shared(url).unwrap().local_address(Some(ip)).connect().await.unwrap()
}

case!(unauthenticated_streams_per_address_are_capped, |c| {
    let channel = from(&c, "127.0.0.5").await;
    let mut held = Vec::new();
    let mut refused = None;
    for _ in 0..40 {
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        match health.watch(tonic_health::pb::HealthCheckRequest { service: String::new() }).await {
            Ok(s) => held.push(s),
            Err(s) => {
                refused = Some(s);
                break;
            }
        }
    }
    assert_eq!(refused.expect("open health watches are capped").code(), Code::ResourceExhausted);
    // Another address is unaffected.
    let mut other = tonic_health::pb::health_client::HealthClient::new(from(&c, "127.0.0.6").await);
    other.watch(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.expect("another address");
});

case!(a_sign_in_flood_from_one_address_does_not_lock_the_user_out_elsewhere, |c| {
    let mut attacker = AuthServiceClient::new(from(&c, "127.0.0.7").await);
    let mut limited = false;
    for _ in 0..40 {
        let r = attacker
            .sign_in(pb::SignInRequest { username: "admin".into(), password: "guess-guess-guess".into() })
            .await;
        if r.is_err_and(|s| s.code() == Code::ResourceExhausted) {
            limited = true;
            break;
        }
    }
    assert!(limited);
    AuthServiceClient::new(from(&c, "127.0.0.8").await)
        .sign_in(pb::SignInRequest { username: "admin".into(), password: ADMIN_PASSWORD.into() })
        .await
        .expect("the real admin signs in from elsewhere");
});

case!(a_node_flooding_its_session_cannot_stall_others_or_the_api, |c| {
    let _nodes = c.nodes("calm", 20, 1000);
    c.wait_healthy(20).await;
    let (mut flooder, _) = RawNode::connect(c.channel.clone(), "noisy", 1000, vec![]).await;
    let stop = std::time::Instant::now() + Duration::from_secs(4);
    let tx = flooder.sender();
    let flood = tokio::spawn(async move {
        let mut sent = 0u64;
        while std::time::Instant::now() < stop {
            let hb = pb::Heartbeat { sequence: sent, battery_percent: -1, ..Default::default() };
            let msg = pb::SessionRequest { msg: Some(fog_proto::v1::session_request::Msg::Heartbeat(hb)) };
            if tx.send(msg).await.is_err() {
                break;
            }
            sent += 1;
        }
        sent
    });
    // During the flood the API answers and no calm node goes unhealthy
    // (test cadence: heartbeat 100 ms, suspect after 200 ms of silence).
    while std::time::Instant::now() < stop {
        let nodes = tokio::time::timeout(
            Duration::from_secs(2),
            c.fleet().list_nodes(pb::ListNodesRequest { page_size: 100, ..Default::default() }),
        )
        .await
        .expect("the API answers during a node flood")
        .unwrap()
        .into_inner();
        let sick: Vec<_> = nodes
            .nodes
            .iter()
            .filter(|n| n.id.starts_with("calm") && n.liveness != pb::Liveness::Healthy as i32)
            .map(|n| n.id.clone())
            .collect();
        assert!(sick.is_empty(), "calm nodes went unhealthy during the flood: {sick:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent = flood.await.unwrap();
    assert!(sent > 1000, "the flood really flooded: {sent} heartbeats");
    let s = flooder.ended_with_status(Duration::from_secs(5)).await.expect("the flooding session was closed");
    assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
});

// ---- floods (users) -------------------------------------------------------------

case!(too_many_watches_from_one_identity_are_refused, |c| {
    let mut held = Vec::new();
    let mut refused = None;
    for _ in 0..40 {
        match c.topology().watch_topology(pb::WatchTopologyRequest::default()).await {
            Ok(stream) => held.push(stream),
            Err(s) => {
                refused = Some(s);
                break;
            }
        }
    }
    let s = refused.expect("watch opens are limited");
    assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
    assert!(s.get_details_retry_info().is_some(), "{s:?}");
    assert!(held.len() <= 16, "at most 16 held: {}", held.len());
});

/// A user floods the API while 1,000 simulated nodes heartbeat at the
/// production cadence (1 s; suspect after 2 s of silence): the flood is
/// limited with retry advice, another user at another address is served
/// throughout, and no node is ever marked suspect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_user_never_starves_node_heartbeats() {
    // A read budget of 20/s, so that the flood exceeds it however busy the machine is.
    const READ_RPS: u32 = 20;
    let c = Coord::start_with(|cfg| {
        cfg.liveness.heartbeat_interval_ms = 1000;
        cfg.liveness.suspect_after_ms = 2000;
        cfg.liveness.offline_grace_ms = 3000;
        cfg.auth.limits.read_rps = READ_RPS;
    })
    .await;
    let n = 1000;
    let _nodes: Vec<_> = (0..n)
        .map(|i| fogctl::sim::spawn_node(c.channel.clone(), spec(&format!("hb-{i}"), 1000), fast_sim()))
        .collect();
    let watcher_token = c.token_as("watcher", Role::Viewer).await;
    let watcher = Bearer::new(&watcher_token).unwrap().wrap(from(&c, "127.0.0.2").await);
    let count_healthy = |w: fog_proto::auth::Authed| async move {
        let mut fleet = FleetServiceClient::new(w);
        let mut healthy = 0;
        let mut unhealthy = Vec::new();
        let mut page = String::new();
        loop {
            let r = fleet
                .list_nodes(pb::ListNodesRequest { page_size: 1000, page_token: page, ..Default::default() })
                .await
                .ok()?
                .into_inner();
            for node in &r.nodes {
                if node.liveness == pb::Liveness::Healthy as i32 {
                    healthy += 1;
                } else {
                    unhealthy.push((node.id.clone(), node.liveness));
                }
            }
            if r.next_page_token.is_empty() {
                break;
            }
            page = r.next_page_token;
        }
        Some((healthy, unhealthy))
    };
    eventually("1000 healthy nodes", Duration::from_secs(60), || {
        let w = watcher.clone();
        async move { count_healthy(w).await.and_then(|(h, _)| (h >= n).then_some(())) }
    })
    .await;

    // The flood: 8 concurrent loops of reads as one user, for 6 s.
    let flooder_token = c.token_as("flooder", Role::Viewer).await;
    let flooder = Bearer::new(&flooder_token).unwrap().wrap(from(&c, "127.0.0.3").await);
    let stop = std::time::Instant::now() + Duration::from_secs(6);
    let floods: Vec<_> = (0..8)
        .map(|_| {
            let f = flooder.clone();
            tokio::spawn(async move {
                let (mut ok, mut limited, mut retry_info) = (0u32, 0u32, 0u32);
                let mut fleet = FleetServiceClient::new(f);
                while std::time::Instant::now() < stop {
                    match fleet.list_nodes(pb::ListNodesRequest { page_size: 100, ..Default::default() }).await {
                        Ok(_) => ok += 1,
                        Err(s) if s.code() == Code::ResourceExhausted => {
                            limited += 1;
                            retry_info += u32::from(s.get_details_retry_info().is_some());
                        }
                        Err(s) => panic!("unexpected {s:?}"),
                    }
                }
                (ok, limited, retry_info)
            })
        })
        .collect();
    // Meanwhile, another identity is served and every node stays healthy.
    let mut polls = 0;
    while std::time::Instant::now() < stop + Duration::from_secs(2) {
        let (healthy, unhealthy) =
            count_healthy(watcher.clone()).await.expect("another identity is served during the flood");
        assert!(
            unhealthy.is_empty(),
            "nodes marked unhealthy during the flood: {:?}",
            &unhealthy[..unhealthy.len().min(10)]
        );
        assert_eq!(healthy, n);
        polls += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (mut ok, mut limited, mut retry_info) = (0, 0, 0);
    for f in floods {
        let (o, l, r) = f.await.unwrap();
        ok += o;
        limited += l;
        retry_info += r;
    }
    assert!(limited > 0, "the flood was limited ({ok} served)");
    assert_eq!(retry_info, limited, "every refusal carries RetryInfo");
    // 6 s of the flood plus a little slack, and the burst (2x the rate).
    assert!(ok <= READ_RPS * 8 + 2 * READ_RPS, "served at most the identity's budget: {ok}");
    assert!(polls >= 8, "the watcher kept being served: {polls} polls");
    let flapping = c
        .fleet()
        .list_nodes(pb::ListNodesRequest { page_size: 1000, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(flapping.nodes.iter().all(|n| !n.flapping));
}
