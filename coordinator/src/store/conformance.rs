//! The behaviour every [`Store`] backend must have, as one async test suite
//! that each backend's tests run against a fresh, empty store (the redb
//! backend here, etcd later). Failures panic with a message naming the rule,
//! like assertions: this module is test support, compiled in so that other
//! crates' tests can reuse it.

use super::{Mutation, Snapshot, Store};
use fog_proto::v1::{Node, Task};

fn task(id: &str, retries: u32) -> Task {
    Task { id: id.into(), retries_used: retries, error: format!("e-{id}"), ..Default::default() }
}

fn node(id: &str, name: &str) -> Node {
    Node { id: id.into(), name: name.into(), flapping: true, ..Default::default() }
}

async fn load(store: &dyn Store) -> Snapshot {
    store.load().await.unwrap_or_else(|e| panic!("[{}] load failed: {e}", store.backend()))
}

async fn commit(store: &dyn Store, batch: Vec<Mutation>) {
    store.commit(batch).await.unwrap_or_else(|e| panic!("[{}] commit failed: {e}", store.backend()));
}

/// Deletes everything, so each check starts empty.
async fn clear(store: &dyn Store) {
    let s = load(store).await;
    let mut batch: Vec<Mutation> = s.tasks.into_iter().map(|t| Mutation::DeleteTask(t.id)).collect();
    batch.extend(s.nodes.into_iter().map(|n| Mutation::DeleteNode(n.id)));
    batch.extend(s.meta.into_iter().map(|(k, _)| Mutation::DeleteMeta(k)));
    // At most what the writer commits at once (a task delete is two etcd operations).
    for chunk in batch.chunks(4096) {
        commit(store, chunk.to_vec()).await;
    }
    assert_eq!(load(store).await, Snapshot::default(), "[{}] clear left data behind", store.backend());
}

/// Runs every check in turn. `store` must be empty; it is left empty.
pub async fn run_all(store: &dyn Store) {
    let b = store.backend();
    assert_eq!(load(store).await, Snapshot::default(), "[{b}] conformance needs an empty store");
    round_trip(store).await;
    clear(store).await;
    overwrite(store).await;
    clear(store).await;
    delete(store).await;
    clear(store).await;
    meta(store).await;
    clear(store).await;
    order_within_a_batch(store).await;
    clear(store).await;
    batch_is_atomic(store).await;
    clear(store).await;
    empty_batch(store).await;
    clear(store).await;
    large_batch(store).await;
    clear(store).await;
    finished_tasks(store).await;
    clear(store).await;
}

/// What is committed is loaded back, equal, sorted by key.
pub async fn round_trip(store: &dyn Store) {
    let b = store.backend();
    commit(
        store,
        vec![Mutation::PutTask(task("t2", 2)), Mutation::PutTask(task("t1", 1)), Mutation::PutNode(node("n1", "gw"))],
    )
    .await;
    let s = load(store).await;
    assert_eq!(s.tasks, vec![task("t1", 1), task("t2", 2)], "[{b}] round trip of tasks");
    assert_eq!(s.nodes, vec![node("n1", "gw")], "[{b}] round trip of nodes");
    assert!(s.meta.is_empty(), "[{b}] no meta was written");
}

/// A put of an existing id replaces it.
pub async fn overwrite(store: &dyn Store) {
    let b = store.backend();
    commit(store, vec![Mutation::PutTask(task("t1", 1)), Mutation::PutNode(node("n1", "old"))]).await;
    commit(store, vec![Mutation::PutTask(task("t1", 5)), Mutation::PutNode(node("n1", "new"))]).await;
    let s = load(store).await;
    assert_eq!(s.tasks, vec![task("t1", 5)], "[{b}] overwrite of a task");
    assert_eq!(s.nodes, vec![node("n1", "new")], "[{b}] overwrite of a node");
}

/// Deletes remove exactly their key; deleting a missing key is not an error.
pub async fn delete(store: &dyn Store) {
    let b = store.backend();
    commit(
        store,
        vec![
            Mutation::PutTask(task("t1", 1)),
            Mutation::PutTask(task("t2", 1)),
            Mutation::PutNode(node("n1", "a")),
            Mutation::PutNode(node("n2", "b")),
        ],
    )
    .await;
    commit(
        store,
        vec![
            Mutation::DeleteTask("t1".into()),
            Mutation::DeleteNode("n2".into()),
            Mutation::DeleteTask("missing".into()),
            Mutation::DeleteNode("missing".into()),
            Mutation::DeleteMeta("missing".into()),
        ],
    )
    .await;
    let s = load(store).await;
    assert_eq!(s.tasks, vec![task("t2", 1)], "[{b}] delete of a task");
    assert_eq!(s.nodes, vec![node("n1", "a")], "[{b}] delete of a node");
}

/// Metadata: raw bytes, overwrite, delete, empty values kept.
pub async fn meta(store: &dyn Store) {
    let b = store.backend();
    commit(
        store,
        vec![
            Mutation::PutMeta { key: "ca/cert".into(), value: vec![0, 1, 2, 255] },
            Mutation::PutMeta { key: "epoch".into(), value: b"1".to_vec() },
            Mutation::PutMeta { key: "empty".into(), value: vec![] },
            Mutation::PutMeta { key: "gone".into(), value: b"x".to_vec() },
        ],
    )
    .await;
    commit(
        store,
        vec![Mutation::PutMeta { key: "epoch".into(), value: b"2".to_vec() }, Mutation::DeleteMeta("gone".into())],
    )
    .await;
    let s = load(store).await;
    let want = vec![
        ("ca/cert".to_string(), vec![0, 1, 2, 255]),
        ("empty".to_string(), vec![]),
        ("epoch".to_string(), b"2".to_vec()),
    ];
    assert_eq!(s.meta, want, "[{b}] meta");
}

