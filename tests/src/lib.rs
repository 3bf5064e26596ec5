//! Support for Fogplane's end-to-end tests: start a coordinator (in-process
//! over real gRPC on 127.0.0.1, or as a real `fog-coordinator` process),
//! attach simulated nodes, and wait on conditions with deadlines — never a
//! bare sleep standing in for a condition.

pub mod disk;
pub mod etcd;
pub mod identity;
pub mod process;
pub mod prometheus;
pub mod raw;
pub mod topology;

use fog_coordinator::auth::Role;
use fog_coordinator::config::Config;
use fog_coordinator::server::Running;
use fog_proto::auth::{Authed, Bearer};
use fog_proto::v1 as pb;
use fog_proto::v1::auth_service_client::AuthServiceClient;
use fog_proto::v1::fleet_service_client::FleetServiceClient;
use fog_proto::v1::system_service_client::SystemServiceClient;
use fog_proto::v1::task_service_client::TaskServiceClient;
use fog_proto::v1::topology_service_client::TopologyServiceClient;
use fogctl::sim::{SimNodeHandle, SimNodeSpec, SimOptions, spawn_node};
use std::future::Future;
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};

/// Default deadline for `eventually`.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// Polls `f` every 20 ms until it returns `Some`, or panics after `deadline`
/// naming what was awaited.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (up to `within`) until task `id` has ended, and checks the
/// fault suites' invariant: it succeeded, with exactly one successful
/// attempt, which is the accepted one (no two runs accepted).
pub async fn succeeded_once(tasks: &TaskServiceClient<Authed>, id: &str, within: Duration) -> pb::Task {
    let t = eventually(&format!("task {id} ended"), within, || {
        let mut tasks = tasks.clone();
        let req = pb::GetTaskRequest { task_id: id.to_string() };
        async move {
            let t = tasks.get_task(req).await.ok()?.into_inner().task?;
            (t.state >= pb::TaskState::Succeeded as i32).then_some(t)
        }
    })
    .await;
    assert_eq!(t.state, pb::TaskState::Succeeded as i32, "{id} succeeded: {t:?}");
    let wins: Vec<u64> =
        t.attempts.iter().filter(|a| a.state == pb::AttemptState::Succeeded as i32).map(|a| a.attempt).collect();
    assert_eq!(wins, [t.accepted_attempt], "{id} has one successful attempt, the accepted one: {:?}", t.attempts);
    t
}

/// The fields named by an `INVALID_ARGUMENT` status's `google.rpc.BadRequest` (panics on another code).
pub fn field_violations(s: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    assert_eq!(s.code(), tonic::Code::InvalidArgument, "{s:?}");
    s.get_details_bad_request().expect("BadRequest details").field_violations.into_iter().map(|v| v.field).collect()
}

/// Logs to the test output when `FOG_TEST_LOG` is set (e.g. `FOG_TEST_LOG=debug`).
pub fn init_logs() {
    if let Ok(level) = std::env::var("FOG_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(level).with_test_writer().try_init();
    }
}

/// The password of the `admin` user every test coordinator is created with.
pub const ADMIN_PASSWORD: &str = "test-admin-password";
/// The password `Coord::sign_in_as` gives the users it creates.
pub const USER_PASSWORD: &str = "test-user-password";

/// An in-process coordinator with a fresh store.
pub struct Coord {
    /// The running coordinator.
    pub running: Option<Running>,
    /// Its gRPC channel (no credentials: what nodes use).
    pub channel: Channel,
    /// Store directory (kept for restarts).
    pub dir: tempfile::TempDir,
    /// An access token of the `admin` user (created offline before the first start, as operators do).
    pub admin_token: String,
    /// Applied to the configuration at every start and restart.
    configure: Configure,
}

/// A configuration adjustment kept for restarts.
type Configure = std::sync::Arc<dyn Fn(&mut Config) + Send + Sync>;

fn unchanged() -> Configure {
    std::sync::Arc::new(|_| {})
}

