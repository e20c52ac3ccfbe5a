//! Web Push end to end against a local mock push service that does what a browser's push service
//! and the browser do: checks the VAPID token (an ES256 signature by the key the server serves,
//! for the endpoint's origin) and decrypts each message with the subscription's private key
//! (RFC 8291, implemented again here from the RFC, not with the server's code). Plus notification
//! preferences (muted kinds, quiet hours in Seoul time under the test clock) and pruning.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use crate::common::{assert_problem, eventually, join, TestApp, TestUser};

on_both_backends!(with crate::common::jobs_settings() =>
    each_notification_is_pushed_once_to_each_subscription_and_a_gone_one_is_removed,
    quiet_hours_and_muted_kinds_stop_pushes_but_not_the_inbox,
    push_subscriptions_and_preferences_refuse_bad_input_naming_the_field,
    notifications_older_than_90_days_are_pruned_and_a_pruned_id_gets_reset,
);

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// One browser as the mock holds it: its key pair, its auth secret, the status it answers.
struct Browser {
    secret: p256::SecretKey,
    public: Vec<u8>,
    auth: [u8; 16],
    answer: u16,
}

#[derive(Default)]
struct MockState {
    browsers: HashMap<String, Browser>,
    /// Per browser, every push received and decrypted, in arrival order.
    received: HashMap<String, Vec<Value>>,
    /// Pushes answered with something other than 201 (a 410), per browser.
    refused: HashMap<String, usize>,
    /// What was wrong with a push (bad token, undecryptable body): must stay empty.
    errors: Vec<String>,
}

/// The mock push service, listening on loopback.
struct PushService {
    base: String,
    state: Arc<Mutex<MockState>>,
}

impl PushService {
    async fn start() -> PushService {
        let state = Arc::new(Mutex::new(MockState::default()));
        let app = axum::Router::new()
            .route("/push/{browser}", axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        PushService {
            base: format!("http://{addr}"),
            state,
        }
    }

    /// A new browser named `name`: its subscription JSON, as `PushSubscription.toJSON()` gives.
    fn browser(&self, name: &str) -> Value {
        let secret = loop {
            if let Ok(k) = p256::SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
                break k;
            }
        };
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let public = secret
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        let auth: [u8; 16] = rand::random();
        let sub = json!({
            "endpoint": format!("{}/push/{name}", self.base),
            "expirationTime": null,
            "keys": {"p256dh": URL_SAFE_NO_PAD.encode(&public), "auth": URL_SAFE_NO_PAD.encode(auth)},
        });
        self.state.lock().unwrap().browsers.insert(
            name.to_owned(),
            Browser {
                secret,
                public,
                auth,
                answer: 201,
            },
        );
        sub
    }

    fn answer(&self, name: &str, status: u16) {
        self.state
            .lock()
            .unwrap()
            .browsers
            .get_mut(name)
            .unwrap()
            .answer = status;
    }

    /// The seqs `name` received, sorted (jobs run concurrently: pushes may arrive in any order),
    /// repeats kept.
    fn seqs(&self, name: &str) -> Vec<i64> {
        let state = self.state.lock().unwrap();
        assert!(state.errors.is_empty(), "bad pushes: {:?}", state.errors);
        let mut seqs: Vec<i64> = state
            .received
            .get(name)
            .map(|v| v.iter().map(|p| p["seq"].as_i64().unwrap()).collect())
            .unwrap_or_default();
        seqs.sort();
        seqs
    }