/// Mutations of one batch apply in order: put then delete of a key deletes it.
pub async fn order_within_a_batch(store: &dyn Store) {
    let b = store.backend();
    commit(
        store,
        vec![
            Mutation::PutTask(task("t1", 1)),
            Mutation::DeleteTask("t1".into()),
            Mutation::DeleteTask("t2".into()),
            Mutation::PutTask(task("t2", 1)),
            Mutation::PutTask(task("t2", 2)),
        ],
    )
    .await;
    assert_eq!(load(store).await.tasks, vec![task("t2", 2)], "[{b}] order within a batch");
}

/// A batch that fails (an empty key) leaves no trace, even of its valid part.
pub async fn batch_is_atomic(store: &dyn Store) {
    let b = store.backend();
    commit(store, vec![Mutation::PutTask(task("keep", 1))]).await;
    let before = load(store).await;
    let bad = vec![
        Mutation::PutTask(task("t1", 1)),
        Mutation::DeleteTask("keep".into()),
        Mutation::PutMeta { key: "k".into(), value: b"v".to_vec() },
        Mutation::PutNode(node("", "no id")),
    ];
    let err = store.commit(bad).await;
    assert!(
        matches!(err, Err(super::StoreError::Invalid(_))),
        "[{b}] a batch with an empty id must fail as Invalid, got {err:?}"
    );
    assert_eq!(load(store).await, before, "[{b}] a failed batch must leave no trace");
}

/// An empty batch succeeds and changes nothing.
pub async fn empty_batch(store: &dyn Store) {
    let b = store.backend();
    commit(store, vec![Mutation::PutTask(task("t1", 1))]).await;
    commit(store, vec![]).await;
    assert_eq!(load(store).await.tasks, vec![task("t1", 1)], "[{b}] empty batch");
}

/// 10,000 tasks in one batch.
pub async fn large_batch(store: &dyn Store) {
    let b = store.backend();
    let batch: Vec<Mutation> = (0..10_000).map(|i| Mutation::PutTask(task(&format!("t{i:05}"), i % 7))).collect();
    commit(store, batch).await;
    let s = load(store).await;
    assert_eq!(s.tasks.len(), 10_000, "[{b}] large batch");
    assert_eq!(s.tasks[0], task("t00000", 0), "[{b}] large batch, first");
    assert_eq!(s.tasks[9_999], task("t09999", 9_999 % 7), "[{b}] large batch, last");
}

/// Finished tasks are kept apart: a start can read the active ones and only
/// the newest finished ones; the rest are found by id and by request id.
pub async fn finished_tasks(store: &dyn Store) {
    use fog_proto::v1::TaskState;
    let b = store.backend();
    let with = |id: &str, state: TaskState, request: &str| Task {
        state: state as i32,
        request_id: request.into(),
        ..task(id, 0)
    };
    let mut batch: Vec<Mutation> =
        (1..=5).map(|i| Mutation::PutTask(with(&format!("a-{i}"), TaskState::Succeeded, &format!("r-{i}")))).collect();
    batch.push(Mutation::PutTask(with("b-1", TaskState::Queued, "r-b1")));
    batch.push(Mutation::PutTask(with("b-2", TaskState::Running, "")));
    batch.push(Mutation::PutTask(with("b-3", TaskState::Queued, "r-b3")));
    commit(store, batch).await;
    let found = |r: Result<Option<Task>, super::StoreError>| r.unwrap_or_else(|e| panic!("[{b}] read failed: {e}"));
    assert_eq!(found(store.task_for_request("r-b3").await), None, "[{b}] active tasks are not in the request index");
    // b-3 finishes (cancelled): it moves, and is found by its request id.
    commit(store, vec![Mutation::PutTask(with("b-3", TaskState::Cancelled, "r-b3"))]).await;

    let recent = store.load_recent(2).await.unwrap_or_else(|e| panic!("[{b}] load_recent failed: {e}"));
    let ids: Vec<&str> = recent.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["a-5", "b-1", "b-2", "b-3"], "[{b}] active tasks and the 2 newest finished, by key");
    assert_eq!(recent.finished_not_loaded, 4, "[{b}] finished tasks left in the store");
    assert_eq!(recent.tasks[3].state, TaskState::Cancelled as i32, "[{b}] b-3 was moved, not copied");
    let all = load(store).await;
    assert_eq!(all.tasks.len(), 8, "[{b}] load() reads every task once: {:?}", all.tasks);
    assert_eq!(all.finished_not_loaded, 0);
    let none = store.load_recent(0).await.unwrap_or_else(|e| panic!("[{b}] load_recent failed: {e}"));
    assert_eq!(none.tasks.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["b-1", "b-2"]);
    assert_eq!(none.finished_not_loaded, 6);

    assert_eq!(
        found(store.get_task("a-1").await).map(|t| t.error),
        Some("e-a-1".into()),
        "[{b}] an old finished task by id"
    );
    assert_eq!(found(store.get_task("b-1").await).map(|t| t.id), Some("b-1".into()), "[{b}] an active task by id");
    assert_eq!(found(store.get_task("nope").await), None);
    assert_eq!(found(store.task_for_request("r-2").await).map(|t| t.id), Some("a-2".into()));
    assert_eq!(found(store.task_for_request("r-b3").await).map(|t| t.id), Some("b-3".into()));
    assert_eq!(found(store.task_for_request("r-none").await), None);

    commit(store, vec![Mutation::DeleteTask("a-2".into())]).await;
    assert_eq!(found(store.get_task("a-2").await), None, "[{b}] a deleted finished task is gone");
    assert_eq!(found(store.task_for_request("r-2").await), None, "[{b}] and not found by its request id");
}
