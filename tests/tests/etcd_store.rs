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
