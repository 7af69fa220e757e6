//! OpenTelemetry traces over OTLP/HTTP (protobuf), when `otlp_endpoint` is set; off by
//! default. Every `tracing` span the log filter lets through becomes an OpenTelemetry span
//! (`tracing-opentelemetry`): a request's `request` span with its request id, method, path,
//! route and account, and what runs inside it. Spans carry the same fields as the logs, so
//! what never reaches a log line (bodies, credentials, query strings) never reaches a trace.
//!
//! The SDK's batch processor exports from a thread of its own; the export's HTTP request
//! runs on the server's runtime (`OnRuntime`), with the server's HTTP client, so no second
//! HTTP stack or runtime is built for it.

use std::time::Duration;

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// A collector's answer is a few bytes; a larger one is not read.
const MAX_RESPONSE: u64 = 64 * 1024;

/// The traces pipeline; [`Traces::shutdown`] exports what is still buffered.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Exports the spans still buffered and stops; blocks, so call it off the runtime's
    /// workers (`spawn_blocking`).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("traces: the last export failed: {e}");
        }
    }
}

/// The OTLP signal path appended to the configured collector address.
pub fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

/// The layer that turns spans into OpenTelemetry spans exported to `endpoint` (the
/// collector's OTLP/HTTP address, e.g. `http://127.0.0.1:4318`). Call inside the runtime.
pub fn layer<S>(endpoint: &str) -> anyhow::Result<(OpenTelemetryLayer<S, SdkTracer>, Traces)>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    let client = OnRuntime {
        client: reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        runtime: tokio::runtime::Handle::try_current()
            .context("the traces exporter needs the runtime")?,
    };
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(client)
        .build()
        .context("otlp_endpoint")?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("ami").build())
        .build();
    let tracer = provider.tracer("ami");
    Ok((
        tracing_opentelemetry::layer().with_tracer(tracer),
        Traces { provider },
    ))
}

/// The HTTP client of exports: the request runs as a task of the server's runtime, which
/// the exporter's own thread can then wait for.
#[derive(Debug)]
struct OnRuntime {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let res = client.execute(request).await?;
            if res.content_length().is_some_and(|n| n > MAX_RESPONSE) {
                return Err(HttpError::from("the collector's answer is too large"));
            }
            let mut out = Response::new(Bytes::new());
            *out.status_mut() = res.status();
            *out.headers_mut() = res.headers().clone();
            *out.body_mut() = res.bytes().await?;
            Ok(out)
        });
        sent.await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_once() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }
}
