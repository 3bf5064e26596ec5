//! Coordinators on etcd with leader election: three replicas on a
//! three-member etcd cluster, real fog-agent processes that know every
//! replica's address and one that knows only a standby's, tasks in flight.
//! Standbys forward calls and node sessions to the leader; each replica
//! records the sessions it holds in etcd under its own lease, and
//! heartbeats leave etcd's revision still. Kill the leader: a
//! standby serves within 5 s, the agents reconnect, the remaining standby
//! forwards to the new leader, and no acknowledged task is lost or completed
//! twice. Over mTLS, a standby forwards a joined agent's session with the
//! node's certificate, checked by the leader. Kill an etcd member: service continues. Pause a leader
//! until it is deposed: its writes are refused and it steps down.

use fog_coordinator::auth::Role;
use fog_e2e::etcd::EtcdCluster;
use fog_e2e::process::{CoordinatorProcess, binary, free_port};
use fog_e2e::*;
use fog_proto::v1 as pb;
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PREFIX: &str = "/ha/";

/// One scenario at a time: each runs an etcd cluster and several coordinators,
/// and on 2 cores two at once would measure the machine, not the failover.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Replicas {
    procs: Vec<Option<CoordinatorProcess>>,
    urls: Vec<String>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Replicas {
    async fn start(etcd: &EtcdCluster, n: usize) -> Replicas {
        let store = fog_coordinator::store::EtcdStore::connect(&etcd.endpoints(), PREFIX, None).await.unwrap();
        fog_coordinator::auth::bootstrap::create_user_in(&store, "admin", ADMIN_PASSWORD, Role::Admin).await.unwrap();
        let endpoints = etcd.endpoints().join(",");
        let mut procs = Vec::new();
        let mut urls = Vec::new();
        let mut dirs = Vec::new();
        for _ in 0..n {
            let dir = tempfile::tempdir().unwrap();
            let args = [
                "--store",
                "etcd",
                "--etcd-endpoints",
                &endpoints,
                "--etcd-prefix",
                PREFIX,
                "--ha",
                "--restart-grace",
                "5s",
            ];
            let p = CoordinatorProcess::start_with_env(free_port(), dir.path(), &args, &[]);
            urls.push(p.url.clone());
            procs.push(Some(p));
            dirs.push(dir);
        }
        Replicas { procs, urls, _dirs: dirs }
    }

    /// The leader (the replica that answers a sign-in itself, not by
    /// forwarding it), waiting up to `deadline`.
    async fn leader(&self, deadline: Duration) -> (usize, Coord) {
        let started = Instant::now();
        loop {
            for (i, url) in self.urls.iter().enumerate() {
                if self.procs[i].is_none() {
                    continue;
                }
                // A paused process accepts connections but never answers: every try has a deadline.
                let endpoint = tonic::transport::Endpoint::from_shared(url.clone())
                    .unwrap()
                    .connect_timeout(Duration::from_millis(500))
                    .timeout(Duration::from_secs(1));
                let Ok(ch) = endpoint.connect().await else { continue };
                let req = pb::SignInRequest { username: "admin".into(), password: ADMIN_PASSWORD.into() };
                if let Ok(r) = pb::auth_service_client::AuthServiceClient::new(ch.clone()).sign_in(req).await
                    && r.metadata().get(fog_coordinator::ha::FORWARDED_TO).is_none()
                {
                    let token = r.into_inner().tokens.unwrap().access_token;
                    let ch = tonic::transport::Endpoint::from_shared(url.clone()).unwrap().connect_lazy();
                    return (i, Coord::client(ch, token));
                }
            }
            assert!(started.elapsed() < deadline, "no replica served within {deadline:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A fog-agent process, killed when dropped (also when a test fails).
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn agent(urls: &[String], id: &str, state: &std::path::Path) -> Agent {
    Agent(
        Command::new(binary("fog-agent"))
            .args(["run", "--insecure", "--coordinator", &urls.join(","), "--node-id", id])
            .arg("--state-dir")
            .arg(state)
            .args(["--reconnect-min", "50ms", "--reconnect-max", "500ms"])
            .env("FOG_AGENT_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn fog-agent"),
    )
}

/// The session ownership records in etcd: node → (replica URL, lease), and
/// the revision they were read at.
async fn session_records(etcd: &EtcdCluster) -> (BTreeMap<String, (String, i64)>, i64) {
    let mut client = etcd_client::Client::connect(etcd.endpoints(), None).await.unwrap();
    let prefix = format!("{PREFIX}sessions/");
    let r = client.get(prefix.as_str(), Some(etcd_client::GetOptions::new().with_prefix())).await.unwrap();
    let records = r
        .kvs()
        .iter()
        .map(|kv| {
            let node = String::from_utf8_lossy(&kv.key()[prefix.len()..]).into_owned();
            (node, (String::from_utf8_lossy(kv.value()).into_owned(), kv.lease()))
        })
        .collect();
    (records, r.header().unwrap().revision())
}

/// Every node's session is recorded by the replica that holds it (the
/// relayed agent's by the standby it reaches), each replica under its own
/// lease, and the leader's API names that replica on the node.
async fn sessions_recorded_by_their_replicas(
    etcd: &EtcdCluster,
    c: &Coord,
    nodes: &[&str],
    expect: &BTreeMap<&str, &str>,
    live: &[&String],
) {
    let records = eventually("every session recorded by a live replica", DEADLINE, || async {
        let (records, _) = session_records(etcd).await;
        let ok = nodes.iter().all(|n| {
            records.get(*n).is_some_and(|(owner, lease)| {
                *lease != 0 && live.contains(&owner) && expect.get(n).is_none_or(|want| owner == want)
            })
        });
        ok.then_some(records)
    })
    .await;
    // One lease per replica: records of the same replica share it, different replicas differ.
    let mut leases: BTreeMap<&str, i64> = BTreeMap::new();
    for (owner, lease) in records.values() {
        assert_eq!(*leases.entry(owner).or_insert(*lease), *lease, "{owner} records under one lease");
    }
    let distinct: std::collections::BTreeSet<_> = leases.values().collect();
    assert_eq!(distinct.len(), leases.len(), "each replica has its own lease: {leases:?}");
    for n in nodes {
        let shown = eventually("the leader names the replica holding the session", DEADLINE, || async {
            let node = c.get_node(n).await;
            (node.session_replica == records[*n].0).then_some(node.session_replica)
        })
        .await;
        assert!(!shown.is_empty());
    }
}

/// Signs in through replica `url` and checks the call was forwarded to `leader`.
async fn through_standby(url: &str, leader: &str) -> Coord {
    let ch = connect(url).await;
    let req = pb::SignInRequest { username: "admin".into(), password: ADMIN_PASSWORD.into() };
    let r =
        pb::auth_service_client::AuthServiceClient::new(ch.clone()).sign_in(req).await.expect("sign in via a standby");
    let to = r.metadata().get(fog_coordinator::ha::FORWARDED_TO).map(|v| v.to_str().unwrap().to_string());
    assert_eq!(to.as_deref(), Some(leader), "the standby at {url} forwarded the call to the leader");
    Coord::client(ch, r.into_inner().tokens.unwrap().access_token)
}

/// Through a standby: a submit, a read and a watch work (forwarded), and a
/// node session reaches the leader (whose validation refuses a bad hello).
async fn standby_forwards(url: &str, leader: &str, what: &str) {
    let via = through_standby(url, leader).await;
    let t = via.submit(echo(what)).await;
    let t = via.wait_state(&t.id, pb::TaskState::Succeeded).await;
    assert_eq!(t.output.unwrap().stdout, what.as_bytes());
    let mut watch = via.topology().watch_topology(fog_e2e::topology::status_detail()).await.unwrap().into_inner();
    let first = fog_e2e::topology::next(&mut watch).await;
    assert!(matches!(first.event, Some(pb::watch_topology_response::Event::Snapshot(_))), "{first:?}");
    let hello = pb::SessionRequest {
        msg: Some(pb::session_request::Msg::Hello(pb::Hello { node_id: "via-standby".into(), ..Default::default() })),
    };
    let err = pb::node_service_client::NodeServiceClient::new(connect(url).await)
        .session(tokio_stream::iter([hello]))
        .await
        .expect_err("a hello without capacity is refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "the leader's validation answered: {err:?}");
    assert!(err.message().contains("hello.capacity"), "{err:?}");
}

/// Waits until each of `nodes` has sent `k` more heartbeats.
async fn heartbeats(c: &Coord, nodes: &[&str], k: usize) {
    let beat = |n: pb::Node| n.last_heartbeat.map(|t| (t.seconds, t.nanos));
    for n in nodes {
        let mut last = beat(c.get_node(n).await);
        for _ in 0..k {
            last = eventually("a heartbeat arrives", DEADLINE, || async {
                let now = beat(c.get_node(n).await);
                (now != last).then_some(now)
            })
            .await;
        }
    }
}

fn third_of(a: usize, b: usize) -> usize {
    (0..3).find(|i| *i != a && *i != b).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_failover_loses_no_acknowledged_task_and_runs_none_twice() {
    let _serial = SERIAL.lock().await;
    let mut etcd = EtcdCluster::start(3).await;
    let mut replicas = Replicas::start(&etcd, 3).await;
    let (first, c) = replicas.leader(Duration::from_secs(30)).await;
    let states = tempfile::tempdir().unwrap();
    let mut agents: Vec<Agent> =
        (0..2).map(|i| agent(&replicas.urls, &format!("ha-{i}"), &states.path().join(i.to_string()))).collect();
    // An agent that can reach one standby only: its session is relayed.
    let standby = (first + 1) % 3;
    agents.push(agent(&replicas.urls[standby..=standby], "ha-relayed", &states.path().join("relayed")));
    c.wait_healthy(3).await;
    let nodes = ["ha-0", "ha-1", "ha-relayed"];
    let all: Vec<&String> = replicas.urls.iter().collect();
    let relayed_by = BTreeMap::from([("ha-relayed", replicas.urls[standby].as_str())]);
    sessions_recorded_by_their_replicas(&etcd, &c, &nodes, &relayed_by, &all).await;
    // Heartbeats stay out of etcd (KEP-589): while every node sends several,
    // with no session opening or closing, etcd's revision does not move. (A
    // first round lets the node records written at session open settle.)
    heartbeats(&c, &nodes, 3).await;
    let (_, before) = session_records(&etcd).await;
    heartbeats(&c, &nodes, 3).await;
    let (_, after) = session_records(&etcd).await;
    assert_eq!(after, before, "etcd's revision moved while the nodes only sent heartbeats");
    standby_forwards(&replicas.urls[standby], &replicas.urls[first], "through a standby").await;

    // Acknowledged tasks: some finish before the failover, some run through
    // it; the relayed agent takes its share.
    let mut acked = Vec::new();
    for i in 0..18 {
        let spec = if i % 2 == 0 { echo(&format!("quick {i}")) } else { sleep(1500) };
        acked.push(c.submit(spec).await.id);
    }
    let done_before: BTreeMap<String, u64> = eventually("a few tasks done before the failover", DEADLINE, || async {
        let mut done = BTreeMap::new();
        for id in &acked {
            let t = c.task(id).await;
            if t.state == pb::TaskState::Succeeded as i32 {
                done.insert(id.clone(), t.accepted_attempt);
            }
        }
        (done.len() >= 3).then_some(done)
    })
    .await;

    // The leader dies.
    replicas.procs[first].take().unwrap().kill();
    let killed = Instant::now();
    let (second, c) = replicas.leader(Duration::from_secs(5)).await;
    let took = killed.elapsed();
    assert_ne!(first, second);
    eprintln!("a new leader served {} ms after the old one was killed", took.as_millis());
    c.wait_healthy(3).await;
    // The dead leader's records went with its lease; the nodes it held are
    // recorded again by the replica each reconnected to.
    let live: Vec<&String> = [second, third_of(first, second)].iter().map(|i| &replicas.urls[*i]).collect();
    sessions_recorded_by_their_replicas(&etcd, &c, &nodes, &relayed_by, &live).await;
    // The remaining standby forwards to the new leader.
    let third = third_of(first, second);
    standby_forwards(&replicas.urls[third], &replicas.urls[second], "through a standby after the failover").await;
    let mut on_relayed = 0;
    for id in &acked {
        let t = c.wait_state(id, pb::TaskState::Succeeded).await;
        assert!(t.accepted_attempt > 0, "{id} has an accepted attempt");
        on_relayed += t
            .attempts
            .iter()
            .filter(|a| a.node_id == "ha-relayed" && a.state == pb::AttemptState::Succeeded as i32)
            .count();
        if let Some(before) = done_before.get(id) {
            assert_eq!(t.accepted_attempt, *before, "{id} finished before the failover and not again after");
        }
    }

    assert!(on_relayed > 0, "the agent behind a standby ran tasks");

    // An etcd member dies: the service continues (the leader keeps its lease through the
    // other members; a submit that meets the moment of the failure is retried with its
    // request id, so it is never applied twice).
    etcd.kill(0);
    let id = eventually("a submit is accepted after an etcd member died", DEADLINE, || async {
        let req =
            pb::SubmitTaskRequest { spec: Some(echo("after an etcd member died")), request_id: "after-kill".into() };
        match c.tasks().submit_task(req).await {
            Ok(r) => Some(r.into_inner().task.unwrap().id),
            Err(e) => {
                eprintln!("submit after the etcd member died: {e:?}");
                None
            }
        }
    })
    .await;
    let t = c.wait_state(&id, pb::TaskState::Succeeded).await;
    assert_eq!(t.output.unwrap().stdout, b"after an etcd member died");
    assert_eq!(replicas.leader(DEADLINE).await.0, second, "the leader kept its leadership");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_is_deposed_its_writes_are_refused_and_it_steps_down() {
    let _serial = SERIAL.lock().await;
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let etcd = EtcdCluster::start(1).await;
    let mut replicas = Replicas::start(&etcd, 2).await;
    let (first, _) = replicas.leader(Duration::from_secs(30)).await;
    let pid = Pid::from_raw(replicas.procs[first].as_ref().unwrap().pid() as i32);
    kill(pid, Signal::SIGSTOP).unwrap();
    // Its lease runs out; the other replica takes over and writes.
    let (second, c) = replicas.leader(Duration::from_secs(10)).await;
    assert_ne!(first, second);
    let t = c.submit(echo("written by the new leader")).await;
    // The old leader wakes up: its lease is gone, any write it tries is fenced, and it exits 75.
    kill(pid, Signal::SIGCONT).unwrap();
    let old = replicas.procs[first].as_mut().unwrap();
    let code = eventually("the deposed leader steps down", DEADLINE, || {
        let code = old.exit_code();
        async move { code }
    })
    .await;
    assert_eq!(code, fog_coordinator::ha::EXIT_LOST_LEADERSHIP);
    // The new leader's state is intact.
    assert_eq!(c.task(&t.id).await.id, t.id);
}

/// One in-process replica (`--ha` on etcd) with mTLS on `port`, until the test ends.
fn tls_replica(etcd: &EtcdCluster, port: u16, dir: &std::path::Path) -> tokio::task::JoinHandle<i32> {
    let mut cfg = fog_coordinator::config::Config::for_tls_tests(dir.to_path_buf());
    cfg.listen = format!("127.0.0.1:{port}").parse().unwrap();
    cfg.store =
        fog_coordinator::config::StoreChoice::Etcd { endpoints: etcd.endpoints(), prefix: PREFIX.into(), tls: None };
    cfg.ha = true;
    cfg.advertise_url = format!("https://127.0.0.1:{port}");
    tokio::spawn(fog_coordinator::ha::run(cfg, std::future::pending()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_mtls_a_standby_forwards_calls_to_the_leader_it_verifies() {
    let _serial = SERIAL.lock().await;
    init_logs();
    let etcd = EtcdCluster::start(1).await;
    let store = fog_coordinator::store::EtcdStore::connect(&etcd.endpoints(), PREFIX, None).await.unwrap();
    fog_coordinator::auth::bootstrap::create_user_in(&store, "admin", ADMIN_PASSWORD, Role::Admin).await.unwrap();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let ports = [free_port(), free_port()];
    // The first replica leads and creates the cluster CA; the second starts
    // once the CA exists, as a standby.
    let first = tls_replica(&etcd, ports[0], dirs[0].path());
    let ca_file = dirs[0].path().join(fog_coordinator::server::CA_FILE);
    let ca = eventually("the leader wrote the cluster CA", Duration::from_secs(30), || async {
        std::fs::read_to_string(&ca_file).ok()
    })
    .await;
    let leader = format!("https://127.0.0.1:{}", ports[0]);
    fog_e2e::process::sign_in(&leader, Some(&ca), "admin", ADMIN_PASSWORD).await;
    let second = tls_replica(&etcd, ports[1], dirs[1].path());

    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", ports[1]).parse().unwrap();
    let signed_in = eventually("sign in through the standby", DEADLINE, || async {
        let ch = tokio::time::timeout(Duration::from_secs(2), async {
            tonic::transport::Endpoint::from_shared(format!("https://{addr}"))
                .ok()?
                .tls_config(
                    tonic::transport::ClientTlsConfig::new()
                        .ca_certificate(tonic::transport::Certificate::from_pem(&ca))
                        .domain_name("localhost"),
                )
                .ok()?
                .connect()
                .await
                .ok()
        })
        .await
        .ok()??;
        let req = pb::SignInRequest { username: "admin".into(), password: ADMIN_PASSWORD.into() };
        let r = pb::auth_service_client::AuthServiceClient::new(ch.clone()).sign_in(req).await.ok()?;
        Some((ch, r))
    })
    .await;
    let (ch, r) = signed_in;
    let to = r.metadata().get(fog_coordinator::ha::FORWARDED_TO).map(|v| v.to_str().unwrap().to_string());
    assert_eq!(to.as_deref(), Some(leader.as_str()), "forwarded over TLS to the leader");
    let via = Coord::client(ch, r.into_inner().tokens.unwrap().access_token);
    let t = via.submit(echo("over mTLS through a standby")).await;
    assert_eq!(via.task(&t.id).await.id, t.id);
    // A call without a token is refused by the leader, not let through by the standby.
    let anonymous = pb::task_service_client::TaskServiceClient::new(tls_channel(addr, &ca, None).await)
        .list_tasks(pb::ListTasksRequest::default())
        .await
        .expect_err("the leader authenticates forwarded calls");
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated, "{anonymous:?}");

    // An agent joins and runs through the standby only: the leader sees the
    // node's own certificate (forwarded by the replica) and gives it work.
    let token = via
        .fleet()
        .create_join_token(pb::CreateJoinTokenRequest { ttl_seconds: 0, node_name: "relayed".into(), labels: vec![] })
        .await
        .expect("a join token through the standby")
        .into_inner()
        .token;
    let standby_url = format!("https://127.0.0.1:{}", ports[1]);
    let state = dirs[1].path().join("agent");
    let out = Command::new(binary("fog-agent"))
        .args(["join", "--token", &token, "--coordinator", &standby_url])
        .arg("--state-dir")
        .arg(&state)
        .output()
        .expect("run fog-agent join");
    assert!(out.status.success(), "join through a standby: {}", String::from_utf8_lossy(&out.stderr));
    let node_id = std::fs::read_to_string(state.join(fog_agent::identity::NODE_ID_FILE)).unwrap().trim().to_string();
    let _agent = Agent(
        Command::new(binary("fog-agent"))
            .arg("run")
            .arg("--state-dir")
            .arg(&state)
            .args(["--reconnect-min", "50ms", "--reconnect-max", "500ms"])
            .env("FOG_AGENT_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn fog-agent"),
    );
    eventually("the relayed node is healthy at the leader", DEADLINE, || async {
        let n = via.fleet().get_node(pb::GetNodeRequest { node_id: node_id.clone() }).await.ok()?.into_inner().node?;
        (n.liveness == pb::Liveness::Healthy as i32).then_some(())
    })
    .await;
    let done = via.wait_state(&t.id, pb::TaskState::Succeeded).await;
    assert_eq!(done.attempts[0].node_id, node_id, "the queued task ran on the relayed node");

    // From anyone but a replica the header means nothing: a node connecting
    // to the leader itself is who its own certificate says.
    let cert = std::fs::read_to_string(state.join(fog_agent::identity::CERT_FILE)).unwrap();
    let key = std::fs::read_to_string(state.join(fog_agent::identity::KEY_FILE)).unwrap();
    let leader_addr = format!("127.0.0.1:{}", ports[0]).parse().unwrap();
    let hello = pb::SessionRequest {
        msg: Some(pb::session_request::Msg::Hello(pb::Hello { node_id: "someone-else".into(), ..Default::default() })),
    };
    let mut req = tonic::Request::new(tokio_stream::iter([hello]));
    req.metadata_mut().insert(fog_coordinator::identity::FORWARDED_CLIENT_CERT, "not-a-certificate".parse().unwrap());
    let err = pb::node_service_client::NodeServiceClient::new(tls_channel(leader_addr, &ca, Some((&cert, &key))).await)
        .session(req)
        .await
        .expect_err("a node cannot claim another identity with the header");
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains(&format!("this certificate is node {node_id}")), "{err:?}");
    first.abort();
    second.abort();
}
