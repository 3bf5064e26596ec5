//! Lifecycle rules, driven with explicit `now` values.

use super::*;
use crate::domain::{Resources, Strategy};
use crate::registry::{Liveness, NodeRegistration};
use crate::scheduling::{LatencyModel, TaskNeeds};
use std::sync::Arc;

fn table(n: usize, cpu: u32) -> NodeTable {
    let mut t = NodeTable::new();
    for i in 0..n {
        let id: NodeId = Arc::from(format!("n{i}"));
        t.register(
            NodeRegistration {
                id: id.clone(),
                name: id.to_string(),
                capacity: Resources { cpu_millis: cpu, memory_mb: 4096, storage_mb: 0, gpus: 0 },
                ..Default::default()
            },
            0,
        );
        t.update(&id, |e| e.set_liveness(Liveness::Healthy, false, 0));
    }
    t
}

fn params(tier: SlaTier, cpu: u32, replicas: u32, retries: u32) -> TaskParams {
    TaskParams {
        needs: TaskNeeds {
            resources: Resources { cpu_millis: cpu, ..Resources::ZERO },
            strategy: Strategy::LeastLoaded,
            ..Default::default()
        },
        tier,
        replicas,
        max_retries: retries,
        timeout_ms: 1000,
        request_id: None,
    }
}

fn ok() -> Outcome {
    Outcome { kind: OutcomeKind::Succeeded, exit_code: 0, error: String::new(), output: None }
}

fn failed() -> Outcome {
    Outcome { kind: OutcomeKind::Failed, exit_code: 1, error: "boom".into(), output: None }
}

struct World {
    nodes: NodeTable,
    book: TaskBook<()>,
    sched: Scheduler,
}

impl World {
    fn new(n: usize, cpu: u32) -> World {
        World { nodes: table(n, cpu), book: TaskBook::new(), sched: Scheduler::new(LatencyModel::default()) }
    }
    fn submit(&mut self, id: &str, p: TaskParams, now: Millis) -> TaskId {
        let id: TaskId = Arc::from(id);
        self.book.submit(id.clone(), p, (), now);
        id
    }
    fn place(&mut self, now: Millis) -> Vec<Effect> {
        self.book.place_queued(&mut self.nodes, &mut self.sched, now).1
    }
    fn attempts(&self, id: &str) -> Vec<(AttemptNo, String, AttemptState)> {
        self.book.get(id).unwrap().attempts.iter().map(|a| (a.number, a.node.to_string(), a.state)).collect()
    }
    fn state(&self, id: &str) -> TaskState {
        self.book.get(id).unwrap().state
    }
}

#[test]
fn success_frees_resources_and_counts() {
    let mut w = World::new(1, 1000);
    let t = w.submit("t1", params(SlaTier::Bronze, 600, 1, 0), 0);
    let eff = w.place(10);
    assert!(matches!(&eff[..], [Effect::Assign { attempt: 1, .. }]));
    assert_eq!(w.state(&t), TaskState::Assigned);
    assert_eq!(w.nodes.get("n0").unwrap().allocated.cpu_millis, 600);
    assert!(w.book.attempt_running("n0", &t, 1));
    assert_eq!(w.state(&t), TaskState::Running);
    let (v, _) = w.book.attempt_finished(&mut w.nodes, "n0", &t, 1, ok(), 20);
    assert_eq!(v, ResultVerdict::Accepted);
    assert_eq!(w.state(&t), TaskState::Succeeded);
    assert_eq!(w.book.get(&t).unwrap().accepted_attempt, Some(1));
    assert_eq!(w.nodes.get("n0").unwrap().allocated.cpu_millis, 0);
    assert_eq!(w.nodes.get("n0").unwrap().completed_tasks, 1);
    let c = w.book.counts();
    assert_eq!((c.queued, c.running, c.completed), (0, 0, 1));
    // The node did not get the ack and resends: acknowledged again, nothing changes.
    let (v, _) = w.book.attempt_finished(&mut w.nodes, "n0", &t, 1, ok(), 30);
    assert_eq!(v, ResultVerdict::Duplicate);
    assert_eq!(w.book.counts().completed, 1);
}

