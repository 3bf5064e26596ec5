//! Task lifecycle end to end: a coordinator over real gRPC on 127.0.0.1 and
//! simulated nodes speaking the real session protocol.

use fog_e2e::raw::RawNode;
use fog_e2e::*;
use fog_proto::v1 as pb;
use std::collections::BTreeSet;

fn tier(mut s: pb::TaskSpec, t: pb::SlaTier, replicas: u32) -> pb::TaskSpec {
    s.sla_tier = t as i32;
    s.replicas = replicas;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_runs_to_success_with_its_output() {
    let c = Coord::start().await;
    let _nodes = c.nodes("n", 3, 2000);
    c.wait_healthy(3).await;
    let t = c.submit(echo("hello fog")).await;
    // The reply comes once the task is durable; it may already be placed.
    assert!([pb::TaskState::Queued as i32, pb::TaskState::Assigned as i32].contains(&t.state), "{t:?}");
    let done = c.wait_state(&t.id, pb::TaskState::Succeeded).await;
    assert_eq!(done.output.unwrap().stdout, b"hello fog");
    assert_eq!(done.accepted_attempt, 1);
    assert_eq!(done.attempts.len(), 1);
    assert!(done.placed_at.is_some() && done.finished_at.is_some());
    assert_eq!(done.sla_met, Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_task_is_retried_then_fails() {
    let c = Coord::start().await;
    let _nodes = c.nodes("n", 2, 2000);
    c.wait_healthy(2).await;
    let mut spec = fail("boom");
    spec.max_retries = Some(2);
    let t = c.submit(spec).await;
    let done = c.wait_state(&t.id, pb::TaskState::Failed).await;
    assert_eq!(done.attempts.len(), 3, "first try + 2 retries");
    assert_eq!(done.retries_used, 2);
    let numbers: Vec<u64> = done.attempts.iter().map(|a| a.attempt).collect();
    assert_eq!(numbers, [1, 2, 3], "every attempt has a new fencing token");
    assert!(done.attempts.iter().all(|a| a.state == pb::AttemptState::Failed as i32));
    assert!(done.error.contains("boom"), "{}", done.error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_running_task_on_its_node() {
    let c = Coord::start().await;
    let nodes = c.nodes("n", 1, 2000);
    c.wait_healthy(1).await;
    let t = c.submit(sleep(60_000)).await;
    c.wait_state(&t.id, pb::TaskState::Running).await;
    let r = c
        .tasks()
        .cancel_task(pb::CancelTaskRequest { task_id: t.id.clone(), reason: "no longer needed".into() })
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    assert_eq!(r.state, pb::TaskState::Cancelled as i32);
    assert_eq!(r.error, "no longer needed");
    eventually("the node got the cancellation and stopped", DEADLINE, || async {
        let s = nodes[0].stats();
        (s.cancellations_received == 1 && s.running == 0).then_some(())
    })
    .await;
    // The node is free again.
    let n = c.get_node("n-0").await;
    assert_eq!(n.active_tasks, 0);
    // Cancelling again is refused with a clear error.
    let err = c.tasks().cancel_task(pb::CancelTaskRequest { task_id: t.id, reason: String::new() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_overruns_its_timeout_fails() {
    let c = Coord::start().await;
    let _nodes = c.nodes("n", 1, 2000);
    c.wait_healthy(1).await;
    let mut spec = sleep(30_000);
    spec.timeout_ms = 300;
    spec.max_retries = Some(0);
    let t = c.submit(spec).await;
    let done = c.wait_state(&t.id, pb::TaskState::Failed).await;
    assert_eq!(done.attempts[0].state, pb::AttemptState::TimedOut as i32);
    assert_eq!(c.get_node("n-0").await.active_tasks, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn higher_tiers_go_first_when_capacity_is_short() {
    let c = Coord::start().await;
    let _nodes = c.nodes("n", 1, 1000);
    c.wait_healthy(1).await;
    let full = |mut s: pb::TaskSpec| {
        s.resources = Some(pb::Resources { cpu_millis: 1000, memory_mb: 64, ..Default::default() });
        s
    };
    let blocker = c.submit(full(sleep(600))).await;
    c.wait_state(&blocker.id, pb::TaskState::Running).await;
    let bronze = c.submit(tier(full(sleep(50)), pb::SlaTier::Bronze, 1)).await;
    let gold = c.submit(tier(full(sleep(50)), pb::SlaTier::Gold, 1)).await;
    let g = c.wait_state(&gold.id, pb::TaskState::Succeeded).await;
    let b = c.wait_state(&bronze.id, pb::TaskState::Succeeded).await;
    let placed = |t: &pb::Task| fog_coordinator::convert::ms(t.placed_at.as_ref().unwrap());
    assert!(
        placed(&g) < placed(&b),
        "gold was submitted after bronze but must be placed first ({} vs {})",
        placed(&g),
        placed(&b)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_run_on_distinct_nodes_and_the_first_success_wins() {
    let c = Coord::start().await;
    let _nodes = c.nodes("n", 4, 2000);
    c.wait_healthy(4).await;
    let t = c.submit(tier(echo("r"), pb::SlaTier::Gold, 0)).await;
    let done = c.wait_state(&t.id, pb::TaskState::Succeeded).await;
    assert_eq!(done.attempts.len(), 3, "gold runs 3 replicas by default");
    let nodes: BTreeSet<&str> = done.attempts.iter().map(|a| a.node_id.as_str()).collect();
    assert_eq!(nodes.len(), 3, "on distinct nodes");
    let winners = done.attempts.iter().filter(|a| a.state == pb::AttemptState::Succeeded as i32).count();
    assert_eq!(winners, 1, "exactly one accepted result: {:?}", done.attempts);
    let accepted = done.attempts.iter().find(|a| a.attempt == done.accepted_attempt).unwrap();
    assert_eq!(accepted.state, pb::AttemptState::Succeeded as i32);
    for a in done.attempts.iter().filter(|a| a.attempt != done.accepted_attempt) {
        assert_eq!(a.state, pb::AttemptState::Cancelled as i32, "losers are cancelled");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_from_a_stale_attempt_are_recorded_but_not_accepted() {
    let c = Coord::start().await;
    let (mut node, _) = RawNode::connect(c.channel.clone(), "raw-1", 2000, vec![]).await;
    c.wait_healthy(1).await;
    let t = c.submit(echo("x")).await;
    let a = node.next_assignment().await;
    let attempt = a.attempt.unwrap();
    assert_eq!(attempt.task_id, t.id);
    // A result under another fencing token: acknowledged as not accepted.
    node.result(&t.id, attempt.attempt + 7, pb::AttemptOutcome::Succeeded, "forged").await;
    let ack = node.next_ack().await;
    assert!(!ack.accepted);
    assert_ne!(c.task(&t.id).await.state, pb::TaskState::Succeeded as i32);
    // The real attempt's result is accepted.
    node.result(&t.id, attempt.attempt, pb::AttemptOutcome::Succeeded, "real").await;
    let ack = node.next_ack().await;
    assert!(ack.accepted);
    let done = c.wait_state(&t.id, pb::TaskState::Succeeded).await;
    assert_eq!(done.output.unwrap().stdout, b"real");
    // Sending it again (a lost ack) is acknowledged again and changes nothing.
    node.result(&t.id, attempt.attempt, pb::AttemptOutcome::Succeeded, "again").await;
    assert!(node.next_ack().await.accepted);
    assert_eq!(c.task(&t.id).await.output.unwrap().stdout, b"real");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_tasks_are_placed_when_capacity_appears_and_nodes_run_several_at_once() {
    let c = Coord::start().await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(c.submit(sleep(200)).await.id);
    }
    // No nodes yet: everything waits.
    assert!(c.task(&ids[0]).await.state == pb::TaskState::Queued as i32);
    let _nodes = c.nodes("late", 1, 1000);
    // One node with 1000m takes up to ten 100m tasks at once.
    eventually("several tasks running on one node at once", DEADLINE, || async {
        let n = c.fleet().get_node(pb::GetNodeRequest { node_id: "late-0".into() }).await.ok()?.into_inner();
        (n.node?.active_tasks >= 2).then_some(())
    })
    .await;
    for id in &ids {
        c.wait_state(id, pb::TaskState::Succeeded).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_submit_with_the_same_request_id_returns_the_same_task() {
    let c = Coord::start().await;
    let req = pb::SubmitTaskRequest { spec: Some(echo("once")), request_id: "req-42".into() };
    let a = c.tasks().submit_task(req.clone()).await.unwrap().into_inner().task.unwrap();
    let b = c.tasks().submit_task(req).await.unwrap().into_inner().task.unwrap();
    assert_eq!(a.id, b.id);
    let all = c.tasks().list_tasks(pb::ListTasksRequest::default()).await.unwrap().into_inner();
    assert_eq!(all.total_matching, 1);
}

/// Labels an operator sets stay when the agent says hello again (after a
/// reconnect, and after a coordinator restart); the agent's own labels are
/// refreshed from its hello, and an operator's value wins over the agent's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_labels_survive_the_agents_next_hello() {
    let mut c = Coord::start_kept(|_| {}).await;
    let mut s = spec("lab-1", 1000);
    s.labels = vec![("team".into(), "a".into()), ("site".into(), "reported".into())];
    let node = c.node(s);
    c.wait_healthy(1).await;
    c.fleet()
        .update_node_labels(pb::UpdateNodeLabelsRequest {
            node_id: "lab-1".into(),
            set: vec![
                pb::Label { key: "site".into(), value: "lab".into() },
                pb::Label { key: "env".into(), value: "prod".into() },
            ],
            remove: vec![],
        })
        .await
        .expect("labels set");
    let labels = |n: &pb::Node| -> Vec<(String, String)> {
        let mut l: Vec<_> = n.labels.iter().map(|l| (l.key.clone(), l.value.clone())).collect();
        l.sort();
        l
    };
    let want = vec![
        ("env".to_string(), "prod".to_string()),
        ("site".to_string(), "lab".to_string()),
        ("team".to_string(), "a".to_string()),
    ];
    let n = c.get_node("lab-1").await;
    assert_eq!((labels(&n), n.operator_label_keys.clone()), (want.clone(), vec!["env".into(), "site".into()]));

    // The agent reconnects and says hello again with its own labels.
    let opened = node.stats().sessions_opened;
    node.disconnect();
    eventually("the node's next session", DEADLINE, || async { (node.stats().sessions_opened > opened).then_some(()) })
        .await;
    c.wait_healthy(1).await;
    assert_eq!(labels(&c.get_node("lab-1").await), want, "operator labels survive a new hello");

    // And a coordinator restart (the keys are in the node's record).
    c.stop().await;
    c.restart().await;
    let node = c.node({
        let mut s = spec("lab-1", 1000);
        s.labels = vec![("team".into(), "b".into())];
        s
    });
    c.wait_healthy(1).await;
    let n = c.get_node("lab-1").await;
    let want_after = vec![
        ("env".to_string(), "prod".to_string()),
        ("site".to_string(), "lab".to_string()),
        ("team".to_string(), "b".to_string()),
    ];
    assert_eq!(labels(&n), want_after, "the agent's own label is refreshed, the operator's kept");
    // What that hello changed was stored, not only kept in memory (a hello
    // that changes nothing durable writes nothing).
    node.stop();
    c.stop().await;
    c.restart().await;
    assert_eq!(labels(&c.get_node("lab-1").await), want_after, "the hello's change was stored");
    // An operator removes one: it is gone, and no longer protected.
    c.fleet()
        .update_node_labels(pb::UpdateNodeLabelsRequest {
            node_id: "lab-1".into(),
            set: vec![],
            remove: vec!["env".into()],
        })
        .await
        .expect("label removed");
    assert_eq!(c.get_node("lab-1").await.operator_label_keys, vec!["site".to_string()]);
}
