//! The router: every feature's routes under `/api/v1`, the OpenAPI document built from the same
//! route table, docs, health, and the layers every request passes through.

use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ApiError;
use crate::limits::{self, REQUEST_ID};
use crate::openapi::ApiDoc;
use crate::state::AppState;
use crate::{
    admin, auth, chat, health, idempotency, ingest_runs, items, markets, nearby, notifications,
    parties, penalties, queue,
};

/// The `/api/v1` routes and the OpenAPI document describing them.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let v1 = OpenApiRouter::new()
        .merge(auth::router())
        .merge(markets::router())
        .merge(items::router())
        .merge(parties::router())
        .merge(penalties::router())
        .merge(notifications::router())
        .merge(admin::router())
        .merge(nearby::router())
        .merge(queue::router())
        .merge(chat::router())
        .merge(ingest_runs::router());
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1)
        .split_for_parts();
    // After the routes are in: the rules walk their operations.
    (router, crate::openapi::complete(openapi))
}

/// The whole application. `/metrics` is on it unless it has a listener of its own
/// (`GONGGU_METRICS_LISTEN`, served by [`metrics_router`]).
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api();
    let api = api.layer(middleware::from_fn_with_state(
        state.clone(),
        idempotency::layer,
    ));
    let mut ops = health::router();
    if state.settings.http.metrics_listen.is_none() {
        ops = ops.merge(health::metrics_router());
    }
    let app = Router::new()
        .merge(api)
        .merge(ops)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .fallback(not_found)
        // `layer`, not `route_layer`: unknown routes are counted too, as `unmatched`.
        .layer(middleware::from_fn_with_state(state.clone(), track_metrics))
        .layer(middleware::from_fn(problem_for_bare_errors));
    let app = match cors(&state.settings.cors_origins) {
        Some(cors) => app.layer(cors),
        None => app,
    };
    let app = app.layer(middleware::from_fn_with_state(
        state.clone(),
        limits::read_body,
    ));
    app.with_state(state)
        .layer(CatchPanicLayer::custom(limits::PanicToProblem))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(middleware::from_fn(limits::edge))
}

/// `/metrics` alone, for its own listener.
pub fn metrics_router(state: AppState) -> Router {
    health::metrics_router()
        .fallback(not_found)
        .with_state(state)
        .layer(middleware::from_fn(limits::security_headers_only))
}

/// CORS from the configured origins (checked at start by `state::check_origin`), with
/// credentials; never `*`.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter(|o| crate::state::check_origin(o).is_ok())
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
                HeaderName::from_static(idempotency::HEADER),
                HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([REQUEST_ID])
            .max_age(Duration::from_secs(3600)),
    )
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such route")
}

/// axum answers some errors itself (405) with an empty body; give them problem+json too.
async fn problem_for_bare_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && response
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .is_none()
    {
        let allow = response.headers().get(axum::http::header::ALLOW).cloned();
        let mut problem = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this route",
        )
        .into_response();
        if let Some(allow) = allow {
            problem
                .headers_mut()
                .insert(axum::http::header::ALLOW, allow);
        }
        return problem;
    }
    response
}

/// Request count and latency per route, method and status.
async fn track_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    let elapsed = started.elapsed().as_secs_f64();
    state.metrics.record(|| {
        metrics::counter!("http_requests_total", &labels).increment(1);
        metrics::histogram!("http_request_duration_seconds", &labels).record(elapsed);
    });
    response
}