#[test]
fn several_tasks_share_a_node_up_to_capacity() {
    let mut w = World::new(1, 1000);
    for i in 0..3 {
        w.submit(&format!("t{i}"), params(SlaTier::Bronze, 300, 1, 0), 0);
    }
    let eff = w.place(1);
    assert_eq!(eff.len(), 3, "three 300m tasks fit on one 1000m node");
    w.submit("t9", params(SlaTier::Bronze, 300, 1, 0), 2);
    assert!(w.place(3).is_empty(), "a fourth does not fit");
    assert_eq!(w.state("t9"), TaskState::Queued);
}

#[test]
fn failure_retries_then_fails_with_the_reason() {
    let mut w = World::new(1, 1000);
    let t = w.submit("t1", params(SlaTier::Bronze, 100, 1, 1), 0);
    w.place(1);
    w.book.attempt_finished(&mut w.nodes, "n0", &t, 1, failed(), 2);
    assert_eq!(w.state(&t), TaskState::Queued, "one retry left");
    assert_eq!(w.book.get(&t).unwrap().retries_used, 1);
    let eff = w.place(3);
    assert!(matches!(&eff[..], [Effect::Assign { attempt: 2, .. }]), "a new attempt number: {eff:?}");
    w.book.attempt_finished(&mut w.nodes, "n0", &t, 2, failed(), 4);
    assert_eq!(w.state(&t), TaskState::Failed);
    // A resent failure (lost ack) is a duplicate, not a late result.
    assert_eq!(w.book.attempt_finished(&mut w.nodes, "n0", &t, 2, failed(), 5).0, ResultVerdict::Duplicate);
    assert_eq!(w.book.get(&t).unwrap().attempts[1].late_result, None);
    assert!(w.book.get(&t).unwrap().error.contains("boom"));
    assert_eq!(w.nodes.get("n0").unwrap().failed_tasks, 2);
}

#[test]
fn stale_attempt_results_are_recorded_not_accepted() {
    let mut w = World::new(2, 1000);
    let t = w.submit("t1", params(SlaTier::Bronze, 100, 1, 3), 0);
    w.place(1);
    let first = w.attempts(&t)[0].1.clone();
    // The node is lost: the attempt is re-queued and placed again as attempt 2.
    w.book.node_lost(&mut w.nodes, &first, 5);
    w.nodes.update(&first, |e| e.set_liveness(Liveness::Offline, false, 5));
    w.place(6);
    assert_eq!(w.attempts(&t)[1].0, 2);
    // The lost node comes back and reports success for attempt 1: stale.
    let (v, _) = w.book.attempt_finished(&mut w.nodes, &first, &t, 1, ok(), 7);
    assert_eq!(v, ResultVerdict::Stale);
    assert_ne!(w.state(&t), TaskState::Succeeded);
    assert_eq!(w.book.get(&t).unwrap().attempts[0].late_result, Some("succeeded"));
    // A result for attempt 2 from the wrong node is stale too.
    let (v, _) = w.book.attempt_finished(&mut w.nodes, &first, &t, 2, ok(), 8);
    assert_eq!(v, ResultVerdict::Stale);
    let second = w.attempts(&t)[1].1.clone();
    let (v, _) = w.book.attempt_finished(&mut w.nodes, &second, &t, 2, ok(), 9);
    assert_eq!(v, ResultVerdict::Accepted);
    assert_eq!(w.book.get(&t).unwrap().accepted_attempt, Some(2));
    // Losing a node does not use up retries.
    assert_eq!(w.book.get(&t).unwrap().retries_used, 0);
}

#[test]
fn replicas_go_to_distinct_nodes_and_the_first_success_cancels_the_rest() {
    let mut w = World::new(4, 1000);
    let t = w.submit("t1", params(SlaTier::Gold, 100, 3, 0), 0);
    let eff = w.place(1);
    assert_eq!(eff.len(), 3);
    let nodes: std::collections::BTreeSet<String> = w.attempts(&t).iter().map(|a| a.1.clone()).collect();
    assert_eq!(nodes.len(), 3, "distinct nodes");
    let (a2, n2, _) = w.attempts(&t)[1].clone();
    let (v, eff) = w.book.attempt_finished(&mut w.nodes, &n2, &t, a2, ok(), 5);
    assert_eq!(v, ResultVerdict::Accepted);
    let cancels: Vec<_> = eff.iter().filter(|e| matches!(e, Effect::Cancel { .. })).collect();
    assert_eq!(cancels.len(), 2, "the two losers are cancelled");
    assert_eq!(w.state(&t), TaskState::Succeeded);
    for n in &nodes {
        assert_eq!(w.nodes.get(n).unwrap().allocated.cpu_millis, 0, "everything released");
    }
    // A loser's late success is not accepted.
    let (a1, n1, _) = w.attempts(&t)[0].clone();
    assert_eq!(w.book.attempt_finished(&mut w.nodes, &n1, &t, a1, ok(), 6).0, ResultVerdict::Stale);
    assert_eq!(w.book.get(&t).unwrap().accepted_attempt, Some(a2));
}

