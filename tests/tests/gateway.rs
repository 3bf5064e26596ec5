//! fog-gateway end to end: a real coordinator (TLS or plaintext), the gateway
//! in front of it, and clients speaking grpc-web over HTTP/1.1 and HTTP/2 (h2c
//! and TLS with ALPN h2) — the generated
//! Rust clients wrapped in tonic-web's client layer, so every byte on the wire
//! is what a browser sends — plus raw HTTP for files, headers and CORS.

use fog_e2e::{ADMIN_PASSWORD, Coord, DEADLINE, eventually};
use fog_gateway::Config;
use fog_proto::auth::{Authed, Bearer};
use fog_proto::v1 as pb;
use fog_proto::v1::auth_service_client::AuthServiceClient;
use fog_proto::v1::fleet_service_client::FleetServiceClient;
use fog_proto::v1::topology_service_client::TopologyServiceClient;
use fogctl::sim::SimNodeSpec;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tonic_web::{GrpcWebClientLayer, GrpcWebClientService};

type Web = GrpcWebClientService<Client<HttpConnector, tonic_web::GrpcWebCall<tonic::body::Body>>>;

const INDEX: &str = "<!doctype html><title>panel</title><div id=root></div>";
const ASSET: &str = "console.log('the panel, long enough to be worth compressing ................................');";

/// A gateway in front of `coord`, serving a tiny stand-in panel.
struct Gateway {
    addr: SocketAddr,
    running: Option<fog_gateway::Running>,
    _panel: tempfile::TempDir,
}

fn panel_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("index.html"), INDEX).expect("index");
    std::fs::create_dir(dir.path().join("assets")).expect("assets");
    std::fs::write(dir.path().join("assets/app-1a2b.js"), ASSET).expect("asset");
    dir
}

fn config(coordinator: String, ca_file: Option<PathBuf>, panel: &std::path::Path) -> Config {
    use clap::Parser;
    let mut cfg = Config::parse_from(["fog-gateway", "--listen", "127.0.0.1:0", "--coordinator", &coordinator]);
    cfg.ca_file = ca_file;
    cfg.panel_dir = Some(panel.to_path_buf());
    cfg.cors_origins = vec!["https://ops.example.com".into()];
    cfg
}

impl Gateway {
    async fn in_front_of(coord: &Coord, adjust: impl FnOnce(&mut Config)) -> Gateway {
        let panel = panel_dir();
        let addr = coord.running.as_ref().expect("running").addr;
        let tls = coord.dir.path().join(fog_coordinator::server::CA_FILE);
        let mut cfg = if tls.exists() {
            config(format!("https://localhost:{}", addr.port()), Some(tls), panel.path())
        } else {
            config(format!("http://{addr}"), None, panel.path())
        };
        adjust(&mut cfg);
        Gateway::start(cfg, panel).await
    }

