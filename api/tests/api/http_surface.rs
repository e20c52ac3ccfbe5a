//! What every client sees around the routes: health, readiness, metrics, the OpenAPI document and
//! docs, request ids, problem+json for unknown routes and methods, and CORS.

use crate::common;

use common::{assert_problem, Backend, TestApp};
use serde_json::{json, Value};

on_both_backends!(
    healthz_answers_ok,
    readyz_reports_the_database_and_redis,
    metrics_count_requests_by_route,
    requests_to_unknown_routes_are_counted_as_unmatched,
    the_openapi_document_lists_every_route_and_the_problem_schema,
    the_docs_are_served_as_html,
    every_response_carries_a_request_id,
    an_unknown_route_is_a_problem_not_found,
    a_wrong_method_is_a_problem_method_not_allowed,
    without_configured_origins_there_is_no_cors,
);

async fn healthz_answers_ok(app: TestApp) {
    let res = app.get(None, "/healthz").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

async fn readyz_reports_the_database_and_redis(app: TestApp) {
    let res = app.get(None, "/readyz").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["database"]["ok"], true, "{body}");
    match app.backend {
        Backend::Embedded => {
            assert_eq!(body["database"]["dialect"], "sqlite");
            assert_eq!(body["redis"], "not configured");
        }
        Backend::Scaled => {
            assert_eq!(body["database"]["dialect"], "postgres");
            assert_eq!(body["redis"]["ok"], true, "{body}");
        }
    }
}

async fn metrics_count_requests_by_route(app: TestApp) {
    let user = app.user("metered").await;
    assert_eq!(app.get(Some(&user), "/api/v1/me").await.status(), 200);
    assert_eq!(app.get(None, "/api/v1/markets/999999").await.status(), 404);
    let res = app.get(None, "/metrics").await;
    assert_eq!(res.status(), 200);
    let ct = res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(ct.starts_with("text/plain"), "{ct}");
    let text = res.text().await.unwrap();
    assert!(text.contains("http_requests_total"), "{text}");
    let counted = |route: &str, status: &str| {
        text.lines().any(|l| {
            l.starts_with("http_requests_total{")
                && l.contains(&format!("route=\"{route}\""))
                && l.contains(&format!("status=\"{status}\""))
                && l.contains("method=\"GET\"")
        })
    };
    assert!(counted("/api/v1/me", "200"), "{text}");
    assert!(
        counted("/api/v1/markets/{id}", "404"),
        "the route template, not the path: {text}"
    );
    assert!(
        !text.contains("/api/v1/markets/999999"),
        "no raw paths as labels"
    );
    assert!(text.contains("http_request_duration_seconds"), "{text}");
    assert!(text.contains("db_pool_connections"), "{text}");
}

/// `track_metrics` labels requests without a matched route `unmatched`, so scans and broken
/// clients show up on dashboards; those requests must reach it.
async fn requests_to_unknown_routes_are_counted_as_unmatched(app: TestApp) {
    for _ in 0..3 {
        assert_eq!(app.get(None, "/no/such/route").await.status(), 404);
    }
    let text = app.get(None, "/metrics").await.text().await.unwrap();
    let line = text.lines().find(|l| {
        l.starts_with("http_requests_total{")
            && l.contains("route=\"unmatched\"")
            && l.contains("status=\"404\"")
    });
    let line = line.unwrap_or_else(|| panic!("no unmatched 404 count in:\n{text}"));
    assert!(line.ends_with(" 3"), "{line}");
    assert!(!text.contains("/no/such/route"), "no raw paths as labels");
}

