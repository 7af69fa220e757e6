//! The process's log output: readable lines (`log_format = "text"`) or one JSON object per
//! line (`"json"`) for log collectors, both filtered by `log` and written to stderr; and,
//! when `otlp_endpoint` is set, the same spans exported as OpenTelemetry traces (`traces`).
//!
//! In JSON a request's line carries the fields of its `request` span (`http::request_id`):
//! request id, method, path, route template and account id, beside its status and latency.
//! What reaches a line is only what the code logs as a field: bodies, credentials and query
//! strings never are (tests/log_hygiene.rs reads the output of both formats).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{Config, LogFormat};
use crate::traces::{self, Traces};

/// Installs the global subscriber; inside the runtime. The traces pipeline, when one is
/// configured, must be shut down before the process exits so its last spans are sent.
pub fn init(config: &Config) -> anyhow::Result<Option<Traces>> {
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let (otel, traces) = match &config.otlp_endpoint {
        Some(endpoint) => {
            let (layer, traces) = traces::layer(endpoint)?;
            (Some(layer), Some(traces))
        }
        None => (None, None),
    };
    let registry = registry.with(otel);
    match config.log_format {
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
    Ok(traces)
}
