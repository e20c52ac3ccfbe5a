//! Liveness, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde_json::json;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// `/metrics`: on the API listener, or on its own (`GONGGU_METRICS_LISTEN`).
pub fn metrics_router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics_text))
}

/// Alive: the process answers.
async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

/// Ready: the database (and Redis, when configured) answer.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let db = state.db.ping().await;
    let redis = match &state.live.redis {
        Some(_) => Some(state.live.ping().await),
        None => None,
    };
    let db_ok = db.is_ok();
    let redis_ok = redis.as_ref().is_none_or(|r| r.is_ok());
    if let Err(err) = &db {
        tracing::warn!(error = %err, "readiness: database unreachable");
    }
    if let Some(Err(err)) = &redis {
        tracing::warn!(error = %err, "readiness: redis unreachable");
    }
    // A process that should run a job worker is not ready while its worker is down (restarting
    // after its backend failed).
    let worker = state
        .jobs
        .get()
        .filter(|_| state.settings.jobs.run_workers)
        .map(|jobs| (jobs.health.is_up(), jobs.health.restarts()));
    let worker_ok = worker.is_none_or(|(up, _)| up);
    if !worker_ok {
        tracing::warn!("readiness: the job worker is down");
    }
    let status = if db_ok && redis_ok && worker_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if status == StatusCode::OK { "ready" } else { "unavailable" },
        "database": { "dialect": state.db.dialect().name(), "ok": db_ok },
        "redis": match redis { None => json!("not configured"), Some(r) => json!({ "ok": r.is_ok() }) },
        "worker": match worker {
            None => json!("not running here"),
            Some((up, restarts)) => json!({ "ok": up, "restarts": restarts }),
        },
    });
    (status, axum::Json(body))
}

/// Prometheus text exposition.
async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    let (size, idle) = state.db.pool_stats();
    let admitter_rounds = state
        .admitter_rounds
        .load(std::sync::atomic::Ordering::Relaxed);
    // How far each durable outbox consumer is behind (events it has not processed yet).
    let lags = match store::consumers::lags(&state.db).await {
        Ok(lags) => lags,
        Err(err) => {
            tracing::warn!(error = %store::error::chain(&err), "metrics: consumer lag unreadable");
            Vec::new()
        }
    };
    let jobs = match state.jobs.get() {
        Some(jobs) => match jobs.store.counts(state.now() / 1000).await {
            Ok(counts) => Some(counts),
            Err(err) => {
                tracing::warn!(error = %err, "metrics: job counts unreadable");
                None
            }
        },
        None => None,
    };
    let tally = state
        .jobs
        .get()
        .map(|jobs| jobs.store.tally().snapshot())
        .unwrap_or_default();
    state.metrics.record(|| {
        for (kind, outcome, n) in tally {
            metrics::counter!(outcome.metric(), "kind" => kind).absolute(n);
        }
        if let Some((counts, oldest_due_secs)) = jobs {
            for (kind, job_state, n) in counts {
                metrics::gauge!("jobs", "kind" => kind, "state" => job_state).set(n as f64);
            }
            metrics::gauge!("jobs_oldest_due_age_seconds").set(oldest_due_secs as f64);
        }
        metrics::gauge!("db_pool_connections").set(size as f64);
        metrics::gauge!("db_pool_idle_connections").set(idle as f64);
        metrics::counter!("waiting_room_admitter_rounds_total").absolute(admitter_rounds);
        for (consumer, lag) in lags {
            metrics::gauge!("outbox_consumer_lag", "consumer" => consumer).set(lag as f64);
        }
    });
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