    /// A gateway in front of `coord` serving TLS with a fresh self-signed
    /// certificate for `localhost` (returned, with the directory holding its files).
    async fn with_tls(coord: &Coord) -> (Gateway, rcgen::Certificate, tempfile::TempDir) {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert_path, key_path) = (dir.path().join("gw.pem"), dir.path().join("gw.key"));
        std::fs::write(&cert_path, cert.pem()).expect("cert file");
        std::fs::write(&key_path, signing_key.serialize_pem()).expect("key file");
        let gw = Gateway::in_front_of(coord, |c| {
            c.tls_cert = Some(cert_path);
            c.tls_key = Some(key_path);
        })
        .await;
        (gw, cert, dir)
    }

    async fn start(cfg: Config, panel: tempfile::TempDir) -> Gateway {
        let running = fog_gateway::start(cfg).await.expect("gateway starts");
        Gateway { addr: running.addr, running: Some(running), _panel: panel }
    }

    /// A grpc-web channel to the gateway (HTTP/1.1 only, as a browser without h2 would).
    fn web(&self) -> Web {
        let client = Client::builder(TokioExecutor::new()).build_http();
        tower::ServiceBuilder::new().layer(GrpcWebClientLayer::new()).service(client)
    }

    fn origin(&self) -> Uri {
        format!("http://{}", self.addr).parse().expect("uri")
    }

    fn auth(&self) -> AuthServiceClient<Web> {
        AuthServiceClient::with_origin(self.web(), self.origin())
    }

    fn fleet(&self, token: Option<&str>) -> FleetServiceClient<Authed<Web>> {
        let bearer = token.map(|t| Bearer::new(t).expect("token")).unwrap_or_else(Bearer::none);
        FleetServiceClient::with_origin(bearer.wrap(self.web()), self.origin())
    }

    fn topology(&self, token: &str) -> TopologyServiceClient<Authed<Web>> {
        TopologyServiceClient::with_origin(Bearer::new(token).expect("token").wrap(self.web()), self.origin())
    }

    /// A plain HTTP/1.1 request to the gateway; the response with its body read.
    async fn http(&self, req: Request<Empty<Bytes>>) -> (http::response::Parts, Bytes) {
        let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let (mut parts, body) = req.into_parts();
        parts.uri = format!("http://{}{}", self.addr, parts.uri).parse().expect("uri");
        let res = client.request(Request::from_parts(parts, body)).await.expect("http request");
        let (parts, body) = res.into_parts();
        (parts, body.collect().await.expect("body").to_bytes())
    }

    async fn get(&self, path: &str) -> (http::response::Parts, Bytes) {
        self.http(Request::get(path).body(Empty::new()).expect("request")).await
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            let _ = r.stopper().send(true);
        }
    }
}

async fn sign_in(gw: &Gateway) -> String {
    let res = gw
        .auth()
        .sign_in(pb::SignInRequest { username: "admin".into(), password: ADMIN_PASSWORD.into() })
        .await
        .expect("sign in through the gateway")
        .into_inner();
    res.tokens.expect("tokens").access_token
}

#[tokio::test]
async fn grpc_web_reaches_a_tls_coordinator_and_its_decisions_pass_through() {
    let coord = Coord::start_tls().await;
    let gw = Gateway::in_front_of(&coord, |_| {}).await;

    let token = sign_in(&gw).await;
    let nodes = gw.fleet(Some(&token)).list_nodes(pb::ListNodesRequest::default()).await.expect("list nodes");
    assert_eq!(nodes.into_inner().total_matching, 0);

    // The gateway decides nothing: no token, a wrong password and a bad
    // field are the coordinator's answers, codes and field names intact.
    let err = gw.fleet(None).list_nodes(pb::ListNodesRequest::default()).await.expect_err("no token");
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    let err = gw
        .auth()
        .sign_in(pb::SignInRequest { username: "admin".into(), password: "wrong".into() })
        .await
        .expect_err("wrong password");
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    let err = gw
        .fleet(Some(&token))
        .get_node(pb::GetNodeRequest { node_id: String::new() })
        .await
        .expect_err("empty node id");
    assert_eq!(fog_e2e::field_violations(&err), ["node_id"]);
}

#[tokio::test]
async fn server_streaming_topology_watch_is_live_through_the_gateway() {
    let coord = Coord::start().await;
    let gw = Gateway::in_front_of(&coord, |_| {}).await;
    let token = sign_in(&gw).await;

    let mut watch = gw
        .topology(&token)
        .watch_topology(pb::WatchTopologyRequest {
            detail: pb::TopologyDetail::NodeStatus as i32,
            ..Default::default()
        })
        .await
        .expect("watch through the gateway")
        .into_inner();
    let first = tokio::time::timeout(DEADLINE, watch.message()).await.expect("snapshot in time").expect("stream ok");
    assert!(
        matches!(first.as_ref().and_then(|m| m.event.as_ref()), Some(pb::watch_topology_response::Event::Snapshot(_))),
        "first message is the snapshot: {first:?}"
    );

    // A node joins after the watch started: its delta arrives over the same
    // HTTP/1.1 response, frame by frame, not when the call ends.
    let spec = SimNodeSpec::demo_with_prefix("gw", 1);
    let id = spec.id.clone();
    let _node = coord.node(spec);
    let seen = tokio::time::timeout(DEADLINE, async {
        while let Some(msg) = watch.message().await.expect("stream ok") {
            if let Some(pb::watch_topology_response::Event::Node(delta)) = msg.event
                && delta.node.as_ref().is_some_and(|n| n.id == id)
            {
                return true;
            }
        }
        false
    })
    .await
    .expect("the joined node's delta in time");
    assert!(seen, "stream ended before the node's delta");
}

