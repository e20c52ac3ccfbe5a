//! Accounts and sessions: sign-up validation, login, the per-email login limit, refresh-token
//! rotation with reuse detection, logout, and `/me`.
//!
//! Sign-up and login hash or verify with real argon2, so only the tests that need it go through
//! them; the others make users straight in the store.

use crate::common;

use common::{assert_problem, TestApp};
use serde_json::{json, Value};

on_both_backends!(
    signing_up_creates_an_account_with_a_lower_case_email_and_no_password_fields,
    an_email_already_taken_is_refused_whatever_its_case,
    concurrent_signups_with_one_email_create_one_account,
    invalid_signup_fields_are_refused_naming_the_field,
    malformed_or_mistyped_signup_bodies_are_refused,
    logging_in_returns_an_access_token_and_a_refresh_token,
    a_wrong_password_and_an_unknown_email_are_both_invalid_credentials,
    refreshing_rotates_and_a_reused_token_revokes_its_whole_family,
    an_unknown_refresh_token_is_refused,
    logging_out_one_session_revokes_only_that_session,
    logging_out_without_a_body_revokes_every_session,
    logging_out_needs_a_token,
    me_needs_a_valid_unexpired_token,
);

const PASSWORD: &str = "correct horse battery";

/// An account made in the store with a real argon2 hash of `password`, so it can log in.
async fn account(app: &TestApp, email: &str, password: &str) -> i64 {
    let hash = api::auth::password::hash(password.to_owned())
        .await
        .expect("hash");
    store::users::insert_user(app.db(), email, &hash, "테스터", app.state.now())
        .await
        .expect("insert user")
        .id
}

async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.post_anon(
        "/api/v1/auth/login",
        &json!({ "email": email, "password": password }),
    )
    .await
}

/// Logs in and returns the token pair.
async fn tokens(app: &TestApp, email: &str, password: &str) -> Value {
    let res = login(app, email, password).await;
    assert_eq!(res.status(), 200, "login");
    res.json().await.unwrap()
}

async fn refresh(app: &TestApp, refresh_token: &str) -> reqwest::Response {
    app.post_anon(
        "/api/v1/auth/refresh",
        &json!({ "refresh_token": refresh_token }),
    )
    .await
}

async fn me(app: &TestApp, access_token: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/v1/me"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
}

async fn user_count(app: &TestApp) -> i64 {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
        .fetch_one(app.db().pool())
        .await
        .unwrap();
    n
}

fn signup_body(email: &str, password: &str, nickname: &str) -> Value {
    json!({ "email": email, "password": password, "nickname": nickname })
}

