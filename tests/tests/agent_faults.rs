//! Agent faults with a recorded history (after etcd's robustness tests and
//! Nomad's client-state tests), with real `fog-agent` processes:
//! - agent SIGKILL mid-task, `FOG_FAULT_ROUNDS` rounds (10 by default) under
//!   a constant submit load;
//! - a silent partition (the agent frozen with SIGSTOP: its TCP connection
//!   stays open and says nothing) detected within the configured grace, and
//!   the partition healing (SIGCONT) without a second accepted result;
//! - the agent's disk full, and its state directory made read-only: the agent
//!   says so in its heartbeats, gets no new work, refuses an attempt it
//!   cannot record, keeps its state intact, and takes work again once a
//!   write succeeds.
//!
//! Every task is an `exec` that appends `start`/`end` lines with its task id
//! and attempt number (`FOG_TASK_ID`, `FOG_ATTEMPT`: the attempt number is the
//! fencing token) to a journal, and prints its marker and attempt. Checked
//! over the whole history:
//! - every acknowledged task reaches exactly one accepted terminal result: it
//!   succeeds, with exactly one successful attempt, whose output is its own;
//! - no attempt number of a task ever started twice (no two runs under one
//!   fencing token), and the accepted attempt ran to its end;
//! - through the agent kills, a topology watch opened before them is
//!   ordered, has no gaps (its view equals `GetTopology` at one revision),
//!   and a watch resumed from revisions it handed out sees the same events.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fog_e2e::disk::{ReadOnly, SmallDisk};
use fog_e2e::process::AgentProcess;
use fog_e2e::topology::{View, status_detail, status_view, watch};
use fog_e2e::*;
use fog_proto::v1 as pb;
use fog_proto::v1::watch_topology_response::Event;
use tokio_stream::StreamExt;

/// Real agents on one in-process coordinator, a journal the tasks write.
struct Fleet {
    coord: Coord,
    agents: Vec<AgentProcess>,
    /// Where the agents' state directories are.
    state_root: PathBuf,
    /// A small disk holding the state directories, if any.
    disk: Option<SmallDisk>,
    journal: PathBuf,
    dirs: tempfile::TempDir,
}

impl Fleet {
    /// Two agents.
    async fn start(heartbeat: Duration) -> Fleet {
        Fleet::start_n(heartbeat, 2, None).await
    }

