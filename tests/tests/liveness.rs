//! Failure detection end to end: closed sessions, silent nodes, re-queueing,
//! flapping.

use fog_e2e::raw::RawNode;
use fog_e2e::*;
use fog_proto::v1 as pb;
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;

async fn liveness(c: &Coord, id: &str) -> (i32, bool) {
    let n = c.get_node(id).await;
    (n.liveness, n.flapping)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_session_makes_the_node_suspect_at_once() {
    let c = Coord::start().await;
    let (node, _) = RawNode::connect(c.channel.clone(), "closer", 1000, vec![]).await;
    c.wait_healthy(1).await;
    // Watch node status changes so the moment of the transition is observed
    // on the stream rather than by polling.
    let mut watch = c
        .topology()
        .watch_topology(pb::WatchTopologyRequest {
            detail: pb::TopologyDetail::NodeStatus as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    loop {
        let m = watch.next().await.unwrap().unwrap();
        if matches!(&m.event, Some(pb::watch_topology_response::Event::Snapshot(s)) if s.last) {
            break;
        }
    }
    let closed_at = Instant::now();
    drop(node);
    let seen = loop {
        let m = tokio::time::timeout(DEADLINE, watch.next()).await.expect("an event").unwrap().unwrap();
        if let Some(pb::watch_topology_response::Event::Node(d)) = m.event
            && let Some(n) = d.node
            && n.id == "closer"
            && n.status == pb::NodeStatus::Suspect as i32
        {
            break closed_at.elapsed();
        }
    };
    println!("session close → suspect seen by a watcher after {seen:?}");
    // Event-driven (no timer involved), so the 100 ms budget has a wide margin.
    assert!(seen < Duration::from_millis(100), "suspect after {seen:?}");
    assert_eq!(liveness(&c, "closer").await.0, pb::Liveness::Suspect as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_goes_offline_and_its_task_completes_elsewhere() {
    let c = Coord::start().await;
    let silent = c.node(spec("silent", 2000));
    c.wait_healthy(1).await;
    let t = c.submit(sleep(1500)).await;
    let running = c.wait_state(&t.id, pb::TaskState::Running).await;
    assert_eq!(running.attempts[0].node_id, "silent");
    let _steady = c.node(spec("steady", 2000));
    c.wait_healthy(2).await;
    // The node stays connected but says nothing: a partition, not a crash.
    silent.set_heartbeats_paused(true);
    let paused_at = Instant::now();
    eventually("silent node suspect", DEADLINE, || async {
        (liveness(&c, "silent").await.0 == pb::Liveness::Suspect as i32).then_some(())
    })
    .await;
    eventually("silent node offline", DEADLINE, || async {
        (liveness(&c, "silent").await.0 == pb::Liveness::Offline as i32).then_some(())
    })
    .await;
    println!("silent → offline after {:?} (grace 300 ms)", paused_at.elapsed());
    let done = c.wait_state(&t.id, pb::TaskState::Succeeded).await;
    let accepted = done.attempts.iter().find(|a| a.attempt == done.accepted_attempt).unwrap();
    assert_eq!(accepted.node_id, "steady", "re-queued and completed elsewhere");
    assert_eq!(done.attempts[0].state, pb::AttemptState::Lost as i32);
    assert_eq!(done.retries_used, 0, "a lost node does not use up the task's retries");
    // The partition heals: the node's own result for the lost attempt arrives
    // and is recorded, not accepted.
    silent.set_heartbeats_paused(false);
    eventually("late result recorded on the lost attempt", DEADLINE, || async {
        let t = c.task(&t.id).await;
        (t.attempts[0].late_result == "succeeded").then_some(())
    })
    .await;
    assert_eq!(c.task(&t.id).await.accepted_attempt, accepted.attempt);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspect_node_must_heartbeat_steadily_before_it_is_healthy_again() {
    let c = Coord::start().await;
    let (node, _) = RawNode::connect(c.channel.clone(), "recovering", 1000, vec![]).await;
    c.wait_healthy(1).await;
    drop(node);
    eventually("suspect", DEADLINE, || async {
        (liveness(&c, "recovering").await.0 == pb::Liveness::Suspect as i32).then_some(())
    })
    .await;
    let (node, _) = RawNode::connect(c.channel.clone(), "recovering", 1000, vec![]).await;
    // Reconnected but not yet trusted: still suspect after two heartbeats.
    node.heartbeat(1).await;
    node.heartbeat(2).await;
    let after_two = c.get_node("recovering").await;
    assert_eq!(after_two.liveness, pb::Liveness::Suspect as i32, "hysteresis: 3 heartbeats needed");
    node.heartbeat(3).await;
    eventually("healthy after the third heartbeat", DEADLINE, || async {
        (liveness(&c, "recovering").await.0 == pb::Liveness::Healthy as i32).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_node_is_marked_and_avoided_while_others_can_take_the_work() {
    let c = Coord::start().await;
    let flappy = c.node(spec("flappy", 4000));
    let _steady = c.node(spec("steady", 4000));
    c.wait_healthy(2).await;
    // Three times healthy → lost → back within the flap window.
    for round in 0..3 {
        eventually(&format!("flappy healthy (round {round})"), DEADLINE, || async {
            (liveness(&c, "flappy").await.0 == pb::Liveness::Healthy as i32).then_some(())
        })
        .await;
        let opened = flappy.stats().sessions_opened;
        flappy.disconnect();
        eventually(&format!("flappy reconnected (round {round})"), DEADLINE, || async {
            let s = flappy.stats();
            (s.sessions_opened > opened && s.connected).then_some(())
        })
        .await;
    }
    eventually("flappy healthy again but marked flapping", DEADLINE, || async {
        let (l, f) = liveness(&c, "flappy").await;
        (l == pb::Liveness::Healthy as i32 && f).then_some(())
    })
    .await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(c.submit(sleep(50)).await.id);
    }
    for id in &ids {
        let t = c.wait_state(id, pb::TaskState::Succeeded).await;
        assert_eq!(t.attempts[0].node_id, "steady", "flapping node avoided while steady can take it");
    }
    // When only the flapping node fits, it is used rather than leaving work queued.
    c.fleet().cordon_node(pb::CordonNodeRequest { node_id: "steady".into() }).await.unwrap();
    let t = c.submit(echo("only-flappy")).await;
    let t = c.wait_state(&t.id, pb::TaskState::Succeeded).await;
    assert_eq!(t.attempts[0].node_id, "flappy");
}
