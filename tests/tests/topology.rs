//! The topology watch: snapshot + deltas equal GetTopology at the same
//! revision, resume, explicit resync, and isolation of slow watchers.

use fog_e2e::topology::{View, next, status_detail, status_view, watch};
use fog_e2e::*;
use fog_proto::v1 as pb;
use fog_proto::v1::watch_topology_response::Event;
use std::time::Duration;
use tokio_stream::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_plus_deltas_equal_get_topology_at_the_same_revision() {
    let c = Coord::start().await;
    let mut s = watch(&c, status_detail()).await;
    let mut view = View::default();
    let _nodes = c.nodes("n", 5, 2000);
    c.wait_healthy(5).await;
    for _ in 0..10 {
        c.submit(sleep(100)).await;
    }
    c.fleet().cordon_node(pb::CordonNodeRequest { node_id: "n-1".into() }).await.unwrap();
    let got = c.topology().get_topology(pb::GetTopologyRequest { include_nodes: true }).await.unwrap().into_inner();
    let target = got.revision;
    // Make sure a later change exists, so the stream moves past `target`.
    c.fleet().set_maintenance(pb::SetMaintenanceRequest { node_id: "n-2".into(), maintenance: true }).await.unwrap();
    let mut at_target = None;
    loop {
        let m = next(&mut s).await;
        if m.revision > target && !view.in_snapshot {
            break;
        }
        view.apply(m);
        at_target = Some((status_view(view.nodes.values().cloned()), view.aggregates.clone()));
    }
    let (nodes, aggregates) = at_target.expect("the watcher passed the target revision");
    assert_eq!(view.epoch, got.epoch);
    assert_eq!(nodes, status_view(got.nodes), "node view at revision {target}");
    assert_eq!(aggregates, got.aggregates, "aggregates at revision {target}");
    assert_eq!(view.resyncs, [pb::SnapshotReason::Initial as i32]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumes_from_a_revision_without_a_snapshot() {
    let c = Coord::start().await;
    let _nodes = c.nodes("n", 3, 2000);
    c.wait_healthy(3).await;
    let mut first = watch(&c, status_detail()).await;
    let mut view = View::default();
    while view.resyncs.is_empty() || view.in_snapshot {
        view.apply(next(&mut first).await);
    }
    let resume_at = view.revision;
    let epoch = view.epoch.clone();
    // Changes the first watcher sees after `resume_at`.
    for id in ["n-0", "n-1", "n-2"] {
        c.fleet().cordon_node(pb::CordonNodeRequest { node_id: id.into() }).await.unwrap();
    }
    let mut seen_by_first = Vec::new();
    while seen_by_first.len() < 3 {
        let m = next(&mut first).await;
        if let Some(Event::Node(d)) = &m.event {
            seen_by_first.push((m.revision, d.node.clone().unwrap().id));
        }
    }
    let mut second = watch(
        &c,
        pb::WatchTopologyRequest {
            detail: pb::TopologyDetail::NodeStatus as i32,
            resume_revision: resume_at,
            epoch,
            ..Default::default()
        },
    )
    .await;
    let mut seen_by_second = Vec::new();
    while seen_by_second.len() < 3 {
        let m = next(&mut second).await;
        assert!(!matches!(m.event, Some(Event::Snapshot(_))), "a resumable revision needs no snapshot");
        assert!(m.revision > resume_at);
        if let Some(Event::Node(d)) = &m.event {
            seen_by_second.push((m.revision, d.node.clone().unwrap().id));
        }
    }
    assert_eq!(seen_by_first, seen_by_second, "the same events, the same revisions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_old_revision_or_another_epoch_gets_an_explicit_resync() {
    let c = Coord::start_with(|cfg| cfg.topology_retained = 50).await;
    let _nodes = c.nodes("n", 2, 2000);
    c.wait_healthy(2).await;
    let epoch = c.topology().get_topology(pb::GetTopologyRequest::default()).await.unwrap().into_inner().epoch;
    // Push far more than 50 events through the log.
    for i in 0..40 {
        let id = format!("n-{}", i % 2);
        c.fleet().cordon_node(pb::CordonNodeRequest { node_id: id.clone() }).await.unwrap();
        c.fleet().uncordon_node(pb::UncordonNodeRequest { node_id: id }).await.unwrap();
    }
    let mut s = watch(
        &c,
        pb::WatchTopologyRequest {
            detail: pb::TopologyDetail::NodeStatus as i32,
            resume_revision: 1,
            epoch: epoch.clone(),
            ..Default::default()
        },
    )
    .await;
    let m = next(&mut s).await;
    assert!(matches!(&m.event, Some(Event::Snapshot(s)) if s.first), "{m:?}");
    assert_eq!(m.snapshot_reason, pb::SnapshotReason::ResyncTooOld as i32);

    let mut s = watch(
        &c,
        pb::WatchTopologyRequest {
            detail: pb::TopologyDetail::NodeStatus as i32,
            resume_revision: 3,
            epoch: "another-run".into(),
            ..Default::default()
        },
    )
    .await;
    let m = next(&mut s).await;
    assert_eq!(m.snapshot_reason, pb::SnapshotReason::ResyncTooOld as i32, "revisions of another run cannot resume");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_never_reads_does_not_delay_the_others_and_is_resynced() {
    let c = Coord::start_with(|cfg| {
        cfg.watch_buffer = 64;
        // 400 cordon changes as fast as the coordinator answers: past the default write budget.
        cfg.auth.limits.write_rps = 100_000;
    })
    .await;
    let _nodes = c.nodes("n", 2, 2000);
    c.wait_healthy(2).await;
    // The stalled watcher, on its own connection as a separate dashboard
    // would be (HTTP/2 flow control is per connection): opened, then never
    // read while the fleet changes.
    // Tiny flow-control windows, so the server feels the stall after a few
    // messages instead of after the client's megabytes of buffer.
    let own = tonic::transport::Endpoint::from_shared(format!("http://{}", c.running.as_ref().unwrap().addr))
        .unwrap()
        .initial_stream_window_size(Some(1024))
        .initial_connection_window_size(Some(1024))
        .connect()
        .await
        .unwrap();
    let own = fog_proto::auth::Bearer::new(&c.admin_token).unwrap().wrap(own);
    let mut stalled = fog_proto::v1::topology_service_client::TopologyServiceClient::new(own)
        .watch_topology(status_detail())
        .await
        .unwrap()
        .into_inner();
    let mut live = watch(&c, status_detail()).await;
    let mut view = View::default();
    while view.resyncs.is_empty() || view.in_snapshot {
        view.apply(next(&mut live).await);
    }
    let changes = 400;
    let reader = tokio::spawn(async move {
        let mut seen = 0;
        while seen < changes {
            let m = next(&mut live).await;
            if let Some(Event::Node(_)) = m.event {
                seen += 1;
            }
        }
        seen
    });
    let mut fleet = c.fleet();
    for i in 0..changes / 2 {
        let id = format!("n-{}", i % 2);
        fleet.cordon_node(pb::CordonNodeRequest { node_id: id.clone() }).await.unwrap();
        fleet.uncordon_node(pb::UncordonNodeRequest { node_id: id }).await.unwrap();
    }
    // The live watcher got every change although the other one read nothing.
    let seen = tokio::time::timeout(Duration::from_secs(30), reader).await.expect("live watcher kept up").unwrap();
    assert!(seen >= changes);
    // The stalled watcher, when it finally reads, is told it missed events.
    let mut view = View::default();
    eventually("stalled watcher resynced", DEADLINE, || {
        while let Some(Some(Ok(m))) = futures::FutureExt::now_or_never(stalled.next()) {
            view.apply(m);
        }
        let done = view.resyncs.contains(&(pb::SnapshotReason::ResyncLagged as i32));
        async move { done.then_some(()) }
    })
    .await;
    // After the resync its view is current again.
    assert!(!view.nodes.is_empty());
}