    /// `n` agents, their state on a small disk of `disk_size` if given.
    async fn start_n(heartbeat: Duration, n: usize, disk_size: Option<&str>) -> Fleet {
        let coord = Coord::start_with(|c| {
            c.liveness.heartbeat_interval_ms = heartbeat.as_millis() as u64;
            c.liveness.suspect_after_ms = 2 * heartbeat.as_millis() as u64;
            c.liveness.offline_grace_ms = 3 * heartbeat.as_millis() as u64;
            // Killing an agent again and again is the test, not flapping to avoid.
            c.liveness.flap_threshold = 1_000;
        })
        .await;
        let dirs = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dirs.path().join("sys")).unwrap();
        let journal = dirs.path().join("journal");
        let disk = disk_size.map(|size| SmallDisk::mount(&dirs.path().join("disk"), size));
        let state_root = disk.as_ref().map_or_else(|| dirs.path().to_path_buf(), |d| d.path().to_path_buf());
        let mut fleet = Fleet { coord, agents: Vec::new(), state_root, disk, journal, dirs };
        for i in 0..n {
            let a = fleet.spawn(i);
            fleet.agents.push(a);
        }
        fleet.coord.wait_healthy(n).await;
        fleet
    }

    fn url(&self) -> String {
        format!("http://{}", self.coord.running.as_ref().expect("running").addr)
    }

    fn node(i: usize) -> String {
        format!("edge-{i}")
    }

    fn state_dir(&self, i: usize) -> PathBuf {
        self.state_root.join(format!("state-{i}"))
    }

    /// Starts agent `i` on its own (kept) state directory.
    fn spawn(&self, i: usize) -> AgentProcess {
        AgentProcess::start(&self.url(), &Self::node(i), &self.state_dir(i), &self.dirs.path().join("sys"), &[])
    }

    /// A task that journals its start and end, runs `ms`, and prints
    /// `<marker> <attempt>`.
    fn task(&self, marker: &str, ms: u64) -> pb::TaskSpec {
        let script = format!(
            "echo \"start $FOG_TASK_ID $FOG_ATTEMPT\" >> \"$1\"; sleep {}; \
             echo \"end $FOG_TASK_ID $FOG_ATTEMPT\" >> \"$1\"; echo \"$2 $FOG_ATTEMPT\"",
            ms as f64 / 1000.0
        );
        pb::TaskSpec {
            name: marker.into(),
            workload: Some(pb::task_spec::Workload::Exec(pb::ExecTask {
                command: "/bin/sh".into(),
                args: vec!["-c".into(), script, "sh".into(), self.journal.display().to_string(), marker.into()],
                ..Default::default()
            })),
            resources: Some(pb::Resources { cpu_millis: 100, memory_mb: 0, storage_mb: 0, gpus: 0 }),
            // Only a lost node sends a task back to the queue.
            max_retries: Some(0),
            ..Default::default()
        }
    }

    async fn attempts_on(&self, node: &str) -> u32 {
        self.coord.get_node(node).await.active_tasks
    }

    /// Waits until node `i` reports its state directory (un)writable.
    async fn wait_unwritable(&self, i: usize, unwritable: bool) {
        let node = Self::node(i);
        eventually(&format!("{node} reports state_unwritable = {unwritable}"), DEADLINE, || async {
            (self.coord.get_node(&node).await.state_unwritable == unwritable).then_some(())
        })
        .await;
    }

    /// Why the placement of task `id` rejects node `i` now.
    async fn rejected_because(&self, id: &str, i: usize) -> Vec<String> {
        let req = pb::ExplainPlacementRequest { task_id: id.into(), ..Default::default() };
        let explained = self.coord.tasks().explain_placement(req).await.expect("explain").into_inner();
        explained.rejected.into_iter().find(|r| r.node_id == Self::node(i)).map(|r| r.reasons).unwrap_or_default()
    }

    /// Temporary files left in agent `i`'s attempts directory.
    fn leftovers(&self, i: usize) -> Vec<String> {
        let dir = self.state_dir(i).join("attempts");
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with(".tmp-"))
            .collect()
    }
}

/// The journal: how many times each (task, attempt) started and ended.
fn read_journal(path: &Path) -> BTreeMap<(String, u64), (u32, u32)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out: BTreeMap<(String, u64), (u32, u32)> = BTreeMap::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        let [what, task, attempt] = parts[..] else { panic!("torn journal line {line:?}") };
        let e = out.entry((task.to_string(), attempt.parse().expect("attempt number"))).or_default();
        match what {
            "start" => e.0 += 1,
            "end" => e.1 += 1,
            _ => panic!("bad journal line {line:?}"),
        }
    }
    out
}

/// Checks the invariants over every acknowledged task; returns the tasks.
async fn check_history(fleet: &Fleet, acked: &BTreeMap<String, String>) -> Vec<pb::Task> {
    let mut done = Vec::new();
    for (marker, id) in acked {
        let t = succeeded_once(&fleet.coord.tasks(), id, Duration::from_secs(60)).await;
        let out = String::from_utf8_lossy(&t.output.as_ref().expect("output").stdout).to_string();
        assert_eq!(out, format!("{marker} {}\n", t.accepted_attempt), "{id}: the accepted output is its own");
        done.push(t);
    }
    let journal = read_journal(&fleet.journal);
    for ((task, attempt), (starts, _)) in &journal {
        assert!(*starts <= 1, "attempt {attempt} of {task} started {starts} times (one fencing token, two runs)");
    }
    for t in &done {
        let (starts, ends) = journal.get(&(t.id.clone(), t.accepted_attempt)).copied().unwrap_or_default();
        assert_eq!(
            (starts, ends),
            (1, 1),
            "the accepted attempt {} of {} ran once, to its end",
            t.accepted_attempt,
            t.id
        );
    }
    done
}

