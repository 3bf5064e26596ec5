//! OpenTelemetry traces: OTLP export (gRPC), off unless an endpoint is
//! configured, and W3C trace context (`traceparent`) carried in gRPC
//! metadata between processes and in protocol fields along a task's life.
//!
//! Spans are made with the OpenTelemetry API directly, not through
//! `tracing`: a task's spans (submit → place → dispatch → run → complete)
//! start and end in different places, often in different processes, with
//! explicit parents. With export off, the global tracer is the no-op one and
//! [`enabled`] is false, so callers skip the work entirely.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, global};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::sync::atomic::{AtomicBool, Ordering};

pub use opentelemetry::global::BoxedSpan;
pub use opentelemetry::trace::{Span, SpanKind, Status};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (an OTLP endpoint was configured).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Flushes and stops the exporter when dropped (at process exit).
#[must_use = "spans are flushed when the guard is dropped"]
pub struct TraceGuard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl TraceGuard {
    /// Flushes the batched spans and stops the exporter, off the runtime's
    /// threads (the export itself needs the runtime, which may have only one).
    pub async fn shutdown(mut self) {
        if let Some(p) = self.provider.take() {
            let _ = tokio::task::spawn_blocking(move || p.shutdown()).await;
        }
    }
}

impl Drop for TraceGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Exports spans of `service` to the OTLP/gRPC collector at `endpoint`
/// (e.g. `http://127.0.0.1:4317`), batched; with `None`, nothing is
/// exported. Must be called inside a Tokio runtime. The batch settings
/// follow the standard `OTEL_BSP_*` variables.
pub fn init(service: &'static str, endpoint: Option<&str>) -> Result<TraceGuard, String> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let Some(endpoint) = endpoint else { return Ok(TraceGuard { provider: None }) };
    use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
    let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint);
    if endpoint.starts_with("https://") {
        // The exporter's own TLS settings start with no trusted roots: trust the system's.
        builder = builder.with_tls_config(tonic::transport::ClientTlsConfig::new().with_native_roots());
    }
    let exporter = builder.build().map_err(|e| format!("OTLP endpoint {endpoint}: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    global::set_tracer_provider(provider.clone());
    ENABLED.store(true, Ordering::Relaxed);
    Ok(TraceGuard { provider: Some(provider) })
}

/// The global tracer.
pub fn tracer() -> global::BoxedTracer {
    global::tracer("fogplane")
}

/// Starts a span named `name` of `kind`, child of `parent`.
pub fn start(name: &'static str, kind: SpanKind, parent: &Context) -> global::BoxedSpan {
    tracer().span_builder(name).with_kind(kind).start_with_context(&tracer(), parent)
}

/// A context whose current span is `sc` (a remote or stored parent).
pub fn context_of(sc: &SpanContext) -> Context {
    Context::new().with_remote_span_context(sc.clone())
}

/// The W3C `traceparent` of a span context; empty if it is not valid.
pub fn traceparent(sc: &SpanContext) -> String {
    if !sc.is_valid() {
        return String::new();
    }
    format!("00-{}-{}-{:02x}", sc.trace_id(), sc.span_id(), sc.trace_flags().to_u8())
}

/// The span context in a W3C `traceparent` value (invalid if malformed).
pub fn parse_traceparent(value: &str) -> SpanContext {
    struct One<'a>(&'a str);
    impl Extractor for One<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            (key == "traceparent").then_some(self.0)
        }
        fn keys(&self) -> Vec<&str> {
            vec!["traceparent"]
        }
    }
    TraceContextPropagator::new().extract(&One(value)).span().span_context().clone()
}

/// The remote parent carried in gRPC request metadata (empty context if none).
pub fn extract(metadata: &tonic::metadata::MetadataMap) -> Context {
    struct Meta<'a>(&'a tonic::metadata::MetadataMap);
    impl Extractor for Meta<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0
                .keys()
                .filter_map(|k| match k {
                    tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                    tonic::metadata::KeyRef::Binary(_) => None,
                })
                .collect()
        }
    }
    global::get_text_map_propagator(|p| p.extract(&Meta(metadata)))
}

/// Puts `cx`'s span into gRPC request metadata as `traceparent`.
pub fn inject(cx: &Context, metadata: &mut tonic::metadata::MetadataMap) {
    struct Meta<'a>(&'a mut tonic::metadata::MetadataMap);
    impl Injector for Meta<'_> {
        fn set(&mut self, key: &str, value: String) {
            if let (Ok(k), Ok(v)) = (
                tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
                tonic::metadata::MetadataValue::try_from(value.as_str()),
            ) {
                self.0.insert(k, v);
            }
        }
    }
    TraceContextPropagator::new().inject_context(cx, &mut Meta(metadata));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_rejects_garbage() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let sc = parse_traceparent(tp);
        assert!(sc.is_valid() && sc.is_remote() && sc.is_sampled());
        assert_eq!(traceparent(&sc), tp);
        for bad in ["", "00-zz-00f067aa0ba902b7-01", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"] {
            assert!(!parse_traceparent(bad).is_valid(), "{bad}");
            assert_eq!(traceparent(&parse_traceparent(bad)), "");
        }
    }

    #[tokio::test]
    async fn plain_and_tls_endpoints_are_accepted() {
        for endpoint in ["http://127.0.0.1:4317", "https://collector.example:4317"] {
            let guard = init("fog-test", Some(endpoint)).unwrap_or_else(|e| panic!("{endpoint}: {e}"));
            guard.shutdown().await;
        }
    }

    #[test]
    fn metadata_carries_the_context() {
        let sc = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let mut md = tonic::metadata::MetadataMap::new();
        inject(&context_of(&sc), &mut md);
        global::set_text_map_propagator(TraceContextPropagator::new());
        let back = extract(&md);
        assert_eq!(back.span().span_context().trace_id(), sc.trace_id());
        assert_eq!(back.span().span_context().span_id(), sc.span_id());
    }
}
