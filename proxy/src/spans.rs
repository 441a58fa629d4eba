//! `[tracing]`: a span per request, exported over OTLP/HTTP (protobuf).
//!
//! The span is made of the request's access-log [`Record`] once its
//! response has ended, on the access log's own thread: the request path
//! only draws two random ids (`headers::forwarded`). Batching, the queue
//! and the OTLP encoding are the OpenTelemetry SDK's
//! (`BatchSpanProcessor`, `opentelemetry-otlp`); the SDK's processor runs
//! its exports on a thread of its own, and their HTTP calls on a small
//! runtime of ours, so a slow collector costs no data-plane thread and a
//! full queue drops spans rather than wait.
//!
//! One span per client request, kind `SERVER`, named `METHOD ROUTE`,
//! from the request's arrival to the last byte of its answer; its parent
//! is the client's span when the client's `traceparent` is sampled, and it
//! is the version's parent (`traceparent` sent on with serin's span id).

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SpanData, SpanProcessor};
use opentelemetry_sdk::Resource;

use crate::access::Record;

/// How long one export may take before it is given up.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// The exporter: the SDK's batch processor over an OTLP/HTTP exporter.
#[derive(Debug)]
pub(crate) struct Spans {
    processor: BatchSpanProcessor,
    scope: InstrumentationScope,
    /// Ends the exports' runtime when dropped.
    _runtime: tokio::sync::oneshot::Sender<()>,
}

/// Why `[tracing]` could not start.
#[derive(Debug, thiserror::Error)]
pub enum SpansError {
    #[error("tracing: {0}")]
    Io(#[from] std::io::Error),
    #[error("tracing: the OTLP exporter: {0}")]
    Exporter(String),
}

/// hyper's client (through `opentelemetry-http`) on the exports' runtime:
/// the SDK's processor thread has no runtime of its own.
#[derive(Debug, Clone)]
struct OnRuntime {
    client: opentelemetry_http::hyper::HyperClient,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        self.runtime
            .spawn(async move { client.send_bytes(request).await })
            .await
            .map_err(|e| Box::new(e) as HttpError)?
    }
}

// === impl Spans ===

impl Spans {
    /// Starts the exporter for `config`: a thread with a one-thread
    /// runtime for its HTTP calls, and the SDK's processor thread.
    ///
    /// # Errors
    /// A thread or the runtime cannot start, or the exporter refuses the
    /// endpoint.
    pub(crate) fn start(config: &serin_config::Tracing) -> Result<Self, SpansError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let runtime = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("serin-otlp".into())
            .spawn(move || {
                let _ = rt.block_on(stopped);
            })?;
        let client = OnRuntime {
            client: opentelemetry_http::hyper::HyperClient::with_default_connector(
                EXPORT_TIMEOUT,
                None,
            ),
            runtime,
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_endpoint(config.otlp.to_string())
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| SpansError::Exporter(e.to_string()))?;
        let mut processor = BatchSpanProcessor::builder(exporter).build();
        processor.set_resource(
            &Resource::builder()
                .with_service_name(config.service_name.clone())
                .build(),
        );
        let scope = InstrumentationScope::builder("serin")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        Ok(Self {
            processor,
            scope,
            _runtime: stop,
        })
    }

    /// Hands `record`'s span to the processor (queued; a full queue drops
    /// it). Records without a span (not sampled, or answered by serin
    /// itself) are skipped.
    pub(crate) fn record(&self, record: &Record) {
        if let Some(span) = self.span_of(record) {
            self.processor.on_end(span);
        }
    }

    /// Exports what is queued; waits for the collector (at shutdown).
    pub(crate) fn flush(&self) {
        if let Err(e) = self.processor.force_flush() {
            tracing::warn!(error = %e, "tracing: spans not exported at shutdown");
        }
    }

    fn span_of(&self, r: &Record) -> Option<SpanData> {
        let ids = r.span?;
        let trace = TraceId::from(r.trace_id?);
        let route = r.route.as_deref().unwrap_or("-");
        let mut attributes = vec![
            KeyValue::new("http.request.method", r.method.as_str().to_owned()),
            KeyValue::new("url.path", r.uri.path().to_owned()),
            KeyValue::new("http.response.status_code", i64::from(r.status)),
            KeyValue::new(
                "network.protocol.version",
                crate::access::protocol(r.version),
            ),
            KeyValue::new("client.address", r.peer.ip().to_string()),
            KeyValue::new("serin.route", route.to_owned()),
            KeyValue::new("serin.fallback", r.fallback),
        ];
        if let Some(v) = &r.upstream_version {
            attributes.push(KeyValue::new("serin.version", v.to_string()));
        }
        if let Some(u) = r.upstream {
            attributes.push(KeyValue::new("serin.upstream_ms", u.as_secs_f64() * 1e3));
        }
        if let Some(ua) = r.user_agent.as_ref().and_then(|v| v.to_str().ok()) {
            attributes.push(KeyValue::new("user_agent.original", ua.to_owned()));
        }
        let status = if r.status >= 500 {
            Status::Error {
                description: Cow::Borrowed(""),
            }
        } else {
            Status::Unset
        };
        Some(SpanData {
            span_context: SpanContext::new(
                trace,
                SpanId::from(ids.span),
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ),
            parent_span_id: if ids.parent == 0 {
                SpanId::INVALID
            } else {
                SpanId::from(ids.parent)
            },
            parent_span_is_remote: ids.parent != 0,
            span_kind: SpanKind::Server,
            name: Cow::Owned(format!("{} {route}", r.method)),
            start_time: r.time.checked_sub(r.duration).unwrap_or(r.time),
            end_time: r.time,
            attributes,
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status,
            instrumentation_scope: self.scope.clone(),
        })
    }
}

impl Drop for Spans {
    fn drop(&mut self) {
        let _ = self.processor.shutdown();
    }
}
