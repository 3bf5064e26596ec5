//! Coordinators on etcd with leader election: three replicas on a
//! three-member etcd cluster, real fog-agent processes that know every
//! replica's address, tasks in flight. Kill the leader: a standby serves
//! within 5 s, the agents reconnect, and no acknowledged task is lost or
//! completed twice. Kill an etcd member: service continues. Pause a leader
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
        let store = fog_coordinator::store::EtcdStore::connect(&etcd.endpoints(), PREFIX).await.unwrap();
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

    /// The replica that serves (signs in), waiting up to `deadline`.
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
                if let Ok(r) = pb::auth_service_client::AuthServiceClient::new(ch.clone()).sign_in(req).await {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_failover_loses_no_acknowledged_task_and_runs_none_twice() {
    let _serial = SERIAL.lock().await;
    let mut etcd = EtcdCluster::start(3).await;
    let mut replicas = Replicas::start(&etcd, 3).await;
    let (first, c) = replicas.leader(Duration::from_secs(30)).await;
    let states = tempfile::tempdir().unwrap();
    let _agents: Vec<Agent> =
        (0..2).map(|i| agent(&replicas.urls, &format!("ha-{i}"), &states.path().join(i.to_string()))).collect();
    c.wait_healthy(2).await;

    // Acknowledged tasks: some finish before the failover, some run through it.
    let mut acked = Vec::new();
    for i in 0..12 {
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
    c.wait_healthy(2).await;
    for id in &acked {
        let t = c.wait_state(id, pb::TaskState::Succeeded).await;
        assert!(t.accepted_attempt > 0, "{id} has an accepted attempt");
        if let Some(before) = done_before.get(id) {
            assert_eq!(t.accepted_attempt, *before, "{id} finished before the failover and not again after");
        }
    }

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