/// Creates the `admin` user in a store directory, as `fog-coordinator admin create` does.
pub async fn create_admin(dir: &std::path::Path) {
    fog_coordinator::auth::bootstrap::create_user(dir, "admin", ADMIN_PASSWORD, Role::Admin)
        .await
        .expect("admin created");
}

/// Creates the `admin` user in the store `cfg` names.
async fn create_admin_for(cfg: &Config) {
    match &cfg.store {
        fog_coordinator::config::StoreChoice::Redb => create_admin(&cfg.data_dir).await,
        fog_coordinator::config::StoreChoice::Etcd { endpoints, prefix, tls } => {
            let store =
                fog_coordinator::store::EtcdStore::connect(endpoints, prefix, tls.as_ref()).await.expect("etcd");
            fog_coordinator::auth::bootstrap::create_user_in(&store, "admin", ADMIN_PASSWORD, Role::Admin)
                .await
                .expect("admin created");
        }
    }
}

/// Mints an access token for `user` with the running coordinator's signing key
/// (in-process only; the user must exist for it to be accepted).
pub fn mint_token(running: &Running, user: &str, role: Role) -> String {
    let view = running.engine.auth_view();
    let keys = view.borrow().keys.clone();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    keys.sign(&keys.claims(user, role, "test-session", now, 900)).expect("token signed")
}

impl Coord {
    /// Starts one with test settings (heartbeat 100 ms).
    pub async fn start() -> Coord {
        Coord::start_with(|_| {}).await
    }

