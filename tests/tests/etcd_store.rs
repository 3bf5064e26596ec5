//! The etcd backend of the store against a real etcd: the conformance suite
//! every backend passes, durability across clients, fencing, and a
//! coordinator that keeps its state in etcd across a restart.

use fog_coordinator::config::StoreChoice;
use fog_coordinator::store::{EtcdStore, Fence, Mutation, Store, StoreError, conformance};
use fog_e2e::etcd::EtcdCluster;
use fog_e2e::*;
use fog_proto::v1 as pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_store_passes_the_conformance_suite_and_keeps_data_across_clients() {
    let etcd = EtcdCluster::start(1).await;
    let store = EtcdStore::connect(&etcd.endpoints(), "/conformance/", None).await.expect("connect");
    conformance::run_all(&store).await;

    // What one client committed, another reads; another prefix sees nothing of it.
    let task = pb::Task { id: "t-kept".into(), retries_used: 2, ..Default::default() };
    store.commit(vec![Mutation::PutTask(task.clone())]).await.unwrap();
    let other = EtcdStore::connect(&etcd.endpoints(), "/conformance/", None).await.unwrap();
    assert_eq!(other.load().await.unwrap().tasks, vec![task]);
    let elsewhere = EtcdStore::connect(&etcd.endpoints(), "/other-cluster/", None).await.unwrap();
    assert!(elsewhere.load().await.unwrap().tasks.is_empty(), "prefixes separate clusters");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_store_writes_only_while_its_leader_key_stands() {
    let etcd = EtcdCluster::start(1).await;
    let store = EtcdStore::connect(&etcd.endpoints(), "/fence/", None).await.unwrap();
    let mut kv = store.client().kv_client();
    let leader_key = b"/fence/leader".to_vec();
    let won = |rev| Fence { key: leader_key.clone(), create_revision: rev };
    let r1 = kv.put(leader_key.clone(), "replica-1", None).await.unwrap().header().unwrap().revision();
    let first = store.fenced(won(r1));
    first.commit(vec![Mutation::PutMeta { key: "a".into(), value: b"1".to_vec() }]).await.expect("leader writes");
    // Leadership moves: the key is deleted and created again by another replica.
    kv.delete(leader_key.clone(), None).await.unwrap();
    let r2 = kv.put(leader_key.clone(), "replica-2", None).await.unwrap().header().unwrap().revision();
    let err = first.commit(vec![Mutation::PutMeta { key: "a".into(), value: b"stale".to_vec() }]).await;
    assert!(matches!(err, Err(StoreError::Fenced(_))), "the deposed leader's write is refused: {err:?}");
    store.fenced(won(r2)).commit(vec![Mutation::PutMeta { key: "b".into(), value: b"2".to_vec() }]).await.unwrap();
    let meta = store.load().await.unwrap().meta;
    assert_eq!(meta, vec![("a".to_string(), b"1".to_vec()), ("b".to_string(), b"2".to_vec())], "nothing stale landed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_on_etcd_keeps_its_tasks_across_a_restart() {
    let etcd = EtcdCluster::start(1).await;
    let endpoints = etcd.endpoints();
    // The admin is created in the store the coordinator will use: etcd.
    let mut c = Coord::start_kept(move |cfg| {
        cfg.store = StoreChoice::Etcd { endpoints: endpoints.clone(), prefix: "/fog-test/".into(), tls: None }
    })
    .await;
    let _nodes = c.nodes("etcd", 1, 2000);
    c.wait_healthy(1).await;
    let t = c.submit(echo("kept in etcd")).await;
    c.wait_state(&t.id, pb::TaskState::Succeeded).await;
    c.stop().await;
    c.restart().await;
    let back = c.task(&t.id).await;
    assert_eq!(back.state, pb::TaskState::Succeeded as i32);
    assert_eq!(back.output.unwrap().stdout, b"kept in etcd");
    // The embedded store was never created.
    assert!(!c.dir.path().join(fog_coordinator::store::FILE_NAME).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_etcd_takes_a_client_certificate_and_refuses_a_client_without_one() {
    let etcd = EtcdCluster::start_tls(1).await;
    let tls = etcd.tls.clone().expect("TLS settings");
    let store = EtcdStore::connect(&etcd.endpoints(), "/tls/", Some(&tls)).await.expect("connect over TLS");
    conformance::run_all(&store).await;
    // etcd requires a client certificate: without one, or without TLS, nothing.
    let anonymous = fog_coordinator::store::EtcdTls { identity: None, ..tls.clone() };
    assert!(EtcdStore::connect(&etcd.endpoints(), "/tls/", Some(&anonymous)).await.is_err());
    assert!(EtcdStore::connect(&etcd.endpoints(), "/tls/", None).await.is_err());

    // A real coordinator configured by its flags (--etcd-ca, --etcd-cert,
    // --etcd-key) serves from etcd over TLS and keeps a task across a restart.
    fog_coordinator::auth::bootstrap::create_user_in(
        &EtcdStore::connect(&etcd.endpoints(), "/fog-tls/", Some(&tls)).await.unwrap(),
        "admin",
        ADMIN_PASSWORD,
        fog_coordinator::auth::Role::Admin,
    )
    .await
    .unwrap();
    let (ca, cert, key) = etcd.tls_files.clone().unwrap();
    let endpoints = etcd.endpoints().join(",");
    let flags = [
        "--store",
        "etcd",
        "--etcd-endpoints",
        &endpoints,
        "--etcd-prefix",
        "/fog-tls/",
        "--etcd-ca",
        ca.to_str().unwrap(),
        "--etcd-cert",
        cert.to_str().unwrap(),
        "--etcd-key",
        key.to_str().unwrap(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut coord = fog_e2e::process::CoordinatorProcess::restart_on(fog_e2e::process::free_port(), dir.path(), &flags);
    let c = Coord::client_of(&coord.url).await;
    let _node = c.node(spec("etcd-tls", 2000));
    c.wait_healthy(1).await;
    let t = c.submit(echo("kept in etcd over TLS")).await;
    c.wait_state(&t.id, pb::TaskState::Succeeded).await;
    coord.kill();
    let coord = fog_e2e::process::CoordinatorProcess::restart_on(coord.port, dir.path(), &flags);
    let c = Coord::client_of(&coord.url).await;
    let back = c.task(&t.id).await;
    assert_eq!(back.output.unwrap().stdout, b"kept in etcd over TLS");
}

/// Session ownership records: each replica writes the sessions it holds
/// under its own lease; a release never deletes another replica's newer
/// record; a replica whose lease is revoked under it writes everything again
/// under a new one; closing revokes. The leader's directory follows it all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_owners_record_under_their_own_lease_and_the_directory_follows() {
    use fog_coordinator::ha::sessions::{SessionDirectory, SessionOwners};
    use std::collections::BTreeMap;
    use std::time::Duration;
    let etcd = EtcdCluster::start(1).await;
    let store = EtcdStore::connect(&etcd.endpoints(), "/owners/", None).await.unwrap();
    let ttl = Duration::from_secs(2);
    let a = SessionOwners::start(&store, "/owners/", "http://a", ttl);
    let b = SessionOwners::start(&store, "/owners/", "http://b", ttl);
    let stop = tokio_util::sync::CancellationToken::new();
    let dir = SessionDirectory::start(&store, "/owners/", stop.clone());
    let kv = store.client().kv_client();
    let records = || {
        let mut kv = kv.clone();
        async move {
            let r = kv.get("/owners/sessions/", Some(etcd_client::GetOptions::new().with_prefix())).await.unwrap();
            r.kvs()
                .iter()
                .map(|kv| {
                    let node = String::from_utf8_lossy(&kv.key()["/owners/sessions/".len()..]).into_owned();
                    (node, (String::from_utf8_lossy(kv.value()).into_owned(), kv.lease()))
                })
                .collect::<BTreeMap<String, (String, i64)>>()
        }
    };
    let shows = |want: &'static [(&'static str, Option<&'static str>)]| {
        let dir = dir.clone();
        async move {
            eventually("the directory shows the records", DEADLINE, || async {
                want.iter().all(|(n, owner)| dir.replica_of(n).as_deref() == *owner).then_some(())
            })
            .await
        }
    };

    let n1 = a.hold("n1");
    let _n2 = b.hold("n2");
    let moving = a.hold("n3");
    shows(&[("n1", Some("http://a")), ("n2", Some("http://b")), ("n3", Some("http://a"))]).await;
    let r = records().await;
    assert_ne!(r["n1"].1, 0, "recorded under a lease");
    assert_eq!(r["n1"].1, r["n3"].1, "one lease per replica");
    assert_ne!(r["n1"].1, r["n2"].1, "each replica has its own lease");
    assert!(dir.revision() > 0);

    // n3 reconnects through b before a notices its old session ended.
    let _n3 = b.hold("n3");
    shows(&[("n3", Some("http://b"))]).await;
    drop(moving);
    let _n4 = a.hold("n4"); // ordered after the release: once it shows, the release was applied
    shows(&[("n4", Some("http://a"))]).await;
    assert_eq!(dir.replica_of("n3").as_deref(), Some("http://b"), "a's release left b's record");
    assert_eq!(records().await["n3"].0, "http://b");

    // A session that ends is released.
    drop(n1);
    shows(&[("n1", None)]).await;
    assert!(!records().await.contains_key("n1"));

    // a's lease disappears under it (expired in a partition, say): its
    // records go, and come back under a new lease.
    let old = records().await["n4"].1;
    store.client().clone().lease_revoke(old).await.unwrap();
    let renewed = eventually("a writes its sessions again under a new lease", DEADLINE, || async {
        records().await.get("n4").filter(|(_, lease)| *lease != old).cloned()
    })
    .await;
    assert_eq!(renewed.0, "http://a");
    shows(&[("n4", Some("http://a")), ("n2", Some("http://b")), ("n3", Some("http://b"))]).await;

    // Closing revokes the lease: every record of that replica goes at once.
    a.close().await;
    assert!(!records().await.contains_key("n4"), "closing deleted a's records");
    shows(&[("n4", None), ("n2", Some("http://b"))]).await;
    stop.cancel();
}

/// The directory's watch starts from a revision that etcd has compacted
/// away: etcd cancels it, and the directory lists the records again instead
/// of waiting on a watch that will never deliver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_directory_lists_again_when_its_watch_revision_was_compacted() {
    use fog_coordinator::ha::sessions::SessionDirectory;
    let etcd = EtcdCluster::start(1).await;
    let store = EtcdStore::connect(&etcd.endpoints(), "/compact/", None).await.unwrap();
    let mut kv = store.client().kv_client();
    let put = |key: &str, value: &str| {
        let (mut kv, key, value) = (kv.clone(), format!("/compact/sessions/{key}"), value.to_string());
        async move { kv.put(key, value, None).await.unwrap().header().unwrap().revision() }
    };
    let old = put("n1", "http://a").await;
    put("n1", "http://b").await;
    put("n2", "http://b").await;
    let now = put("n3", "http://c").await;
    store.client().clone().compact(now, None).await.unwrap();
    // The revision after `old` is gone.
    let stop = tokio_util::sync::CancellationToken::new();
    let dir = SessionDirectory::start_watching_from(&store, "/compact/", old + 1, stop.clone());
    eventually("the directory lists the records again", DEADLINE, || async {
        (dir.replica_of("n1").as_deref() == Some("http://b")
            && dir.replica_of("n2").as_deref() == Some("http://b")
            && dir.replica_of("n3").as_deref() == Some("http://c"))
        .then_some(())
    })
    .await;
    assert!(dir.revision() >= now, "the copy is at the listed revision: {} < {now}", dir.revision());
    // And it follows from there.
    kv.delete("/compact/sessions/n2", None).await.unwrap();
    eventually("a later change arrives", DEADLINE, || async { dir.replica_of("n2").is_none().then_some(()) }).await;
    stop.cancel();
}