#[test]
fn higher_tiers_are_placed_first_when_capacity_is_short() {
    let mut w = World::new(1, 1000);
    let blocker = w.submit("t0", params(SlaTier::Bronze, 1000, 1, 0), 0);
    w.place(1);
    let bronze = w.submit("t1", params(SlaTier::Bronze, 1000, 1, 0), 2);
    let gold = w.submit("t2", params(SlaTier::Gold, 1000, 1, 0), 3);
    assert!(w.place(4).is_empty());
    w.book.attempt_finished(&mut w.nodes, "n0", &blocker, 1, ok(), 5);
    let eff = w.place(6);
    assert!(matches!(&eff[..], [Effect::Assign { task, .. }] if *task == gold), "{eff:?}");
    assert_eq!(w.state(&bronze), TaskState::Queued);
}

#[test]
fn timeouts_cancel_the_attempt_and_retry() {
    let mut w = World::new(1, 1000);
    let t = w.submit("t1", params(SlaTier::Bronze, 100, 1, 1), 0);
    w.place(100); // deadline 1100
    assert!(w.book.expire(&mut w.nodes, 1099).0.is_empty());
    let (changed, eff) = w.book.expire(&mut w.nodes, 1100);
    assert_eq!(changed.len(), 1);
    assert!(matches!(&eff[..], [Effect::Cancel { attempt: 1, reason: "timed out", .. }]));
    assert_eq!(w.attempts(&t)[0].2, AttemptState::TimedOut);
    assert_eq!(w.state(&t), TaskState::Queued);
    w.place(1200);
    w.book.expire(&mut w.nodes, 2200);
    assert_eq!(w.state(&t), TaskState::Failed);
}

#[test]
fn cancel_stops_attempts_and_refuses_finished_tasks() {
    let mut w = World::new(1, 1000);
    let t = w.submit("t1", params(SlaTier::Bronze, 100, 1, 0), 0);
    w.place(1);
    let eff = w.book.cancel(&mut w.nodes, &t, "", 2).unwrap();
    assert!(matches!(&eff[..], [Effect::Cancel { attempt: 1, .. }]));
    assert_eq!(w.state(&t), TaskState::Cancelled);
    assert_eq!(w.nodes.get("n0").unwrap().allocated.cpu_millis, 0);
    assert!(matches!(w.book.cancel(&mut w.nodes, &t, "", 3), Err(TaskError::Finished(..))));
    assert!(matches!(w.book.cancel(&mut w.nodes, "nope", "", 3), Err(TaskError::NotFound(_))));
    // The node's cancelled result is recorded as stale.
    assert_eq!(w.book.attempt_finished(&mut w.nodes, "n0", &t, 1, ok(), 4).0, ResultVerdict::Stale);
}

#[test]
fn reconcile_cancels_unknown_attempts_and_loses_missing_ones() {
    let mut w = World::new(1, 1000);
    let t = w.submit("t1", params(SlaTier::Bronze, 100, 1, 0), 0);
    w.place(1);
    // The node reconnects reporting an attempt we never gave it, and not ours.
    let (cancel, changed) = w.book.reconcile(&mut w.nodes, "n0", &[(Arc::from("ghost"), 7)], 2);
    assert_eq!(cancel, vec![(Arc::from("ghost"), 7)]);
    assert_eq!(changed, vec![t.clone()]);
    assert_eq!(w.attempts(&t)[0].2, AttemptState::Lost);
    assert_eq!(w.state(&t), TaskState::Queued);
    // Reporting the current attempt keeps it, and an attempt the node holds
    // is running even if its running report was never recorded.
    w.place(3);
    assert_eq!(w.state(&t), TaskState::Assigned);
    let (cancel, changed) = w.book.reconcile(&mut w.nodes, "n0", &[(t.clone(), 2)], 4);
    assert!(cancel.is_empty());
    assert_eq!(changed, vec![t.clone()]);
    assert_eq!(w.state(&t), TaskState::Running);
    assert_eq!(w.attempts(&t)[1].2, AttemptState::Running);
    // Reported again: nothing changes.
    let (cancel, changed) = w.book.reconcile(&mut w.nodes, "n0", &[(t.clone(), 2)], 5);
    assert!(cancel.is_empty() && changed.is_empty());
}