async fn signing_up_creates_an_account_with_a_lower_case_email_and_no_password_fields(
    app: TestApp,
) {
    let res = app
        .post_anon(
            "/api/v1/auth/signup",
            &signup_body("  Kim.Minji@Example.COM ", PASSWORD, " 민지 "),
        )
        .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["email"], "kim.minji@example.com", "{body}");
    assert_eq!(body["nickname"], "민지", "{body}");
    assert_eq!(body["penalty_count"], 0, "{body}");
    assert!(body["banned_until"].is_null(), "{body}");
    assert!(body["id"].as_i64().is_some_and(|id| id > 0), "{body}");
    assert!(
        body["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with("+09:00")),
        "{body}"
    );
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert!(
        keys.iter()
            .all(|k| !k.contains("password") && !k.contains("hash")),
        "no password fields in {body}"
    );
    // The stored hash is argon2id, never the password itself.
    let (hash,): (String,) = sqlx::query_as("SELECT password_hash FROM users WHERE email = $1")
        .bind("kim.minji@example.com")
        .fetch_one(app.db().pool())
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    // The account logs in with the address in any case.
    let pair = tokens(&app, "KIM.MINJI@example.com", PASSWORD).await;
    let res = me(&app, pair["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 200);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["id"], body["id"]);
}

async fn an_email_already_taken_is_refused_whatever_its_case(app: TestApp) {
    account(&app, "taken@example.com", PASSWORD).await;
    for email in [
        "taken@example.com",
        "Taken@Example.com",
        " TAKEN@EXAMPLE.COM",
    ] {
        let res = app
            .post_anon("/api/v1/auth/signup", &signup_body(email, PASSWORD, "둘째"))
            .await;
        let body = assert_problem(res, 409, "email_taken").await;
        assert_eq!(body["field"], "email", "{email}: {body}");
    }
    assert_eq!(user_count(&app).await, 1);
}

async fn concurrent_signups_with_one_email_create_one_account(app: TestApp) {
    let body = signup_body("race@example.com", PASSWORD, "경주");
    let results =
        futures::future::join_all((0..5).map(|_| app.post_anon("/api/v1/auth/signup", &body)))
            .await;
    let mut created = 0;
    for res in results {
        if res.status() == 201 {
            created += 1;
        } else {
            let problem = assert_problem(res, 409, "email_taken").await;
            assert_eq!(problem["field"], "email");
        }
    }
    assert_eq!(
        created, 1,
        "exactly one sign-up wins; the others are conflicts, not 500s"
    );
    assert_eq!(user_count(&app).await, 1);
}

async fn invalid_signup_fields_are_refused_naming_the_field(app: TestApp) {
    let cases = [
        (
            signup_body("short@example.com", "1234567", "짧은"),
            "password",
        ),
        (
            signup_body("long@example.com", &"p".repeat(129), "긴"),
            "password",
        ),
        (signup_body("not-an-email", PASSWORD, "메일"), "email"),
        (signup_body("kim@localhost", PASSWORD, "메일"), "email"),
        (signup_body("empty@example.com", PASSWORD, ""), "nickname"),
        (
            signup_body("blank@example.com", PASSWORD, "   "),
            "nickname",
        ),
        (
            signup_body("long-nick@example.com", PASSWORD, &"가".repeat(31)),
            "nickname",
        ),
    ];
    for (body, field) in cases {
        let res = app.post_anon("/api/v1/auth/signup", &body).await;
        let problem = assert_problem(res, 422, "validation_failed").await;
        assert_eq!(problem["field"], field, "{body} -> {problem}");
    }
    assert_eq!(user_count(&app).await, 0, "nothing was written");
}

async fn malformed_or_mistyped_signup_bodies_are_refused(app: TestApp) {
    let url = app.url("/api/v1/auth/signup");
    let res = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"{"email": "a@example.com", "password": "#)
        .send()
        .await
        .unwrap();
    assert_problem(res, 400, "malformed_request").await;

    let res = app
        .post_anon(
            "/api/v1/auth/signup",
            &json!({ "email": 42, "password": PASSWORD, "nickname": "숫자" }),
        )
        .await;
    let body = assert_problem(res, 422, "validation_failed").await;
    assert_eq!(body["field"], "email", "{body}");

    let res = app
        .post_anon(
            "/api/v1/auth/signup",
            &json!({ "email": "a@example.com", "password": PASSWORD }),
        )
        .await;
    let body = assert_problem(res, 422, "validation_failed").await;
    assert_eq!(
        body["field"], "nickname",
        "a missing field is named: {body}"
    );

    let res = app
        .client
        .post(&url)
        .body(signup_body("a@example.com", PASSWORD, "타입").to_string())
        .send()
        .await
        .unwrap();
    assert_problem(res, 415, "unsupported_media_type").await;

    let res = app
        .client
        .post(&url)
        .header("content-type", "text/plain")
        .body(signup_body("a@example.com", PASSWORD, "타입").to_string())
        .send()
        .await
        .unwrap();
    assert_problem(res, 415, "unsupported_media_type").await;
    assert_eq!(user_count(&app).await, 0, "nothing was written");
}

async fn logging_in_returns_an_access_token_and_a_refresh_token(app: TestApp) {
    let id = account(&app, "login@example.com", PASSWORD).await;
    let pair = tokens(&app, "Login@Example.com", PASSWORD).await;
    let access = pair["access_token"].as_str().expect("access_token");
    let refresh_token = pair["refresh_token"].as_str().expect("refresh_token");
    assert!(!access.is_empty() && refresh_token.len() >= 32, "{pair}");
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(
        pair["expires_in"], 900,
        "the default access lifetime: {pair}"
    );
    assert_eq!(
        app.state.keys.verify(access),
        Some(id),
        "the token names the user"
    );
    let (stored,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM refresh_tokens WHERE user_id = $1")
            .bind(id)
            .fetch_one(app.db().pool())
            .await
            .unwrap();
    assert_eq!(stored, 1, "one session stored");
    let (plain,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM refresh_tokens WHERE token_hash = $1")
            .bind(refresh_token)
            .fetch_one(app.db().pool())
            .await
            .unwrap();
    assert_eq!(plain, 0, "refresh tokens are stored hashed");
}

async fn a_wrong_password_and_an_unknown_email_are_both_invalid_credentials(app: TestApp) {
    account(&app, "someone@example.com", PASSWORD).await;
    let wrong = assert_problem(
        login(&app, "someone@example.com", "wrong horse battery").await,
        401,
        "invalid_credentials",
    )
    .await;
    let unknown = assert_problem(
        login(&app, "nobody@example.com", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(
        wrong["detail"], unknown["detail"],
        "the two cases look the same"
    );
    assert!(
        wrong.get("field").is_none(),
        "no hint which part was wrong: {wrong}"
    );
    let res = login(&app, "not-an-email", PASSWORD).await;
    let body = assert_problem(res, 422, "validation_failed").await;
    assert_eq!(body["field"], "email");
}

async fn refreshing_rotates_and_a_reused_token_revokes_its_whole_family(app: TestApp) {
    let id = account(&app, "rotate@example.com", PASSWORD).await;
    let first = tokens(&app, "rotate@example.com", PASSWORD).await;
    let r0 = first["refresh_token"].as_str().unwrap().to_owned();

    let res = refresh(&app, &r0).await;
    assert_eq!(res.status(), 200);
    let second: Value = res.json().await.unwrap();
    let r1 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r0, r1, "a new refresh token each time");
    assert_eq!(
        app.state
            .keys
            .verify(second["access_token"].as_str().unwrap()),
        Some(id)
    );
    assert_eq!(
        me(&app, second["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // The new token works once in turn.
    let res = refresh(&app, &r1).await;
    assert_eq!(res.status(), 200);
    let third: Value = res.json().await.unwrap();
    let r2 = third["refresh_token"].as_str().unwrap().to_owned();

    // Presenting a used token again is a reuse: refused, and the family dies with it.
    assert_problem(refresh(&app, &r1).await, 401, "refresh_token_reused").await;
    assert_problem(refresh(&app, &r2).await, 401, "invalid_refresh_token").await;
    // Once the family is revoked, every token of it is simply invalid.
    assert_problem(refresh(&app, &r0).await, 401, "invalid_refresh_token").await;

    // A new login starts a new family, which works until the refresh lifetime (30 days) is over.
    let fresh = tokens(&app, "rotate@example.com", PASSWORD).await;
    let res = refresh(&app, fresh["refresh_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 200);
    let n1: Value = res.json().await.unwrap();
    let day = 24 * 3600 * 1000;
    app.state.clock.advance_ms(30 * day - 60_000);
    let res = refresh(&app, n1["refresh_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 200, "still within 30 days");
    let n2: Value = res.json().await.unwrap();
    app.state.clock.advance_ms(30 * day + 60_000);
    assert_problem(
        refresh(&app, n2["refresh_token"].as_str().unwrap()).await,
        401,
        "invalid_refresh_token",
    )
    .await;
}

async fn an_unknown_refresh_token_is_refused(app: TestApp) {
    assert_problem(
        refresh(&app, "no-such-token").await,
        401,
        "invalid_refresh_token",
    )
    .await;
    assert_problem(refresh(&app, "").await, 401, "invalid_refresh_token").await;
    let res = app.post_anon("/api/v1/auth/refresh", &json!({})).await;
    let body = assert_problem(res, 422, "validation_failed").await;
    assert_eq!(body["field"], "refresh_token");
}

async fn logging_out_one_session_revokes_only_that_session(app: TestApp) {
    let id = account(&app, "two@example.com", PASSWORD).await;
    let phone = tokens(&app, "two@example.com", PASSWORD).await;
    let laptop = tokens(&app, "two@example.com", PASSWORD).await;
    let access = app.state.keys.issue(id, app.state.now()).unwrap();
    let res = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&access)
        .json(&json!({ "refresh_token": phone["refresh_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(res.bytes().await.unwrap().is_empty(), "204 has no body");
    assert_problem(
        refresh(&app, phone["refresh_token"].as_str().unwrap()).await,
        401,
        "invalid_refresh_token",
    )
    .await;
    let res = refresh(&app, laptop["refresh_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 200, "the other session lives");
    let laptop: Value = res.json().await.unwrap();

    // Another user cannot end this session: it is not found for them, and stays alive.
    let other = app.user("other").await;
    for token in [laptop["refresh_token"].as_str().unwrap(), "no-such-session"] {
        let res = app
            .client
            .post(app.url("/api/v1/auth/logout"))
            .bearer_auth(&other.token)
            .json(&json!({ "refresh_token": token }))
            .send()
            .await
            .unwrap();
        let body = assert_problem(res, 404, "not_found").await;
        assert_eq!(body["field"], "refresh_token");
    }
    assert_eq!(
        refresh(&app, laptop["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

async fn logging_out_without_a_body_revokes_every_session(app: TestApp) {
    let id = account(&app, "all@example.com", PASSWORD).await;
    let a = tokens(&app, "all@example.com", PASSWORD).await;
    let b = tokens(&app, "all@example.com", PASSWORD).await;
    let res = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(app.state.keys.issue(id, app.state.now()).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    for pair in [a, b] {
        assert_problem(
            refresh(&app, pair["refresh_token"].as_str().unwrap()).await,
            401,
            "invalid_refresh_token",
        )
        .await;
    }
    let (live,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .fetch_one(app.db().pool())
    .await
    .unwrap();
    assert_eq!(live, 0);
}

async fn logging_out_needs_a_token(app: TestApp) {
    let res = app.post_anon("/api/v1/auth/logout", &json!({})).await;
    assert_problem(res, 401, "unauthorized").await;
    let res = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth("not-a-jwt")
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
}

async fn me_needs_a_valid_unexpired_token(app: TestApp) {
    let user = app.user("나").await;
    let res = app.get(Some(&user), "/api/v1/me").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], user.id);
    assert_eq!(body["nickname"], "나");
    assert!(body.get("password_hash").is_none(), "{body}");

    assert_problem(app.get(None, "/api/v1/me").await, 401, "unauthorized").await;
    assert_problem(me(&app, "garbage").await, 401, "unauthorized").await;
    // Expiry is checked against the system clock: a token issued two hours ago has expired.
    let old = app
        .state
        .keys
        .issue(user.id, app.state.now() - 2 * 3600 * 1000)
        .unwrap();
    assert_problem(me(&app, &old).await, 401, "unauthorized").await;
    // Signed with another secret.
    let theirs = api::auth::jwt::TokenKeys::new(
        b"another-secret-another-secret",
        std::time::Duration::from_secs(900),
    );
    let forged = theirs.issue(user.id, app.state.now()).unwrap();
    assert_problem(me(&app, &forged).await, 401, "unauthorized").await;
    // The scheme must be Bearer.
    let res = app
        .client
        .get(app.url("/api/v1/me"))
        .header("authorization", format!("Basic {}", user.token))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
    // A valid token of an account that does not exist.
    let ghost = app.state.keys.issue(987_654, app.state.now()).unwrap();
    assert_problem(me(&app, &ghost).await, 401, "unauthorized").await;
}

/// The login limit per email, with a limit of 3 so the test stays short (its own settings).
mod login_limit {
    use super::common::{assert_problem, TestApp};
    use super::login;
    use api::state::Settings;

    pub(super) fn settings() -> Settings {
        Settings {
            login_limit_per_email: 3,
            ..super::common::test_settings()
        }
    }

    pub(super) async fn check(app: TestApp) {
        for _ in 0..3 {
            let res = login(&app, "limited@example.com", "wrong password!").await;
            assert_problem(res, 401, "invalid_credentials").await;
        }
        // Case does not open a new budget: the key is the normalised email.
        let res = login(&app, "Limited@Example.com", "wrong password!").await;
        let retry_after = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        assert_problem(res, 429, "too_many_attempts").await;
        let retry_after = retry_after.expect("a numeric Retry-After header");
        assert!(
            (1..=900).contains(&retry_after),
            "within the window: {retry_after}"
        );
        // Another email still has its own budget.
        let res = login(&app, "other@example.com", "wrong password!").await;
        assert_problem(res, 401, "invalid_credentials").await;
    }
}

async fn the_fourth_login_for_one_email_within_the_window_is_too_many_attempts(app: TestApp) {
    login_limit::check(app).await;
}

on_both_backends!(with super::login_limit::settings() => the_fourth_login_for_one_email_within_the_window_is_too_many_attempts);