/// Every message of a NODE_STATUS topology watch opened at `start`.
struct WatchRecorder {
    messages: Arc<Mutex<Vec<pb::WatchTopologyResponse>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WatchRecorder {
    async fn start(c: &Coord) -> WatchRecorder {
        let mut stream = watch(c, status_detail()).await;
        let messages: Arc<Mutex<Vec<pb::WatchTopologyResponse>>> = Arc::default();
        let sink = messages.clone();
        let task = tokio::spawn(async move {
            while let Some(Ok(m)) = stream.next().await {
                sink.lock().unwrap().push(m);
            }
        });
        WatchRecorder { messages, task }
    }

    /// Checks the recorded history; returns (resumed, resynced) counts of the
    /// resume checks.
    async fn check(self, c: &Coord) -> (usize, usize) {
        let got = c.topology().get_topology(pb::GetTopologyRequest { include_nodes: true }).await.unwrap();
        let got = got.into_inner();
        let target = got.revision;
        // A change after `target`, so the watch moves past it.
        let req = pb::SetMaintenanceRequest { node_id: Fleet::node(0), maintenance: true };
        c.fleet().set_maintenance(req).await.unwrap();
        eventually("the recorded watch passes GetTopology's revision", DEADLINE, || async {
            self.messages.lock().unwrap().iter().any(|m| m.revision > target).then_some(())
        })
        .await;
        self.task.abort();
        let messages = self.messages.lock().unwrap().clone();

        // Ordered, and no gaps: every change has its own, higher revision, and
        // the view built from the messages alone is GetTopology's at `target`.
        let mut view = View::default();
        let mut last_change = 0;
        for m in messages.iter().filter(|m| m.revision <= target) {
            if matches!(m.event, Some(Event::Node(_)) | Some(Event::Aggregates(_))) {
                assert!(m.revision > last_change, "change at {} after {last_change}", m.revision);
                last_change = m.revision;
            }
            view.apply(m.clone());
        }
        assert_eq!(view.resyncs, [pb::SnapshotReason::Initial as i32], "one snapshot, then deltas only");
        assert_eq!(view.epoch, got.epoch);
        assert_eq!(status_view(view.nodes.into_values()), status_view(got.nodes), "node view at {target}");
        assert_eq!(view.aggregates, got.aggregates, "aggregates at {target}");

        // Resumable from revisions it handed out: the same changes after them.
        let changes: Vec<(u64, Event)> = messages
            .iter()
            .filter(|m| m.revision <= target)
            .filter_map(|m| match &m.event {
                Some(e @ (Event::Node(_) | Event::Aggregates(_))) => Some((m.revision, e.clone())),
                _ => None,
            })
            .collect();
        let node_revisions: Vec<u64> =
            changes.iter().filter(|(_, e)| matches!(e, Event::Node(_))).map(|(r, _)| *r).collect();
        assert!(node_revisions.len() >= 10, "the faults changed nodes: {node_revisions:?}");
        let (mut resumed, mut resynced) = (0, 0);
        for k in 1..=5 {
            let from = node_revisions[(node_revisions.len() - 1) * k / 6];
            let expected: Vec<&(u64, Event)> = changes.iter().filter(|(r, _)| *r > from).collect();
            let last = expected.last().map_or(from, |(r, _)| *r);
            let req = pb::WatchTopologyRequest {
                detail: pb::TopologyDetail::NodeStatus as i32,
                resume_revision: from,
                epoch: got.epoch.clone(),
                ..Default::default()
            };
            let mut w = watch(c, req).await;
            let mut seen = Vec::new();
            let mut too_old = false;
            while seen.last().is_none_or(|(r, _)| *r < last) {
                let m = fog_e2e::topology::next(&mut w).await;
                if let Some(Event::Snapshot(_)) = &m.event {
                    // Allowed only first, as an explicit resync of a revision too old to keep.
                    assert!(seen.is_empty(), "no snapshot in the middle of a resumed watch");
                    assert_eq!(m.snapshot_reason, pb::SnapshotReason::ResyncTooOld as i32);
                    too_old = true;
                    break;
                }
                assert!(m.revision > from, "resumed after {from}, got {}", m.revision);
                if m.revision > last {
                    break;
                }
                if let Some(e @ (Event::Node(_) | Event::Aggregates(_))) = m.event {
                    seen.push((m.revision, e));
                }
            }
            if too_old {
                resynced += 1;
                continue;
            }
            let expected: Vec<(u64, Event)> = expected.into_iter().cloned().collect();
            assert_eq!(seen, expected, "a watch resumed at {from} sees what the first one saw after it");
            resumed += 1;
        }
        (resumed, resynced)
    }
}

/// Submits as the client saw them: request id, and the task id if acknowledged.
type Submits = Vec<(String, Option<String>)>;

fn rounds(default: usize) -> usize {
    std::env::var("FOG_FAULT_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_sigkill_rounds_mid_task_lose_nothing_and_never_run_an_attempt_twice() {
    init_logs();
    let rounds = rounds(10);
    let mut fleet = Fleet::start(Duration::from_millis(100)).await;
    let watch = WatchRecorder::start(&fleet.coord).await;

    // The load: a submit every 80 ms, each recorded (the coordinator stays
    // up, but a submit that errs would still count as "may have happened").
    let history: Arc<Mutex<Submits>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (history, stop, tasks) = (history.clone(), stop.clone(), fleet.coord.tasks());
        let specs: Vec<_> = (0..2000).map(|i| (format!("k-{i:04}"), fleet.task(&format!("k-{i:04}"), 400))).collect();
        tokio::spawn(async move {
            for (rid, spec) in specs {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let mut req = tonic::Request::new(pb::SubmitTaskRequest { spec: Some(spec), request_id: rid.clone() });
                req.set_timeout(Duration::from_secs(5));
                let id = tasks.clone().submit_task(req).await.ok().and_then(|r| r.into_inner().task).map(|t| t.id);
                history.lock().unwrap().push((rid, id));
                tokio::time::sleep(Duration::from_millis(80)).await;
            }
        })
    };

    let mut back_in = Vec::new();
    for round in 0..rounds {
        let i = round % 2;
        let node = Fleet::node(i);
        // Mid-task: wait until the victim runs something.
        eventually(&format!("{node} runs a task"), DEADLINE, || async {
            (fleet.attempts_on(&node).await > 0).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(50 + (round as u64 * 97) % 200)).await;
        fleet.agents[i].kill();
        let killed = Instant::now();
        fleet.agents[i] = fleet.spawn(i);
        eventually(&format!("{node} is back"), DEADLINE, || async {
            let n = fleet.coord.get_node(&node).await;
            let back = n.liveness == pb::Liveness::Healthy as i32
                && n.last_heartbeat.is_some_and(|t| {
                    std::time::SystemTime::try_from(t).is_ok_and(|t| t.elapsed().is_ok_and(|e| e < killed.elapsed()))
                });
            back.then_some(())
        })
        .await;
        back_in.push(killed.elapsed().as_millis() as u64);
    }
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();

    // Resolve any "may have happened" submit by retrying its request id.
    let history = history.lock().unwrap().clone();
    let mut acked = BTreeMap::new();
    for (rid, id) in &history {
        let id = match id {
            Some(id) => id.clone(),
            None => fleet.coord.submit_with_request_id(fleet.task(rid, 400), rid).await.id,
        };
        acked.insert(rid.clone(), id);
    }
    let done = check_history(&fleet, &acked).await;
    let lost: usize =
        done.iter().map(|t| t.attempts.iter().filter(|a| a.state == pb::AttemptState::Lost as i32).count()).sum();
    assert!(lost >= rounds, "every kill interrupted at least one attempt: {lost} lost attempts in {rounds} rounds");
    let (resumed, resynced) = watch.check(&fleet.coord).await;
    assert!(resumed >= 1, "the recent revisions resume");
    back_in.sort_unstable();
    eprintln!(
        "fault: agent SIGKILL mid-task x{rounds}: {} tasks acknowledged, {lost} attempts interrupted and re-run, \
         lost 0, duplicates 0, no attempt started twice; agent serving again after p50 {} ms, max {} ms; \
         topology watch ordered and gap-free through the kills, resumed from {resumed} of its revisions with the \
         same events ({resynced} explicitly resynced as too old)",
        done.len(),
        back_in[back_in.len() / 2],
        back_in[back_in.len() - 1],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_partition_is_detected_within_the_grace_and_healing_it_adds_no_second_result() {
    init_logs();
    let rounds = rounds(3);
    let heartbeat = Duration::from_millis(200);
    // Suspect 2 intervals after the last heartbeat, offline (the grace) 3
    // intervals after it (`Fleet::start`).
    let grace = 3 * heartbeat;
    let fleet = Fleet::start(heartbeat).await;
    let (victim, other) = (Fleet::node(0), Fleet::node(1));
    let mut acked = BTreeMap::new();
    let mut detections = Vec::new();
    for round in 0..rounds {
        // Pin the task on the victim: the other node is cordoned meanwhile.
        fleet.coord.fleet().cordon_node(pb::CordonNodeRequest { node_id: other.clone() }).await.unwrap();
        let marker = format!("p-{round}");
        let t = fleet.coord.submit(fleet.task(&marker, 1_500)).await;
        let running = fleet.coord.wait_state(&t.id, pb::TaskState::Running).await;
        assert_eq!(running.attempts[0].node_id, victim);
        fleet.coord.fleet().uncordon_node(pb::UncordonNodeRequest { node_id: other.clone() }).await.unwrap();
        acked.insert(marker, t.id.clone());

        fleet.agents[0].pause();
        let paused = Instant::now();
        // The coordinator declares the attempt lost and runs it elsewhere.
        let lost = eventually("the partitioned attempt is declared lost", DEADLINE, || async {
            let t = fleet.coord.task(&t.id).await;
            (t.attempts[0].state == pb::AttemptState::Lost as i32).then_some(t)
        })
        .await;
        let node = fleet.coord.get_node(&victim).await;
        assert_ne!(node.liveness, pb::Liveness::Healthy as i32, "a silent node is not healthy");
        // Detection on the coordinator's own clock: last heartbeat to loss.
        let last = std::time::SystemTime::try_from(node.last_heartbeat.unwrap()).unwrap();
        let at = std::time::SystemTime::try_from(lost.attempts[0].finished_at.unwrap()).unwrap();
        let detected = at.duration_since(last).unwrap_or_default();
        // The sweep runs every quarter interval; the slack is for a loaded
        // 2-core machine delaying the engine, not for the detector.
        assert!(
            detected <= grace + 4 * heartbeat,
            "detected {detected:?} after the last heartbeat; the configured grace is {grace:?}"
        );
        detections.push((detected.as_millis() as u64, paused.elapsed().as_millis() as u64));
        let t2 = fleet.coord.wait_state(&t.id, pb::TaskState::Succeeded).await;
        assert_eq!(t2.accepted_attempt, 2, "{t2:?}");
        assert_eq!(t2.attempts[1].node_id, other);

        // Heal: the frozen agent wakes, its attempt 1 ends and reports.
        fleet.agents[0].resume();
        eventually("the healed node is healthy again", DEADLINE, || async {
            let n = fleet.coord.get_node(&victim).await;
            (n.liveness == pb::Liveness::Healthy as i32).then_some(())
        })
        .await;
        eventually("the healed agent's late result is acknowledged and forgotten", DEADLINE, || async {
            fleet.agents[0].pending().is_empty().then_some(())
        })
        .await;
        let after = fleet.coord.task(&t.id).await;
        assert_eq!(after.state, pb::TaskState::Succeeded as i32);
        assert_eq!(after.accepted_attempt, 2, "the late result did not replace the accepted one: {after:?}");
        assert_eq!(after.attempts[0].state, pb::AttemptState::Lost as i32, "{after:?}");
        assert_eq!(after.output.unwrap().stdout, format!("p-{round} 2\n").as_bytes());
    }
    // The healed node takes work again.
    fleet.coord.fleet().cordon_node(pb::CordonNodeRequest { node_id: other.clone() }).await.unwrap();
    let t = fleet.coord.submit(fleet.task("after-heal", 10)).await;
    let t = fleet.coord.wait_state(&t.id, pb::TaskState::Succeeded).await;
    assert_eq!(t.attempts[0].node_id, victim);
    acked.insert("after-heal".into(), t.id.clone());
    check_history(&fleet, &acked).await;
    detections.sort_unstable();
    eprintln!(
        "fault: silent agent partition (SIGSTOP) x{rounds}, heartbeat {heartbeat:?}, grace {grace:?}: declared lost \
         {:?} ms after the last heartbeat (wall clock after the pause: {:?} ms); healed with no second accepted \
         result, lost 0, duplicates 0",
        detections.iter().map(|d| d.0).collect::<Vec<_>>(),
        detections.iter().map(|d| d.1).collect::<Vec<_>>(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_new_work_keeps_the_state_intact_and_recovers_when_space_is_freed() {
    init_logs();
    let mut fleet = Fleet::start_n(Duration::from_millis(100), 1, Some("8m")).await;
    let long = fleet.coord.submit(fleet.task("full-long", 1_500)).await;
    fleet.coord.wait_state(&long.id, pb::TaskState::Running).await;

    let fill = fleet.disk.as_ref().expect("disk").fill();
    let filled = Instant::now();
    fleet.wait_unwritable(0, true).await;
    let flagged = filled.elapsed();
    // New work waits: the only node is rejected for its storage.
    let queued = fleet.coord.submit(fleet.task("full-queued", 10)).await;
    let reasons = fleet.rejected_because(&queued.id, 0).await;
    assert!(reasons.iter().any(|r| r.starts_with("storage:")), "{reasons:?}");
    // The attempt that was running finishes; its result cannot be written
    // to disk and is delivered from memory.
    let long = fleet.coord.wait_state(&long.id, pb::TaskState::Succeeded).await;
    assert_eq!(long.accepted_attempt, 1);
    assert_eq!(fleet.coord.task(&queued.id).await.state, pb::TaskState::Queued as i32);
    assert!(fleet.leftovers(0).is_empty(), "failed writes leave nothing: {:?}", fleet.leftovers(0));

    // Space is freed: the agent takes work again.
    std::fs::remove_file(&fill).unwrap();
    let freed = Instant::now();
    fleet.wait_unwritable(0, false).await;
    let recovered = freed.elapsed();
    fleet.coord.wait_state(&queued.id, pb::TaskState::Succeeded).await;

    // The state on disk is intact: a restarted agent opens it, holds nothing
    // unacknowledged, and works.
    fleet.agents[0].kill();
    fleet.agents[0] = fleet.spawn(0);
    fleet.coord.wait_healthy(1).await;
    let after = fleet.coord.submit(fleet.task("full-after", 10)).await;
    fleet.coord.wait_state(&after.id, pb::TaskState::Succeeded).await;
    eventually("acknowledged results forgotten", DEADLINE, || async {
        fleet.agents[0].pending().is_empty().then_some(())
    })
    .await;
    let acked = [("full-long", long.id), ("full-queued", queued.id), ("full-after", after.id)];
    check_history(&fleet, &acked.into_iter().map(|(m, id)| (m.to_string(), id)).collect()).await;
    eprintln!(
        "fault: agent disk full: flagged in {} ms, new work held, the running attempt's result delivered; \
         taking work again {} ms after space was freed; state intact across a restart",
        flagged.as_millis(),
        recovered.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_the_agent_cannot_record_is_refused_and_placed_again_once_it_can() {
    init_logs();
    let fleet = Fleet::start_n(Duration::from_millis(100), 1, None).await;
    let attempts = fleet.state_dir(0).join("attempts");
    let read_only = ReadOnly::set(&attempts);
    let mut spec = fleet.task("ro-agent", 10);
    spec.max_retries = Some(1);
    let t = fleet.coord.submit(spec).await;
    // The write of the attempt's record fails: the attempt is refused, not run.
    let refused = eventually("the first attempt is refused", DEADLINE, || async {
        let t = fleet.coord.task(&t.id).await;
        let ended = t.attempts.first().is_some_and(|a| a.state != pb::AttemptState::Assigned as i32);
        ended.then_some(t)
    })
    .await;
    let a = &refused.attempts[0];
    assert!(a.error.contains("cannot write its state directory"), "{a:?}");
    fleet.wait_unwritable(0, true).await;
    let reasons = fleet.rejected_because(&t.id, 0).await;
    assert!(reasons.iter().any(|r| r.starts_with("storage:")), "{reasons:?}");
    assert_eq!(fleet.coord.task(&t.id).await.attempts.len(), 1, "no new attempt while it cannot write");

    drop(read_only);
    fleet.wait_unwritable(0, false).await;
    let done = fleet.coord.wait_state(&t.id, pb::TaskState::Succeeded).await;
    assert_eq!(done.accepted_attempt, 2, "{done:?}");
    check_history(&fleet, &[("ro-agent".to_string(), t.id)].into_iter().collect()).await;
    let journal = read_journal(&fleet.journal);
    assert!(!journal.contains_key(&(done.id.clone(), 1)), "the refused attempt never ran: {journal:?}");
}