    /// Starts one, letting the test adjust the configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Coord {
        init_logs();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = Config::for_tests(dir.path().to_path_buf());
        adjust(&mut cfg);
        create_admin_for(&cfg).await;
        let running = fog_coordinator::server::start(cfg).await.expect("coordinator starts");
        let channel = connect(&format!("http://{}", running.addr)).await;
        let admin_token = mint_token(&running, "admin", Role::Admin);
        Coord { running: Some(running), channel, dir, admin_token, configure: unchanged() }
    }

    /// Starts one with an adjustment that restarts keep (a store backend, say).
    pub async fn start_kept(configure: impl Fn(&mut Config) + Send + Sync + 'static) -> Coord {
        let configure: Configure = std::sync::Arc::new(configure);
        let adjust = configure.clone();
        let mut c = Coord::start_with(move |cfg| adjust(cfg)).await;
        c.configure = configure;
        c
    }

    /// Starts one with mTLS on (a fresh CA in a fresh store); `channel` is a
    /// TLS channel without a client certificate (what users and `Join` use).
    pub async fn start_tls() -> Coord {
        init_logs();
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = Config::for_tls_tests(dir.path().to_path_buf());
        create_admin(dir.path()).await;
        let running = fog_coordinator::server::start(cfg).await.expect("coordinator starts");
        let ca = std::fs::read_to_string(dir.path().join(fog_coordinator::server::CA_FILE)).expect("ca.pem written");
        let channel = tls_channel(running.addr, &ca, None).await;
        let admin_token = mint_token(&running, "admin", Role::Admin);
        Coord { running: Some(running), channel, dir, admin_token, configure: unchanged() }
    }

    /// Clients of a coordinator running elsewhere (a real process) at `url`,
    /// signed in as `admin`, reusing `Coord`'s helpers.
    pub async fn client_of(url: &str) -> Coord {
        let admin_token = process::sign_in(url, None, "admin", ADMIN_PASSWORD).await;
        Coord::client(connect(url).await, admin_token)
    }

    /// Clients over a connected `channel` with an admin's `token`.
    pub fn client(channel: Channel, admin_token: String) -> Coord {
        Coord {
            running: None,
            channel,
            dir: tempfile::tempdir().expect("temp dir"),
            admin_token,
            configure: unchanged(),
        }
    }

    /// The CA certificate the coordinator wrote to its data directory.
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(fog_coordinator::server::CA_FILE)).expect("ca.pem written")
    }

    /// A TLS channel trusting the coordinator's CA, with a client identity (cert PEM, key PEM) if given.
    pub async fn tls_channel(&self, identity: Option<(&str, &str)>) -> Channel {
        tls_channel(self.running.as_ref().expect("running").addr, &self.ca_pem(), identity).await
    }

    /// The channel with the admin's token on every request.
    pub fn admin(&self) -> Authed {
        self.with_token(&self.admin_token)
    }

    /// The channel with `token` on every request.
    pub fn with_token(&self, token: &str) -> Authed {
        Bearer::new(token).expect("token is ASCII").wrap(self.channel.clone())
    }

    /// Task client (as admin).
    pub fn tasks(&self) -> TaskServiceClient<Authed> {
        TaskServiceClient::new(self.admin())
    }

    /// Fleet client (as admin).
    pub fn fleet(&self) -> FleetServiceClient<Authed> {
        FleetServiceClient::new(self.admin())
    }

    /// Topology client (as admin).
    pub fn topology(&self) -> TopologyServiceClient<Authed> {
        TopologyServiceClient::new(self.admin())
    }

    /// System client (as admin).
    pub fn system(&self) -> SystemServiceClient<Authed> {
        SystemServiceClient::new(self.admin())
    }

    /// Auth client (as admin).
    pub fn auth(&self) -> AuthServiceClient<Authed> {
        AuthServiceClient::new(self.admin())
    }

    /// Creates user `name` with `role` (through the API, as an admin) and signs
    /// in as them; returns the sign-in reply (tokens and role).
    pub async fn sign_in_as(&self, name: &str, role: Role) -> pb::SignInResponse {
        self.auth()
            .create_user(pb::CreateUserRequest {
                username: name.into(),
                password: USER_PASSWORD.into(),
                role: role.to_pb() as i32,
            })
            .await
            .expect("user created");
        AuthServiceClient::new(self.channel.clone())
            .sign_in(pb::SignInRequest { username: name.into(), password: USER_PASSWORD.into() })
            .await
            .expect("signed in")
            .into_inner()
    }

    /// An access token of a new user `name` with `role`.
    pub async fn token_as(&self, name: &str, role: Role) -> String {
        self.sign_in_as(name, role).await.tokens.expect("tokens").access_token
    }

    /// Spawns a simulated node on this coordinator.
    pub fn node(&self, spec: SimNodeSpec) -> SimNodeHandle {
        spawn_node(self.channel.clone(), spec, fast_sim())
    }

    /// Spawns `n` simulated nodes named `{prefix}-{i}` with `cpu_millis` each.
    pub fn nodes(&self, prefix: &str, n: usize, cpu_millis: u32) -> Vec<SimNodeHandle> {
        (0..n).map(|i| self.node(spec(&format!("{prefix}-{i}"), cpu_millis))).collect()
    }

    /// Waits until `n` nodes are healthy.
    pub async fn wait_healthy(&self, n: usize) {
        let mut fleet = self.fleet();
        eventually(&format!("{n} healthy nodes"), DEADLINE, || {
            let mut fleet = fleet.clone();
            async move {
                let r = fleet.list_nodes(pb::ListNodesRequest { page_size: 1000, ..Default::default() }).await.ok()?;
                let healthy =
                    r.into_inner().nodes.iter().filter(|n| n.liveness == pb::Liveness::Healthy as i32).count();
                (healthy >= n).then_some(())
            }
        })
        .await;
        let _ = fleet.list_nodes(pb::ListNodesRequest::default()).await;
    }

    /// Submits a spec and returns the stored task.
    pub async fn submit(&self, spec: pb::TaskSpec) -> pb::Task {
        self.submit_with_request_id(spec, "").await
    }

    /// Submits a task with an idempotency key (a retry gets the same task).
    pub async fn submit_with_request_id(&self, spec: pb::TaskSpec, request_id: &str) -> pb::Task {
        self.tasks()
            .submit_task(pb::SubmitTaskRequest { spec: Some(spec), request_id: request_id.into() })
            .await
            .expect("submit accepted")
            .into_inner()
            .task
            .expect("task in reply")
    }

    /// Gets a task.
    pub async fn task(&self, id: &str) -> pb::Task {
        self.tasks()
            .get_task(pb::GetTaskRequest { task_id: id.to_string() })
            .await
            .expect("task exists")
            .into_inner()
            .task
            .expect("task in reply")
    }

    /// Waits until a task is in `state`, returning it.
    pub async fn wait_state(&self, id: &str, state: pb::TaskState) -> pb::Task {
        let what = format!("task {id} {state:?}");
        eventually(&what, DEADLINE, || async {
            let t = self.task(id).await;
            (t.state == state as i32).then_some(t)
        })
        .await
    }

    /// Gets a node.
    pub async fn get_node(&self, id: &str) -> pb::Node {
        self.fleet()
            .get_node(pb::GetNodeRequest { node_id: id.to_string() })
            .await
            .expect("node exists")
            .into_inner()
            .node
            .expect("node in reply")
    }

    /// Starts a new coordinator on the same store (after `stop`).
    pub async fn restart(&mut self) {
        let mut cfg = Config::for_tests(self.dir.path().to_path_buf());
        (self.configure)(&mut cfg);
        let running = fog_coordinator::server::start(cfg).await.expect("coordinator restarts");
        self.channel = connect(&format!("http://{}", running.addr)).await;
        self.running = Some(running);
    }

    /// Stops the coordinator gracefully.
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

