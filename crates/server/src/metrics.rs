//! The process's metrics registry, and the HTTP metrics recorded by a layer on every route.
//!
//! One registry is made at start: the services register theirs (send path, carrier, webhooks,
//! queue depths; `ami_services::metrics`), this module the HTTP ones. `GET /metrics`
//! (`routes/metrics.rs`) renders it in the Prometheus text format.
//!
//! Requests are labelled by their route template (axum's `MatchedPath`, never the raw path,
//! which holds ids) or `unmatched`, by a method from a fixed list, and by status code, so the
//! number of series is bounded by the router. A template's label is interned once; a
//! request then costs a read-locked map lookup, an atomic increment and a histogram
//! observation, with no allocation.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use ami_services::Services;
use ami_services::metrics::latency_histogram;

/// The `Content-Type` of `GET /metrics`: the Prometheus text format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: Arc<str>,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: Arc<str>,
}

type DurationFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The registry of this process and the HTTP metrics the request layer records.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: DurationFamily,
    /// Route templates seen so far, with their shared label value.
    routes: RwLock<HashMap<Box<str>, Arc<str>>>,
    unmatched: Arc<str>,
}

impl Metrics {
    /// The registry with the services' metrics and the HTTP ones; the carrier's bind gauge
    /// is the services' ([`ami_services::metrics::Metrics::carrier_binds_up`]).
    pub fn new(
        services: &Services,
        smpp: Option<ami_smpp::Smpp>,
        sip: Option<ami_voice::SipCarrier>,
    ) -> Metrics {
        let mut registry = Registry::with_prefix("ami");
        services.metrics.register(&mut registry);
        if let Some(smpp) = smpp {
            registry.register_collector(Box::new(crate::smpp_metrics::SmppCollector(smpp)));
        }
        if let Some(sip) = sip {
            registry.register_collector(Box::new(crate::voice_metrics::VoiceCollector(sip)));
        }
        let requests = Family::<RequestLabels, Counter>::default();
        let durations: DurationFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status code",
            requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's routing to its response head, by method and route template",
            Unit::Seconds,
            durations.clone(),
        );
        Metrics {
            registry,
            requests,
            durations,
            routes: RwLock::default(),
            unmatched: Arc::from(UNMATCHED),
        }
    }

    /// The registry in the Prometheus text format.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// The label of a route template, interned: templates come from the router, so the map
    /// stays as small as the route list.
    fn route_label(&self, template: Option<&MatchedPath>) -> Arc<str> {
        let Some(template) = template.map(MatchedPath::as_str) else {
            return self.unmatched.clone();
        };
        let known = self
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(template)
            .cloned();
        known.unwrap_or_else(|| {
            self.routes
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(template.into())
                .or_insert_with(|| Arc::from(template))
                .clone()
        })
    }

    fn observe(&self, method: &'static str, route: Arc<str>, status: u16, started: Instant) {
        let seconds = started.elapsed().as_secs_f64();
        let labels = RequestLabels {
            method,
            route,
            status,
        };
        self.requests.get_or_create(&labels).inc();
        let RequestLabels { method, route, .. } = labels;
        self.durations
            .get_or_create(&RouteLabels { method, route })
            .observe(seconds);
    }
}

/// A method label from a fixed list: an extension method is `other`, not a new series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Layer on every route and the fallback (axum runs `Router::layer` middleware after
/// routing, so the matched template is known): counts the request and times it.
pub async fn record(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = metrics.route_label(req.extensions().get::<MatchedPath>());
    let method = method_label(req.method());
    let res = next.run(req).await;
    metrics.observe(method, route, res.status().as_u16(), started);
    res
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn extension_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        let custom = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(method_label(&custom), "other");
    }
}