    fn received(&self, name: &str) -> Vec<Value> {
        self.state
            .lock()
            .unwrap()
            .received
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    fn refused(&self, name: &str) -> usize {
        *self.state.lock().unwrap().refused.get(name).unwrap_or(&0)
    }

    async fn wait_for(&self, name: &str, seq: i64) {
        eventually(&format!("{name} pushed seq {seq}"), || async {
            self.seqs(name).contains(&seq).then_some(())
        })
        .await;
    }
}

async fn receive(
    State(state): State<Arc<Mutex<MockState>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut state = state.lock().unwrap();
    let Some(browser) = state.browsers.get(&name) else {
        return StatusCode::NOT_FOUND;
    };
    let host = headers["host"].to_str().unwrap().to_owned();
    let checked = check_vapid(&headers, &format!("http://{host}")).and_then(|()| {
        if headers.get("content-encoding").map(|v| v.as_bytes()) != Some(b"aes128gcm") {
            return Err("Content-Encoding is not aes128gcm".to_owned());
        }
        if headers.get("ttl").is_none() {
            return Err("no TTL".to_owned());
        }
        decrypt(browser, &body)
    });
    let answer = browser.answer;
    match checked {
        Err(err) => {
            state.errors.push(err);
            StatusCode::BAD_REQUEST
        }
        Ok(_) if answer != 201 => {
            *state.refused.entry(name).or_default() += 1;
            StatusCode::from_u16(answer).unwrap()
        }
        Ok(payload) => {
            state.received.entry(name).or_default().push(payload);
            StatusCode::CREATED
        }
    }
}

/// RFC 8292: `Authorization: vapid t=<ES256 JWT>, k=<public key>`, the token for `origin`.
fn check_vapid(headers: &HeaderMap, origin: &str) -> Result<(), String> {
    let value = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or("no Authorization")?;
    let rest = value.strip_prefix("vapid t=").ok_or("not a vapid scheme")?;
    let (token, key) = rest.split_once(", k=").ok_or("no k=")?;
    let (input, sig) = token.rsplit_once('.').ok_or("not a JWT")?;
    let key = URL_SAFE_NO_PAD.decode(key).map_err(|e| e.to_string())?;
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|e| e.to_string())?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &key)
        .verify(input.as_bytes(), &sig)
        .map_err(|_| "the VAPID signature does not verify".to_owned())?;
    let (header, claims) = input.split_once('.').ok_or("not a JWT")?;
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    if header["alg"] != "ES256" {
        return Err(format!("alg {}", header["alg"]));
    }
    if claims["aud"] != origin {
        return Err(format!("aud {} is not {origin}", claims["aud"]));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = claims["exp"].as_u64().ok_or("no exp")?;
    if exp <= now || exp > now + 24 * 3600 {
        return Err(format!("exp {exp} is not within a day of {now}"));
    }
    Ok(())
}

struct Len(usize);

impl ring::hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], n: usize) -> Vec<u8> {
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt).extract(ikm);
    let mut out = vec![0; n];
    prk.expand(&[info], Len(n)).unwrap().fill(&mut out).unwrap();
    out
}

/// What the browser does (RFC 8291 §3.4, RFC 8188 §2): the body's header gives the salt and the
/// sender's key; ECDH with the browser's private key, two HKDF steps, AES-128-GCM.
fn decrypt(browser: &Browser, body: &[u8]) -> Result<Value, String> {
    if body.len() < 21 {
        return Err("body too short".into());
    }
    let salt = &body[..16];
    let idlen = body[20] as usize;
    let as_public = &body[21..21 + idlen];
    let mut record = body[21 + idlen..].to_vec();
    let sender = p256::PublicKey::from_sec1_bytes(as_public).map_err(|e| e.to_string())?;
    let shared = p256::ecdh::diffie_hellman(browser.secret.to_nonzero_scalar(), sender.as_affine());
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(&browser.public);
    key_info.extend_from_slice(as_public);
    let ikm = hkdf(&browser.auth, shared.raw_secret_bytes(), &key_info, 32);
    let cek = hkdf(salt, &ikm, b"Content-Encoding: aes128gcm\0", 16);
    let nonce = hkdf(salt, &ikm, b"Content-Encoding: nonce\0", 12);
    let key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::AES_128_GCM, &cek).unwrap(),
    );
    let plain = key
        .open_in_place(
            ring::aead::Nonce::try_assume_unique_for_key(&nonce).unwrap(),
            ring::aead::Aad::empty(),
            &mut record,
        )
        .map_err(|_| "the body does not decrypt".to_owned())?;
    let end = plain.iter().rposition(|&b| b != 0).ok_or("no delimiter")?;
    if plain[end] != 2 {
        return Err("not a last record".into());
    }
    serde_json::from_slice(&plain[..end]).map_err(|e| e.to_string())
}

