//! "New messages" notifications for members away from a room: a member with unread messages and
//! no open socket in the room gets one `chat_message` notification per quiet period
//! (`GONGGU_CHAT_NOTIFY_QUIET_SECS`), not one per message.
//!
//! A background task, never the request path, run by the one instance that holds the `chat-away`
//! lease: it reads who is due from SQL a page of active rooms at a time (`store::chat::away`),
//! leaves out members present on any instance, and writes each notification in its own
//! transaction with a dedupe key naming the room's first new message, so two sweeps at once (a
//! lease changing hands) or a sweep retried after a failure write it once. Each is published to
//! the member's streams after it commits.

use std::collections::HashMap;
use std::time::Duration;

use store::chat::away::{self, Unseen};
use store::notifications::{self, kind, NewNotification};
use tokio::sync::watch;

use crate::state::{millis, AppState};

/// Rooms read from SQL at a time; a sweep pages through every room with recent messages (a page
/// whose members all have a socket open must not hide the rooms after it).
pub const ROOMS_PER_PAGE: i64 = 100;
/// How far past the quiet period a sweep looks back: messages the sweeps missed for longer (the
/// app was down) are left to the unread counts of `GET /me/chats`.
const LOOKBACK: Duration = Duration::from_secs(3600);
/// The lease that elects the one sweeping instance. Two sweeps at once would still write each
/// notification once (the dedupe key); the lease saves the second one's reads.
pub const LEASE: &str = "chat-away";

/// Sweeps every `notify_every` while this instance holds the lease, until shutdown.
pub async fn run(state: AppState, mut stop: watch::Receiver<bool>) {
    let every = state.settings.chat.notify_every;
    // Outlives a few missed rounds, so a busy holder keeps it; a dead one is replaced after that.
    let ttl = millis(every) * 3 + 1_000;
    loop {
        let held = state
            .live
            .lease
            .acquire(LEASE, &state.instance_id, state.now(), ttl)
            .await;
        match held {
            Ok(true) => {
                if let Err(err) = sweep(&state).await {
                    tracing::warn!(error = %store::error::chain(&err), "chat: away notifications failed; retrying");
                }
            }
            Ok(false) => {}
            Err(err) => tracing::warn!(error = %err, "chat: away-sweep lease unavailable"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopped(&mut stop) => break,
        }
    }
    if let Err(err) = state.live.lease.release(LEASE, &state.instance_id).await {
        tracing::warn!(error = %err, "chat: away-sweep lease not released");
    }
}

/// One sweep: notifies every member due one now. Returns how many were written.
pub async fn sweep(state: &AppState) -> store::Result<usize> {
    sweep_in_pages(state, ROOMS_PER_PAGE).await
}

/// [`sweep`], reading `rooms_per_page` rooms at a time.
pub async fn sweep_in_pages(state: &AppState, rooms_per_page: i64) -> store::Result<usize> {
    let now = state.now();
    let quiet = millis(state.settings.chat.notify_quiet);
    let since = now - quiet - millis(LOOKBACK);
    let mut online: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut written = 0;
    let mut after = 0;
    loop {
        let page = away::due(&state.db, since, now - quiet, after, rooms_per_page).await?;
        let Some(last) = page.last_room else { break };
        after = last;
        written += notify_away(state, page.due, &mut online, now).await?;
    }
    Ok(written)
}

/// Notifies the members of `due` who have no socket open in the room.
async fn notify_away(
    state: &AppState,
    due: Vec<Unseen>,
    online: &mut HashMap<i64, Vec<i64>>,
    now: i64,
) -> store::Result<usize> {
    let mut written = 0;
    for unseen in due {
        let present = match online.get(&unseen.party_id) {
            Some(users) => users,
            None => {
                let room = store::topics::chat(unseen.party_id);
                let users = state.live.presence.online(&room, now).await?;
                online.entry(unseen.party_id).or_insert(users)
            }
        };
        if present.contains(&unseen.user_id) {
            continue;
        }
        if notify(state, &unseen, now).await? {
            written += 1;
        }
    }
    Ok(written)
}

/// Writes one member's notification and publishes it; false when it exists already.
async fn notify(state: &AppState, unseen: &Unseen, now: i64) -> store::Result<bool> {
    let new = NewNotification {
        user_id: unseen.user_id,
        kind: kind::CHAT_MESSAGE,
        party_id: Some(unseen.party_id),
        title: "새 메시지가 있어요".to_owned(),
        body: unseen.title.clone(),
        dedupe: format!("chat_message:{}:{}", unseen.party_id, unseen.first_seq),
    };
    let mut tx = state.db.begin().await?;
    // `None` when it exists, also when another sweep wrote it a moment ago: the inbox's unique
    // index decides, after waiting for that sweep's transaction.
    let Some(notification) = notifications::write(tx.conn(), &new, now).await? else {
        return Ok(false);
    };
    tx.commit().await?;
    if let Ok(bytes) = serde_json::to_vec(&notification) {
        let topic = store::topics::notifications(unseen.user_id);
        if let Err(err) = state.live.bus.publish(&topic, &bytes).await {
            // Open streams catch up from SQL on their next event or reconnect.
            tracing::warn!(user.id = unseen.user_id, error = %err, "chat notification not published");
        }
    }
    Ok(true)
}

/// Resolves once `stop` is true, holding no lock of the watch across the caller's awaits (so the
/// future stays `Send`).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