/// A TLS channel to `addr` trusting `ca_pem`, with a client identity (cert PEM, key PEM) if given.
pub async fn tls_channel(addr: std::net::SocketAddr, ca_pem: &str, identity: Option<(&str, &str)>) -> Channel {
    let mut tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
    }
    let endpoint = Endpoint::from_shared(format!("https://{addr}")).expect("url").tls_config(tls).expect("tls config");
    endpoint.connect().await.expect("TLS connect")
}

/// Simulated-node options for tests: quick reconnects.
pub fn fast_sim() -> SimOptions {
    SimOptions {
        reconnect_after: Duration::from_millis(50),
        reconnect_cap: Duration::from_millis(300),
        ..SimOptions::default()
    }
}

/// A plain compute node spec with `cpu_millis` of CPU and 4 GiB.
pub fn spec(id: &str, cpu_millis: u32) -> SimNodeSpec {
    let mut s = SimNodeSpec::demo(0);
    s.id = id.to_string();
    s.name = id.to_string();
    s.labels.clear();
    s.capacity = pb::Resources { cpu_millis, memory_mb: 4096, storage_mb: 10_240, gpus: 0 };
    s
}

/// Connects a channel (retrying briefly while the server comes up).
pub async fn connect(url: &str) -> Channel {
    let endpoint = Endpoint::from_shared(url.to_string()).expect("valid url").connect_timeout(Duration::from_secs(2));
    eventually(&format!("connect to {url}"), DEADLINE, || {
        let endpoint = endpoint.clone();
        async move { endpoint.connect().await.ok() }
    })
    .await
}

/// A built-in task spec.
pub fn builtin(kind: pb::builtin_task::Kind) -> pb::TaskSpec {
    pb::TaskSpec {
        name: "test".into(),
        workload: Some(pb::task_spec::Workload::Builtin(pb::BuiltinTask { kind: Some(kind) })),
        resources: Some(pb::Resources { cpu_millis: 100, memory_mb: 64, storage_mb: 0, gpus: 0 }),
        ..Default::default()
    }
}

/// `sleep_ms` built-in.
pub fn sleep(ms: u64) -> pb::TaskSpec {
    builtin(pb::builtin_task::Kind::SleepMs(ms))
}

/// `echo` built-in.
pub fn echo(text: &str) -> pb::TaskSpec {
    builtin(pb::builtin_task::Kind::Echo(text.to_string()))
}

/// `fail` built-in.
pub fn fail(msg: &str) -> pb::TaskSpec {
    builtin(pb::builtin_task::Kind::Fail(msg.to_string()))
}