async fn subscribe(app: &TestApp, user: &TestUser, sub: &Value) -> reqwest::Response {
    app.post(user, "/api/v1/me/push-subscriptions", sub).await
}

async fn subscriptions(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let res = app.get(Some(user), "/api/v1/me/push-subscriptions").await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn inbox_seqs(app: &TestApp, user: &TestUser) -> Vec<i64> {
    let res = app
        .get(Some(user), "/api/v1/me/notifications?limit=100")
        .await;
    assert_eq!(res.status(), 200);
    let mut seqs: Vec<i64> = res.json::<Value>().await.unwrap()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["seq"].as_i64().unwrap())
        .collect();
    seqs.reverse();
    seqs
}

async fn wait_for_inbox(app: &TestApp, user: &TestUser, seq: i64) {
    eventually(&format!("notification {seq}"), || async {
        inbox_seqs(app, user).await.contains(&seq).then_some(())
    })
    .await;
}

/// `fan` watches a market where `leader` will open parties.
async fn fan_of_a_market(app: &TestApp) -> (TestUser, TestUser, i64, i64) {
    let leader = app.user("리더").await;
    let fan = app.user("팬").await;
    let (market, item) = app.market_and_item().await;
    let res = app
        .post(
            &fan,
            "/api/v1/me/wishlists",
            &json!({"kind": "market", "market_id": market}),
        )
        .await;
    assert_eq!(res.status(), 201);
    (leader, fan, market, item)
}

async fn open_party(app: &TestApp, leader: &TestUser, market: i64, item: i64) -> i64 {
    let res = app
        .post(leader, "/api/v1/parties", &app.party_body(market, item, 4))
        .await;
    assert_eq!(res.status(), 201, "create party");
    res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

async fn each_notification_is_pushed_once_to_each_subscription_and_a_gone_one_is_removed(
    app: TestApp,
) {
    let mock = PushService::start().await;
    let (leader, fan, market, item) = fan_of_a_market(&app).await;
    let (phone, laptop) = (mock.browser("phone"), mock.browser("laptop"));
    let res = subscribe(&app, &fan, &phone).await;
    assert_eq!(res.status(), 201);
    let first: Value = res.json().await.unwrap();
    assert_eq!(subscribe(&app, &fan, &laptop).await.status(), 201);
    // The phone's browser subscribes again: the same subscription, not a second one.
    let res = subscribe(&app, &fan, &phone).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["id"], first["id"]);
    assert_eq!(subscriptions(&app, &fan).await.len(), 2);

    let party = open_party(&app, &leader, market, item).await;
    mock.wait_for("phone", 1).await;
    mock.wait_for("laptop", 1).await;
    let pushed = mock
        .received("phone")
        .into_iter()
        .find(|p| p["seq"] == 1)
        .unwrap();
    assert_eq!(pushed["kind"], "party_created");
    assert_eq!(pushed["party_id"], party);
    assert_eq!(pushed["title"], "찜한 조건에 맞는 공구가 열렸어요");
    assert_eq!(pushed["body"], "신라면 나눠요");
    open_party(&app, &leader, market, item).await;
    mock.wait_for("phone", 2).await;
    mock.wait_for("laptop", 2).await;
    assert_eq!(mock.seqs("phone"), [1, 2], "one push per notification");
    assert_eq!(mock.seqs("laptop"), [1, 2]);

    // The laptop's subscription expires: the push service answers 410 and it is removed.
    mock.answer("laptop", 410);
    open_party(&app, &leader, market, item).await;
    mock.wait_for("phone", 3).await;
    let left = eventually("the gone subscription removed", || async {
        let subs = subscriptions(&app, &fan).await;
        (subs.len() == 1).then_some(subs)
    })
    .await;
    assert_eq!(left[0]["id"], first["id"]);
    assert_eq!(mock.refused("laptop"), 1);
    open_party(&app, &leader, market, item).await;
    mock.wait_for("phone", 4).await;
    assert_eq!(
        mock.refused("laptop"),
        1,
        "nothing more to a removed subscription"
    );
    assert_eq!(mock.seqs("laptop"), [1, 2]);
    // The leader, told of nothing, was pushed nothing: only the fan's browsers were subscribed.
    assert_eq!(mock.seqs("phone"), [1, 2, 3, 4]);
}