#[test]
fn request_ids_and_forget() {
    let mut w = World::new(0, 1000);
    let mut p = params(SlaTier::Bronze, 100, 1, 0);
    p.request_id = Some("r1".into());
    let t = w.submit("t1", p, 0);
    assert_eq!(w.book.by_request_id("r1").map(|t| t.id.clone()), Some(t.clone()));
    assert!(w.book.forget(&t));
    assert!(w.book.get(&t).is_none());
    assert!(w.book.by_request_id("r1").is_none());
    assert_eq!(w.book.counts().queued, 0);
    assert!(w.place(1).is_empty());
}

#[test]
fn eviction_drops_the_oldest_finished_tasks_and_keeps_active_ones_and_counts() {
    let mut w = World::new(1, 1000);
    let req = |p: TaskParams, r: &str| TaskParams { request_id: Some(r.into()), ..p };
    // Three tasks finish in the order t2, t1, t3 (cancellations); t4 stays queued.
    let ids: Vec<TaskId> = (1..=4)
        .map(|i| w.submit(&format!("t{i}"), req(params(SlaTier::Bronze, 100, 1, 0), &format!("r{i}")), 0))
        .collect();
    for (i, id) in [&ids[1], &ids[0], &ids[2]].into_iter().enumerate() {
        w.book.cancel(&mut w.nodes, id, "", 1 + i as Millis).unwrap();
    }
    let before = w.book.counts();
    assert_eq!((before.cancelled, before.queued), (3, 1));
    assert_eq!(w.book.finished_in_memory(), 3);

    assert_eq!(w.book.evict_finished(2, |t| &*t.id != "t2"), [ids[0].clone()], "t2 is not durable yet: t1 goes");
    assert_eq!(w.book.finished_in_memory(), 2);
    assert_eq!(w.book.evict_finished(1, |_| true), [ids[1].clone()], "then t2, the oldest left");
    assert!(w.book.get("t2").is_none() && w.book.get("t1").is_none());
    assert_eq!(w.state("t3"), TaskState::Cancelled, "the newest finished stays");
    assert_eq!(w.state("t4"), TaskState::Queued, "active tasks are never evicted");
    assert!(w.book.by_request_id("r1").is_none(), "an evicted task's request id is forgotten with it");
    assert!(w.book.by_request_id("r3").is_some());
    assert_eq!(w.book.counts(), before, "counts cover evicted tasks too");
    assert!(w.book.evict_finished(1, |_| true).is_empty());
    assert_eq!(w.book.evict_finished(0, |_| true).len(), 1);
    assert_eq!(w.book.len(), 1);

    // A restart restores only what was kept; the totals come from the store.
    let mut fresh: TaskBook<()> = TaskBook::new();
    fresh.restore_totals(Counts { cancelled: 3, placed: 0, ..Counts::default() });
    assert_eq!(fresh.counts().cancelled, 3);
    fresh.restore_totals(Counts::default());
    assert_eq!(fresh.counts().cancelled, 3, "a lower total never lowers a count");
}

#[test]
fn a_released_request_id_leaves_the_task_and_its_record() {
    let mut w = World::new(1, 1000);
    let mut p = params(SlaTier::Bronze, 100, 1, 0);
    p.request_id = Some("r1".into());
    let t = w.submit("t1", p, 0);
    w.place(1);
    w.book.release_request_id(&t);
    assert!(w.book.by_request_id("r1").is_none());
    assert_eq!(w.book.get(&t).unwrap().request_id, None, "the task's record no longer claims r1");
}