#[tokio::test]
async fn panel_files_single_page_routes_and_security_headers() {
    let coord = Coord::start().await;
    let gw = Gateway::in_front_of(&coord, |_| {}).await;

    for route in ["/", "/nodes", "/tasks/some-task", "/control-panel"] {
        let (parts, body) = gw.get(route).await;
        assert_eq!(parts.status, StatusCode::OK, "{route}");
        assert_eq!(body, INDEX.as_bytes(), "{route} serves the panel");
        assert_eq!(parts.headers["content-security-policy"], fog_gateway::CONTENT_SECURITY_POLICY);
        assert_eq!(parts.headers["x-content-type-options"], "nosniff");
        assert_eq!(parts.headers["x-frame-options"], "DENY");
        assert_eq!(parts.headers["referrer-policy"], "no-referrer");
        assert_eq!(parts.headers[header::CACHE_CONTROL], "no-cache");
        assert!(!parts.headers.contains_key(header::STRICT_TRANSPORT_SECURITY), "no HSTS over plain HTTP");
    }
    let (parts, body) = gw.get("/assets/app-1a2b.js").await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(body, ASSET.as_bytes());
    assert_eq!(parts.headers[header::CACHE_CONTROL], "public, max-age=31536000, immutable");

    let gz = Request::get("/assets/app-1a2b.js").header(header::ACCEPT_ENCODING, "gzip").body(Empty::new()).unwrap();
    let (parts, body) = gw.http(gz).await;
    assert_eq!(parts.headers[header::CONTENT_ENCODING], "gzip");
    assert_ne!(body, ASSET.as_bytes());

    for missing in ["/assets/missing.js", "/favicon.ico", "/../Cargo.toml", "/%2e%2e/%2e%2e/Cargo.toml"] {
        let (parts, body) = gw.get(missing).await;
        assert_ne!(parts.status, StatusCode::OK, "{missing}: {body:?}");
        assert!(!String::from_utf8_lossy(&body).contains("[package]"), "{missing} escaped the panel directory");
    }
    let post = Request::post("/nodes").body(Empty::new()).unwrap();
    assert_eq!(gw.http(post).await.0.status, StatusCode::METHOD_NOT_ALLOWED);
    // Native gRPC is not forwarded (node sessions and the rest go to the coordinator directly).
    let native = Request::post("/fog.v1.NodeService/Session")
        .header(header::CONTENT_TYPE, "application/grpc")
        .body(Empty::new())
        .unwrap();
    assert_eq!(gw.http(native).await.0.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let pathless = Request::post("/fog.v1.NodeService")
        .header(header::CONTENT_TYPE, "application/grpc-web+proto")
        .body(Empty::new())
        .unwrap();
    assert_eq!(gw.http(pathless).await.0.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let (parts, body) = gw.get("/healthz").await;
    assert_eq!((parts.status, &body[..]), (StatusCode::OK, &b"ok\n"[..]));
    let (parts, _) = gw.get("/readyz").await;
    assert_eq!(parts.status, StatusCode::OK, "coordinator reachable");
}

#[tokio::test]
async fn grpc_web_answers_are_never_compressed() {
    let coord = Coord::start().await;
    let gw = Gateway::in_front_of(&coord, |_| {}).await;
    // A hand-made grpc-web call: one uncompressed frame holding an empty GetSystemStatusRequest.
    let client: Client<HttpConnector, http_body_util::Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = Request::post(format!("http://{}/fog.v1.SystemService/GetSystemStatus", gw.addr))
        .header(header::CONTENT_TYPE, "application/grpc-web+proto")
        .header(header::ACCEPT_ENCODING, "gzip")
        .header(header::AUTHORIZATION, format!("Bearer {}", coord.admin_token))
        .body(http_body_util::Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .unwrap();
    let res = client.request(req).await.expect("grpc-web call");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(!res.headers().contains_key(header::CONTENT_ENCODING), "{:?}", res.headers());
    let body = res.into_body().collect().await.expect("body").to_bytes();
    // A data frame (flag 0) with the status, then the trailers frame (flag 0x80) saying OK.
    assert_eq!(body[0], 0, "{body:?}");
    assert!(String::from_utf8_lossy(&body).contains("grpc-status:0"), "{body:?}");
}

#[tokio::test]
async fn cors_answers_only_configured_origins() {
    let coord = Coord::start().await;
    let gw = Gateway::in_front_of(&coord, |_| {}).await;
    let preflight = |origin: &str| {
        Request::options("/fog.v1.FleetService/ListNodes")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type,authorization,x-grpc-web")
            .body(Empty::new())
            .unwrap()
    };
    let (parts, _) = gw.http(preflight("https://ops.example.com")).await;
    assert_eq!(parts.headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://ops.example.com");
    let allowed = parts.headers[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap().to_owned();
    assert!(allowed.contains("authorization") && allowed.contains("x-grpc-web"), "{allowed}");

    let (parts, _) = gw.http(preflight("https://evil.example")).await;
    assert!(!parts.headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN), "{:?}", parts.headers);
}

#[tokio::test]
async fn per_ip_limit_answers_resource_exhausted_with_retry_info_and_spares_files() {
    use tonic_types::StatusExt;
    let coord = Coord::start().await;
    let gw = Gateway::in_front_of(&coord, |c| {
        c.rps_per_ip = 1;
        c.burst_per_ip = 3;
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let mut codes = Vec::new();
    for _ in 0..6 {
        let res = gw.fleet(Some(&coord.admin_token)).list_nodes(pb::ListNodesRequest::default()).await;
        codes.push(res.map(|_| tonic::Code::Ok).unwrap_or_else(|s| {
            if s.code() == tonic::Code::ResourceExhausted {
                let retry = s.get_details_retry_info().expect("RetryInfo").retry_delay.expect("delay");
                assert!(retry > Duration::ZERO && retry <= Duration::from_secs(1), "{retry:?}");
            }
            s.code()
        }));
    }
    assert_eq!(codes.iter().filter(|c| **c == tonic::Code::Ok).count(), 3, "{codes:?}");
    assert!(codes[3..].iter().all(|c| *c == tonic::Code::ResourceExhausted), "{codes:?}");
    // Loading the panel is not an API call.
    assert_eq!(gw.get("/").await.0.status, StatusCode::OK);
    // The gateway's metrics count both, with the calls' gRPC codes.
    let metrics_addr = gw.running.as_ref().and_then(|r| r.metrics_addr).expect("metrics served");
    let (status, text) =
        fog_e2e::prometheus::http_get(&format!("http://{metrics_addr}/metrics")).await.expect("scrape");
    assert_eq!(status, 200);
    let call = |code: &str| {
        format!(
            "grpc_server_handled_total{{grpc_service=\"fog.v1.FleetService\",grpc_method=\"ListNodes\",grpc_type=\"unary\",grpc_code=\"{code}\"}} 3"
        )
    };
    for line in [
        "fog_gateway_rate_limited_requests_total 3".to_string(),
        call("OK"),
        call("ResourceExhausted"),
        "fog_gateway_http_requests_total{route=\"api\",code=\"200\"} 6".to_string(),
        "fog_gateway_http_requests_total{route=\"panel\",code=\"200\"} 1".to_string(),
    ] {
        assert!(text.contains(&line), "{line} missing from:\n{text}");
    }
    // The budget refills.
    eventually("the per-IP budget refills", DEADLINE, || async {
        gw.fleet(Some(&coord.admin_token)).list_nodes(pb::ListNodesRequest::default()).await.ok()
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_coordinator_is_unavailable_not_a_hang() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr");
    let panel = panel_dir();
    let gw = Gateway::start(config(format!("http://{unused}"), None, panel.path()), panel).await;
    let err = tokio::time::timeout(DEADLINE, gw.fleet(Some("x")).list_nodes(pb::ListNodesRequest::default()))
        .await
        .expect("answered in time")
        .expect_err("no coordinator");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert_eq!(gw.get("/healthz").await.0.status, StatusCode::OK, "the gateway itself is alive");
    assert_eq!(gw.get("/readyz").await.0.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(gw.get("/").await.0.status, StatusCode::OK, "the panel still loads");
}

#[tokio::test]
async fn bad_settings_are_refused_before_binding() {
    let panel = panel_dir();
    let base = || config("http://127.0.0.1:7443".into(), None, panel.path());
    let cases: Vec<(Config, &str)> = vec![
        (Config { coordinator: "https://localhost:7443".into(), ..base() }, "--ca-file"),
        (Config { coordinator: "ftp://x".into(), ..base() }, "--coordinator"),
        (Config { panel_dir: Some("/nonexistent".into()), ..base() }, "--panel-dir"),
        (Config { cors_origins: vec!["https://ops.example.com/".into()], ..base() }, "--cors-origin"),
        (Config { cors_origins: vec!["*".into()], ..base() }, "--cors-origin"),
        (Config { rps_per_ip: 0, ..base() }, "--rps-per-ip"),
    ];
    for (cfg, flag) in cases {
        let err = fog_gateway::start(cfg).await.err().expect("refused");
        assert!(err.to_string().contains(flag), "{err} should name {flag}");
    }
}

#[tokio::test]
async fn serves_tls_with_hsts_when_given_a_certificate() {
    let coord = Coord::start().await;
    let (gw, cert, _dir) = Gateway::with_tls(&coord).await;

    let stream = tls_connect(gw.addr, &cert, b"http/1.1").await;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("http1");
    tokio::spawn(conn);
    let res = sender
        .send_request(Request::get("/healthz").header(header::HOST, "localhost").body(Empty::<Bytes>::new()).unwrap())
        .await
        .expect("response over TLS");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::STRICT_TRANSPORT_SECURITY], "max-age=31536000");
}

/// A TLS connection to `addr` that trusts `cert` and offers only `alpn`.
async fn tls_connect(
    addr: SocketAddr,
    cert: &rcgen::Certificate,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).expect("root");
    let mut tls = rustls::ClientConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![alpn.to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls)).connect(name, tcp).await.expect("TLS")
}

/// Signs in, lists nodes and opens a topology watch through `web` (a
/// grpc-web client service), returning the watch's first message: what the
/// panel does first, over whatever HTTP version `web` speaks.
async fn sign_in_list_and_watch<S, B>(web: S, origin: Uri) -> pb::WatchTopologyResponse
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<B>> + Clone + Send + 'static,
    S::Error: Into<tonic::codegen::StdError>,
    S::Future: Send,
    B: tonic::codegen::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send,
{
    let tokens = AuthServiceClient::with_origin(web.clone(), origin.clone())
        .sign_in(pb::SignInRequest { username: "admin".into(), password: ADMIN_PASSWORD.into() })
        .await
        .expect("sign in over grpc-web")
        .into_inner()
        .tokens
        .expect("tokens");
    let bearer = || Bearer::new(&tokens.access_token).expect("token");
    let nodes = FleetServiceClient::with_origin(bearer().wrap(web.clone()), origin.clone())
        .list_nodes(pb::ListNodesRequest::default())
        .await
        .expect("list nodes over grpc-web");
    assert_eq!(nodes.into_inner().total_matching, 0);
    let err = FleetServiceClient::with_origin(Bearer::none().wrap(web.clone()), origin.clone())
        .list_nodes(pb::ListNodesRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "the coordinator's answer passes through: {err:?}");
    let mut watch = TopologyServiceClient::with_origin(bearer().wrap(web), origin)
        .watch_topology(pb::WatchTopologyRequest::default())
        .await
        .expect("watch over grpc-web")
        .into_inner();
    tokio::time::timeout(DEADLINE, watch.message())
        .await
        .expect("first watch message in time")
        .expect("stream ok")
        .expect("a message, not the end of the stream")
}

fn is_snapshot(msg: &pb::WatchTopologyResponse) -> bool {
    matches!(msg.event, Some(pb::watch_topology_response::Event::Snapshot(_)))
}

#[tokio::test]
async fn grpc_web_over_http2_in_clear_text_and_over_tls_with_alpn_h2() {
    let coord = Coord::start().await;
    let plain = Gateway::in_front_of(&coord, |_| {}).await;
    let (tls, cert, _dir) = Gateway::with_tls(&coord).await;

    // h2c with prior knowledge (what a proxy in front of the gateway speaks).
    let res = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
        .request(Request::get(format!("http://{}/healthz", plain.addr)).body(Empty::<Bytes>::new()).unwrap())
        .await
        .expect("h2c request");
    assert_eq!((res.status(), res.version()), (StatusCode::OK, http::Version::HTTP_2));
    let h2c = Client::builder(TokioExecutor::new()).http2_only(true).build_http();
    let web = tower::ServiceBuilder::new().layer(GrpcWebClientLayer::new()).service(h2c);
    let first = sign_in_list_and_watch(web, plain.origin()).await;
    assert!(is_snapshot(&first), "first message over h2c is the snapshot: {first:?}");

    // TLS where ALPN settles on h2 (what a browser does): one connection,
    // every call a stream on it.
    let stream = tls_connect(tls.addr, &cert, b"h2").await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "the gateway agreed to h2");
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let h2 = tower::service_fn(move |req: Request<tonic_web::GrpcWebCall<tonic::body::Body>>| {
        let mut sender = sender.clone();
        async move { sender.send_request(req).await }
    });
    let web = tower::ServiceBuilder::new().layer(GrpcWebClientLayer::new()).service(h2);
    let origin: Uri = format!("https://localhost:{}", tls.addr.port()).parse().expect("uri");
    let first = sign_in_list_and_watch(web, origin).await;
    assert!(is_snapshot(&first), "first message over TLS h2 is the snapshot: {first:?}");
}

#[tokio::test]
async fn request_logs_carry_the_callers_trace_context() {
    // The real binary, as deployed: its log is what operators read.
    let coord = Coord::start().await;
    let addr = coord.running.as_ref().expect("running").addr;
    let port = fog_e2e::process::free_port();
    let log_dir = tempfile::tempdir().expect("temp dir");
    let log_path = log_dir.path().join("gateway.log");
    let mut child = std::process::Command::new(fog_e2e::process::binary("fog-gateway"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--coordinator", &format!("http://{addr}")])
        .args(["--log-format", "json"])
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("log file"))
        .spawn()
        .expect("fog-gateway starts");
    let origin: Uri = format!("http://127.0.0.1:{port}").parse().expect("uri");
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let bearer = || Bearer::none().with_traceparent(traceparent).expect("traceparent");
    let web = || {
        tower::ServiceBuilder::new()
            .layer(GrpcWebClientLayer::new())
            .service(Client::builder(TokioExecutor::new()).build_http())
    };
    let err = eventually("the gateway answers", DEADLINE, || {
        let client = FleetServiceClient::with_origin(bearer().wrap(web()), origin.clone());
        async move {
            let mut client = client;
            match client.list_nodes(pb::ListNodesRequest::default()).await {
                Err(e) if e.code() == tonic::Code::Unauthenticated => Some(e),
                _ => None,
            }
        }
    })
    .await;
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let line = eventually("the gateway's request log line", DEADLINE, || {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let line = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|l| l["span"]["path"] == "/fog.v1.FleetService/ListNodes" && l["fields"]["status"] == 16);
        async move { line }
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(line["span"]["traceparent"], traceparent, "the request's log line names its trace: {line}");
    assert_eq!(line["span"]["client"], "127.0.0.1", "and the client's address: {line}");
    assert_eq!(line["span"]["method"], "POST", "{line}");
}