/// Moves the app's clock forward to the next `hh:mm` in Seoul.
fn advance_to_seoul(app: &TestApp, hh: i64, mm: i64) {
    let now = app.state.now();
    let seoul_minute = (now + 9 * HOUR).div_euclid(60_000).rem_euclid(24 * 60);
    let target = hh * 60 + mm;
    let ahead = (target - seoul_minute).rem_euclid(24 * 60).max(1);
    app.state.clock.advance_ms(ahead * 60_000);
}

/// A fresh token for `user` by the app's (moved) clock.
fn refreshed(app: &TestApp, user: &TestUser) -> TestUser {
    TestUser {
        id: user.id,
        token: app.state.keys.issue(user.id, app.state.now()).unwrap(),
    }
}

async fn quiet_hours_and_muted_kinds_stop_pushes_but_not_the_inbox(app: TestApp) {
    let mock = PushService::start().await;
    let (leader, fan, market, item) = fan_of_a_market(&app).await;
    assert_eq!(
        subscribe(&app, &fan, &mock.browser("phone")).await.status(),
        201
    );
    let prefs = json!({"muted_kinds": [], "quiet_hours": {"start": "23:00", "end": "08:00"}});
    let res = app
        .put(&fan, "/api/v1/me/notification-preferences", &prefs)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), prefs);

    // 23:30 in Seoul: inside quiet hours that wrap midnight.
    advance_to_seoul(&app, 23, 30);
    let (leader, fan) = (refreshed(&app, &leader), refreshed(&app, &fan));
    open_party(&app, &leader, market, item).await;
    wait_for_inbox(&app, &fan, 1).await;

    // 08:00: quiet hours are over; the notification from the night is not pushed now either.
    advance_to_seoul(&app, 8, 0);
    let (leader, fan) = (refreshed(&app, &leader), refreshed(&app, &fan));
    let muted = json!({"muted_kinds": ["party_cancelled"], "quiet_hours": null});
    let res = app
        .put(&fan, "/api/v1/me/notification-preferences", &muted)
        .await;
    assert_eq!(res.status(), 200);
    let party = open_party(&app, &leader, market, item).await;
    mock.wait_for("phone", 2).await;
    // A muted kind reaches the inbox but is not pushed.
    join(&app, &fan, party).await;
    let res = app
        .post(
            &leader,
            &format!("/api/v1/parties/{party}/cancel"),
            &json!({"reason": "취소"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    wait_for_inbox(&app, &fan, 3).await;
    open_party(&app, &leader, market, item).await;
    mock.wait_for("phone", 4).await;
    assert_eq!(
        mock.seqs("phone"),
        [2, 4],
        "not the quiet one nor the muted one"
    );
    assert_eq!(
        inbox_seqs(&app, &fan).await,
        [1, 2, 3, 4],
        "the inbox has them all"
    );
    let got: Value = app
        .get(Some(&fan), "/api/v1/me/notification-preferences")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, muted);
}

async fn push_subscriptions_and_preferences_refuse_bad_input_naming_the_field(app: TestApp) {
    let mock = PushService::start().await;
    let user = app.user("구독").await;
    let good = mock.browser("b");
    let res = app.get(None, "/api/v1/push/vapid-public-key").await;
    assert_eq!(res.status(), 200);
    let key = res.json::<Value>().await.unwrap()["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(URL_SAFE_NO_PAD.decode(&key).unwrap().len(), 65);

    let mut bad_point = good.clone();
    bad_point["keys"]["p256dh"] = json!(format!("B{}", "A".repeat(86)));
    let mut short_auth = good.clone();
    short_auth["keys"]["auth"] = json!("AAAA");
    let mut no_url = good.clone();
    no_url["endpoint"] = json!("push service");
    let mut no_keys = good.clone();
    no_keys["keys"] = json!(null);
    for (body, field) in [
        (bad_point, "keys.p256dh"),
        (short_auth, "keys.auth"),
        (no_url, "endpoint"),
    ] {
        let got = assert_problem(
            subscribe(&app, &user, &body).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(got["field"], field);
    }
    let got = subscribe(&app, &user, &no_keys).await;
    assert!(
        matches!(got.status().as_u16(), 400 | 422),
        "{}",
        got.status()
    );
    assert!(
        subscriptions(&app, &user).await.is_empty(),
        "nothing half-written"
    );

    assert_eq!(subscribe(&app, &user, &good).await.status(), 201);
    let unsubscribe = |endpoint: Value| {
        let app = &app;
        let user = &user;
        async move {
            app.client
                .delete(app.url("/api/v1/me/push-subscriptions"))
                .bearer_auth(&user.token)
                .json(&json!({ "endpoint": endpoint }))
                .send()
                .await
                .unwrap()
        }
    };
    let other = app.user("남").await;
    let res = app
        .client
        .delete(app.url("/api/v1/me/push-subscriptions"))
        .bearer_auth(&other.token)
        .json(&json!({ "endpoint": good["endpoint"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "not theirs");
    assert_eq!(unsubscribe(good["endpoint"].clone()).await.status(), 204);
    assert_eq!(unsubscribe(good["endpoint"].clone()).await.status(), 404);

    for (body, field) in [
        (
            json!({"muted_kinds": ["reminder", "spam"], "quiet_hours": null}),
            "muted_kinds[1]",
        ),
        (
            json!({"muted_kinds": [], "quiet_hours": {"start": "24:00", "end": "08:00"}}),
            "quiet_hours.start",
        ),
        (
            json!({"muted_kinds": [], "quiet_hours": {"start": "23:00", "end": "8:00"}}),
            "quiet_hours.end",
        ),
        (
            json!({"muted_kinds": [], "quiet_hours": {"start": "09:00", "end": "09:00"}}),
            "quiet_hours.end",
        ),
    ] {
        let res = app
            .put(&user, "/api/v1/me/notification-preferences", &body)
            .await;
        let got = assert_problem(res, 422, "validation_failed").await;
        assert_eq!(got["field"], field, "{body}");
    }
    let got: Value = app
        .get(Some(&user), "/api/v1/me/notification-preferences")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        got,
        json!({"muted_kinds": [], "quiet_hours": null}),
        "the default, untouched"
    );
}

async fn notifications_older_than_90_days_are_pruned_and_a_pruned_id_gets_reset(app: TestApp) {
    let (leader, fan, market, item) = fan_of_a_market(&app).await;
    open_party(&app, &leader, market, item).await;
    wait_for_inbox(&app, &fan, 1).await;
    app.state.clock.advance_ms(60 * DAY);
    let (leader, fan) = (refreshed(&app, &leader), refreshed(&app, &fan));
    open_party(&app, &leader, market, item).await;
    wait_for_inbox(&app, &fan, 2).await;

    // 91 days after the first: the hourly housekeeping prunes it, and keeps the second (31 days).
    app.state.clock.advance_ms(31 * DAY);
    let fan = refreshed(&app, &fan);
    eventually("the first notification pruned", || async {
        (inbox_seqs(&app, &fan).await == [2]).then_some(())
    })
    .await;

    // A client that last saw 0 missed the pruned 1: reset. One that saw 1 misses nothing.
    for (last, event, id) in [("0", "reset", "2"), ("1", "notification", "2")] {
        let mut res = app
            .client
            .get(app.url("/api/v1/me/notifications/stream"))
            .bearer_auth(&fan.token)
            .header("Last-Event-ID", last)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let got = first_event(&mut res).await;
        assert_eq!(
            (got.0.as_str(), got.1.as_str()),
            (event, id),
            "after {last}"
        );
    }
    // Seqs go on from the last one given.
    let leader = refreshed(&app, &leader);
    open_party(&app, &leader, market, item).await;
    wait_for_inbox(&app, &fan, 3).await;
}

/// The first SSE event with data: (name, id).
async fn first_event(res: &mut reqwest::Response) -> (String, String) {
    let mut buf = String::new();
    loop {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(20), res.chunk())
            .await
            .expect("an SSE event in time")
            .unwrap()
            .expect("the stream went on");
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut name, mut id, mut data) = (String::new(), String::new(), false);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().to_owned();
                } else if line.starts_with("data:") {
                    data = true;
                }
            }
            if data {
                return (name, id);
            }
        }
    }
}
