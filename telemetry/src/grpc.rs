//! gRPC server metrics, named as go-grpc-prometheus names them:
//! `grpc_server_started_total`, `grpc_server_handled_total` (with the status
//! code) and `grpc_server_handling_seconds`, labelled by service, method and
//! call type. The layer is the outermost one, so calls refused by the auth
//! layer (unauthenticated, rate-limited) are counted with their code.
//!
//! Labels come from the services' descriptors: a path that names no known
//! method is counted as `unknown`, so a client cannot grow the label space.
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::body::Body;

/// Labels of one method.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    grpc_service: &'static str,
    grpc_method: &'static str,
    grpc_type: &'static str,
}

/// Labels of one method and a status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HandledLabels {
    #[prometheus(flatten)]
    method: MethodLabels,
    grpc_code: &'static str,
}

/// The gRPC server metric families, and the methods they know by name.
pub struct GrpcMetrics {
    started: Family<MethodLabels, Counter>,
    handled: Family<HandledLabels, Counter>,
    handling: Family<MethodLabels, Histogram, fn() -> Histogram>,
    known: HashMap<String, MethodLabels>,
}

fn handling_buckets() -> Histogram {
    // 100 µs to ~6.5 min (long-lived streams land in the top buckets).
    Histogram::new(exponential_buckets(0.000_1, 4.0, 12))
}

impl GrpcMetrics {
    /// Families for the services in these encoded `FileDescriptorSet`s.
    pub fn new(descriptor_sets: &[&[u8]]) -> GrpcMetrics {
        GrpcMetrics {
            started: Family::default(),
            handled: Family::default(),
            handling: Family::new_with_constructor(handling_buckets),
            known: known_methods(descriptor_sets),
        }
    }

    /// Registers the families in `r`.
    pub fn register(&self, r: &mut Registry) {
        r.register("grpc_server_started", "RPCs started on the server", self.started.clone());
        r.register("grpc_server_handled", "RPCs completed on the server, by status code", self.handled.clone());
        r.register_with_unit(
            "grpc_server_handling",
            "Time from the call's start to its status (streams: their whole life)",
            Unit::Seconds,
            self.handling.clone(),
        );
    }

    fn finish(&self, method: MethodLabels, code: i32, started: Instant) {
        let grpc_code = CODE_NAMES.get(code as usize).copied().unwrap_or("Unknown");
        self.handled.get_or_create(&HandledLabels { method, grpc_code }).inc();
        self.handling.get_or_create(&method).observe(started.elapsed().as_secs_f64());
    }
}

/// Status code names as Go prints them (go-grpc-prometheus uses these).
const CODE_NAMES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

const UNKNOWN: MethodLabels = MethodLabels { grpc_service: "unknown", grpc_method: "unknown", grpc_type: "unknown" };

/// `/package.Service/Method` → labels, for every method in the descriptor sets.
fn known_methods(descriptor_sets: &[&[u8]]) -> HashMap<String, MethodLabels> {
    use prost::Message;
    // Label values are leaked once per distinct name, process-wide: bounded by
    // the services compiled in, however many registries are built.
    static NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let intern = |name: &str| -> &'static str {
        let mut names = NAMES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = names.iter().find(|n| **n == name) {
            return n;
        }
        let n: &'static str = Box::leak(name.to_string().into_boxed_str());
        names.push(n);
        n
    };
    let mut map = HashMap::new();
    for set in descriptor_sets {
        let Ok(set) = prost_types::FileDescriptorSet::decode(*set) else { continue };
        for file in set.file {
            for service in &file.service {
                let full = format!("{}.{}", file.package(), service.name());
                let grpc_service = intern(&full);
                for m in &service.method {
                    let grpc_type = match (m.client_streaming(), m.server_streaming()) {
                        (false, false) => "unary",
                        (false, true) => "server_stream",
                        (true, false) => "client_stream",
                        (true, true) => "bidi_stream",
                    };
                    let grpc_method = intern(m.name());
                    map.insert(format!("/{full}/{grpc_method}"), MethodLabels { grpc_service, grpc_method, grpc_type });
                }
            }
        }
    }
    map
}

/// Wraps every gRPC service in [`GrpcMetricsService`].
#[derive(Clone)]
pub struct GrpcMetricsLayer {
    metrics: Arc<GrpcMetrics>,
}

impl GrpcMetricsLayer {
    /// A layer recording into `metrics`.
    pub fn new(metrics: Arc<GrpcMetrics>) -> GrpcMetricsLayer {
        GrpcMetricsLayer { metrics }
    }
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;
    fn layer(&self, inner: S) -> GrpcMetricsService<S> {
        GrpcMetricsService { inner, metrics: self.metrics.clone() }
    }
}

/// Counts each call at its start and at its status.
#[derive(Clone)]
pub struct GrpcMetricsService<S> {
    inner: S,
    metrics: Arc<GrpcMetrics>,
}

/// A call in progress: recorded once, with its status, or as `Canceled` if
/// its response is dropped before a status was sent.
struct Call {
    metrics: Arc<GrpcMetrics>,
    method: MethodLabels,
    started: Instant,
    done: bool,
}

impl Call {
    fn finish(&mut self, code: i32) {
        if !self.done {
            self.done = true;
            self.metrics.finish(self.method, code, self.started);
        }
    }

    /// Records the status in these headers or trailers, if there is one.
    fn finish_from(&mut self, headers: &http::HeaderMap) {
        if let Some(code) = headers.get("grpc-status").and_then(|v| v.to_str().ok()?.parse::<i32>().ok()) {
            self.finish(code);
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.finish(tonic::Code::Cancelled as i32);
    }
}

impl<S> tower::Service<http::Request<Body>> for GrpcMetricsService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let method = self.metrics.known.get(req.uri().path()).copied().unwrap_or(UNKNOWN);
        self.metrics.started.get_or_create(&method).inc();
        let mut call = Call { metrics: self.metrics.clone(), method, started: Instant::now(), done: false };
        Box::pin(async move {
            let resp = inner.call(req).await?;
            // Trailers-only responses (errors, mostly) carry the status in the headers.
            call.finish_from(resp.headers());
            Ok(if call.done { resp } else { resp.map(|inner| Body::new(Observed { inner, call })) })
        })
    }
}

/// A response body that records the call when its trailers pass.
struct Observed {
    inner: Body,
    call: Call,
}

impl http_body::Body for Observed {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.call.finish_from(trailers);
                }
            }
            Poll::Ready(Some(Err(status))) => this.call.finish(status.code() as i32),
            // Ended without trailers: not a well-formed gRPC response.
            Poll::Ready(None) => this.call.finish(tonic::Code::Unknown as i32),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