async fn the_openapi_document_lists_every_route_and_the_problem_schema(app: TestApp) {
    let res = app.get(None, "/openapi.json").await;
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .into_iter()
                .flat_map(|ops| ops.keys())
                .filter(|m| ["get", "post", "patch", "put", "delete"].contains(&m.as_str()))
                .map(move |m| (path.clone(), m.clone()))
        })
        .collect();
    documented.sort();
    let mut expected: Vec<(String, String)> = [
        ("/api/v1/admin/chat-reports", "get"),
        ("/api/v1/admin/jobs", "get"),
        ("/api/v1/admin/jobs/{id}/retry", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/signup", "post"),
        ("/api/v1/auth/stream-ticket", "post"),
        ("/api/v1/ingest/runs", "get"),
        ("/api/v1/items", "get"),
        ("/api/v1/items/{id}", "get"),
        ("/api/v1/markets", "get"),
        ("/api/v1/markets/nearby", "get"),
        ("/api/v1/markets/{id}", "get"),
        ("/api/v1/me", "get"),
        ("/api/v1/me/notifications", "get"),
        ("/api/v1/me/notifications/read-all", "post"),
        ("/api/v1/me/notifications/stream", "get"),
        ("/api/v1/me/notifications/{seq}/read", "post"),
        ("/api/v1/me/parties", "get"),
        ("/api/v1/me/penalties", "get"),
        ("/api/v1/me/wishlists", "get"),
        ("/api/v1/me/wishlists", "post"),
        ("/api/v1/me/wishlists/{id}", "delete"),
        ("/api/v1/penalties/{id}", "delete"),
        ("/api/v1/users/{id}", "get"),
        ("/api/v1/parties/{id}/attendance", "get"),
        ("/api/v1/parties/{id}/attendance", "put"),
        ("/api/v1/parties", "get"),
        ("/api/v1/parties", "post"),
        ("/api/v1/parties/nearby", "get"),
        ("/api/v1/parties/{id}", "get"),
        ("/api/v1/parties/{id}", "patch"),
        ("/api/v1/parties/{id}/bookings", "post"),
        ("/api/v1/parties/{id}/bookings/me", "delete"),
        ("/api/v1/parties/{id}/cancel", "post"),
        ("/api/v1/parties/{id}/queue", "get"),
        ("/api/v1/parties/{id}/queue", "post"),
        ("/api/v1/parties/{id}/queue/close", "post"),
        ("/api/v1/parties/{id}/queue/me", "delete"),
        ("/api/v1/parties/{id}/queue/me", "get"),
        ("/api/v1/parties/{id}/queue/me/events", "get"),
        ("/api/v1/parties/{id}/queue/open", "post"),
        ("/api/v1/parties/{id}/queue/pause", "post"),
        ("/api/v1/parties/{id}/queue/resume", "post"),
        ("/api/v1/parties/{id}/chat/ws", "get"),
        ("/api/v1/parties/{id}/chat/messages", "get"),
        ("/api/v1/parties/{id}/chat/read", "post"),
        ("/api/v1/me/chats", "get"),
        ("/api/v1/parties/{id}/chat/messages/{seq}", "delete"),
        ("/api/v1/parties/{id}/chat/messages/{seq}/report", "post"),
        ("/api/v1/me/notification-preferences", "get"),
        ("/api/v1/me/notification-preferences", "put"),
        ("/api/v1/me/push-subscriptions", "get"),
        ("/api/v1/me/push-subscriptions", "post"),
        ("/api/v1/me/push-subscriptions", "delete"),
        ("/api/v1/push/vapid-public-key", "get"),
    ]
    .iter()
    .map(|(p, m)| ((*p).to_owned(), (*m).to_owned()))
    .collect();
    expected.sort();
    assert_eq!(documented, expected, "the documented operations, exactly");
    // Every documented operation is served: the router knows its path and method (a request
    // without a token or body may be refused, but never as an unknown route or method).
    for (path, method) in &documented {
        let url = app.url(&path.replace("{id}", "1"));
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let res = app
            .client
            .request(method.clone(), url)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert!(
            status != 405 && body["code"] != "route_not_found",
            "{method} {path} is documented but not routed: {status} {body}"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let problem = schemas.get("Problem").expect("the Problem schema");
    let props = problem["properties"]
        .as_object()
        .expect("Problem properties");
    for field in ["type", "title", "status", "detail", "code", "field"] {
        assert!(props.contains_key(field), "Problem.{field}: {problem}");
    }
    assert!(
        doc["components"]["securitySchemes"]["bearer"].is_object(),
        "the bearer scheme"
    );
    // Authenticated operations say so; public ones do not.
    assert!(doc["paths"]["/api/v1/parties"]["post"]["security"].is_array());
    assert!(doc["paths"]["/api/v1/markets"]["get"]
        .get("security")
        .is_none());
}

async fn the_docs_are_served_as_html(app: TestApp) {
    let res = app.get(None, "/docs/").await;
    assert_eq!(res.status(), 200);
    let ct = res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(ct.starts_with("text/html"), "{ct}");
    let html = res.text().await.unwrap();
    assert!(html.to_lowercase().contains("<html"), "{html}");
    assert!(html.contains("swagger"), "the Swagger UI page");
}

async fn every_response_carries_a_request_id(app: TestApp) {
    let user = app.user("ids").await;
    let responses = vec![
        app.get(None, "/healthz").await,
        app.get(Some(&user), "/api/v1/me").await,
        app.get(None, "/api/v1/me").await,
        app.get(None, "/api/v1/parties/999999").await,
        app.get(None, "/no/such/route").await,
        app.client
            .delete(app.url("/api/v1/markets"))
            .send()
            .await
            .unwrap(),
        app.get(None, "/metrics").await,
    ];
    let mut ids = std::collections::HashSet::new();
    for res in responses {
        let id = res
            .headers()
            .get("x-request-id")
            .unwrap_or_else(|| panic!("no x-request-id on {} {}", res.status(), res.url()))
            .to_str()
            .unwrap()
            .to_owned();
        assert!(!id.is_empty());
        ids.insert(id);
    }
    assert_eq!(ids.len(), 7, "a new id per request");
    // A caller's id is kept.
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers().get("x-request-id").unwrap(), "trace-me-123");
}

async fn an_unknown_route_is_a_problem_not_found(app: TestApp) {
    for path in [
        "/nope",
        "/api/v1/nope",
        "/api/v2/parties",
        "/api/v1/parties/1/nope",
    ] {
        let body = assert_problem(app.get(None, path).await, 404, "route_not_found").await;
        assert_eq!(body["type"], "/problems/route_not_found", "{path}");
        assert_eq!(body["title"], "Not Found", "{path}");
    }
    let res = app
        .client
        .post(app.url("/api/v1/nope"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "route_not_found").await;
}

async fn a_wrong_method_is_a_problem_method_not_allowed(app: TestApp) {
    let cases = [
        (reqwest::Method::DELETE, "/api/v1/markets", "GET"),
        (reqwest::Method::PUT, "/api/v1/parties/1", "PATCH"),
        (reqwest::Method::GET, "/api/v1/auth/login", "POST"),
        (reqwest::Method::POST, "/healthz", "GET"),
    ];
    for (method, path, allowed) in cases {
        let res = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        let allow = res
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert_problem(res, 405, "method_not_allowed").await;
        assert!(allow.contains(allowed), "{method} {path}: Allow: {allow:?}");
    }
}

async fn without_configured_origins_there_is_no_cors(app: TestApp) {
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

/// CORS with configured origins (its own settings).
mod cors {
    use super::common::TestApp;
    use api::state::Settings;

    pub(super) fn settings() -> Settings {
        Settings {
            cors_origins: vec!["https://app.example".into()],
            ..super::common::test_settings()
        }
    }

    async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/parties"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, idempotency-key",
            )
            .send()
            .await
            .unwrap()
    }

    fn header(res: &reqwest::Response, name: &str) -> Option<String> {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    pub(super) async fn check(app: TestApp) {
        let res = preflight(&app, "https://app.example").await;
        assert!(res.status().is_success(), "{}", res.status());
        assert_eq!(
            header(&res, "access-control-allow-origin").as_deref(),
            Some("https://app.example")
        );
        assert_eq!(
            header(&res, "access-control-allow-credentials").as_deref(),
            Some("true")
        );
        let methods = header(&res, "access-control-allow-methods").unwrap_or_default();
        assert!(
            methods.contains("POST") && methods.contains("PATCH"),
            "{methods}"
        );
        let headers = header(&res, "access-control-allow-headers")
            .unwrap_or_default()
            .to_lowercase();
        for h in ["authorization", "content-type", "idempotency-key"] {
            assert!(headers.contains(h), "{h} in {headers}");
        }

        let res = preflight(&app, "https://evil.example").await;
        assert!(
            header(&res, "access-control-allow-origin").is_none(),
            "no allow-origin for others"
        );

        // A simple request from the origin sees the request id.
        let res = app
            .client
            .get(app.url("/healthz"))
            .header("origin", "https://app.example")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(
            header(&res, "access-control-allow-origin").as_deref(),
            Some("https://app.example")
        );
        assert_eq!(
            header(&res, "access-control-allow-credentials").as_deref(),
            Some("true")
        );
        let exposed = header(&res, "access-control-expose-headers")
            .unwrap_or_default()
            .to_lowercase();
        assert!(exposed.contains("x-request-id"), "{exposed}");
        let res = app
            .client
            .get(app.url("/healthz"))
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert!(header(&res, "access-control-allow-origin").is_none());
    }
}

async fn cors_allows_only_the_configured_origins_with_credentials(app: TestApp) {
    cors::check(app).await;
}

on_both_backends!(with super::cors::settings() => cors_allows_only_the_configured_origins_with_credentials);

/// A room with `user` waiting in it (rate 1 a minute and someone ahead, so `user` stays waiting).
async fn waiting_in_a_room(app: &TestApp) -> (i64, common::TestUser) {
    let leader = app.user("leader").await;
    let id = app.party(&leader, 4).await["id"].as_i64().unwrap();
    let res = app
        .post(
            &leader,
            &format!("/api/v1/parties/{id}/queue/open"),
            &json!({ "rate_per_min": 1 }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let ahead = app.user("ahead").await;
    let user = app.user("waiting").await;
    for u in [&ahead, &user] {
        let res = app
            .post(u, &format!("/api/v1/parties/{id}/queue"), &json!({}))
            .await;
        assert_eq!(res.status(), 201);
    }
    (id, user)
}

async fn a_stream_opens_with_a_ticket_once(app: TestApp) {
    let (id, user) = waiting_in_a_room(&app).await;
    let res = app
        .post(&user, "/api/v1/auth/stream-ticket", &json!({}))
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let ticket: Value = res.json().await.unwrap();
    assert_eq!(ticket["expires_in"], 60);
    let ticket = ticket["ticket"].as_str().unwrap().to_owned();
    let events = format!("/api/v1/parties/{id}/queue/me/events?ticket={ticket}");
    let mut stream = app.get(None, &events).await;
    assert_eq!(stream.status(), 200);
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: position"));
    // Used once: refused the second time, as is a ticket nobody issued.
    let problem = assert_problem(app.get(None, &events).await, 401, "invalid_ticket").await;
    assert_eq!(problem["field"], "ticket");
    let bogus = format!("/api/v1/parties/{id}/queue/me/events?ticket=nope");
    assert_problem(app.get(None, &bogus).await, 401, "invalid_ticket").await;
    assert_problem(
        app.post_anon("/api/v1/auth/stream-ticket", &json!({}))
            .await,
        401,
        "unauthorized",
    )
    .await;
}

on_both_backends!(a_stream_opens_with_a_ticket_once);

/// SIGTERM with a stream open: the server stops long before its grace period, and the stream's
/// client sees the stream end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_streams_instead_of_waiting_out_the_grace() {
    let app = TestApp::spawn(Backend::Embedded).await.unwrap();
    let (id, user) = waiting_in_a_room(&app).await;
    let mut stream = app
        .get(
            Some(&user),
            &format!("/api/v1/parties/{id}/queue/me/events"),
        )
        .await;
    assert_eq!(stream.status(), 200);
    stream.chunk().await.unwrap().unwrap();
    let grace = std::time::Duration::from_secs(120);
    tokio::time::timeout(std::time::Duration::from_secs(60), app.shutdown_with(grace))
        .await
        .expect("shut down before the grace period ended");
    let mut rest = Vec::new();
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), stream.chunk()).await {
            Ok(Ok(Some(bytes))) => rest.extend_from_slice(&bytes),
            Ok(Ok(None)) | Ok(Err(_)) => break,
            Err(_) => panic!("the stream did not end"),
        }
    }
}
