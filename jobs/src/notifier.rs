//! The writer of notifications: a durable outbox consumer (`notifications`) that turns events into
//! inbox rows inside its batch transaction, so they commit with its position (a replayed batch
//! writes nothing twice: each row also has a dedupe key naming its cause), and after the commit
//! publishes each on its user's bus topic for open streams.
//!
//! Who is told of what: a new party → the users whose wishlists match it (once each, never the
//! leader); a cancel → the members; a party full or a member leaving → the leader; a moved meet →
//! the members; a reminder → the members (leader included); a penalty or a ban → that user.
//! Nobody is told of their own action (the event's `user_id` names who acted).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use store::consumers::{Consumer, StoredEvent};
use store::events::{Event, PartyChange};
use store::live::Bus;
use store::notifications::{self, kind, NewNotification, Notification};
use store::penalties::PenaltyChange;
use store::Tx;

/// The consumer's position name; never rename it (it would start over from the oldest event).
pub const NAME: &str = "notifications";

pub struct Notifier {
    bus: Arc<dyn Bus>,
    /// Written in the running batch, published once it commits.
    written: Mutex<Vec<Notification>>,
}

impl Notifier {
    pub fn new(bus: Arc<dyn Bus>) -> Arc<Self> {
        Arc::new(Self {
            bus,
            written: Mutex::default(),
        })
    }

    fn take_written(&self) -> Vec<Notification> {
        std::mem::take(&mut *self.written.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[async_trait]
impl Consumer for Notifier {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn handle(&self, tx: &mut Tx, event: &StoredEvent) -> store::Result<()> {
        let now = event.at;
        let news = notifications_of(tx, event).await?;
        let written = notifications::write_all(tx.conn(), &news, now).await?;
        self.written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(written);
        Ok(())
    }

    fn begin_batch(&self) {
        // A failed batch rolled back what it wrote: none of it may be published.
        self.take_written();
    }

    async fn after_commit(&self) {
        let messages: Vec<(String, Vec<u8>)> = self
            .take_written()
            .into_iter()
            .filter_map(|n| match serde_json::to_vec(&n) {
                Ok(bytes) => Some((store::topics::notifications(n.user_id), bytes)),
                Err(err) => {
                    tracing::error!(error = %err, "notification not serialisable");
                    None
                }
            })
            .collect();
        if let Err(err) = self.bus.publish_all(&messages).await {
            // Streams catch up from SQL on their next message or reconnect.
            tracing::warn!(error = %err, count = messages.len(), "notifications not published");
        }
    }
}

/// The notifications `event` causes.
async fn notifications_of(tx: &mut Tx, event: &StoredEvent) -> store::Result<Vec<NewNotification>> {
    let id = event.id;
    let out = match &event.event {
        Event::PartyCreated(c) => {
            let item = store::items::get_item_on(tx.conn(), c.party.item_id).await?;
            let item_name = item.map(|i| i.name).unwrap_or_default();
            let users = store::wishlists::matching_users(tx.conn(), &c.party, &item_name).await?;
            to_each(
                users,
                c,
                kind::PARTY_CREATED,
                "찜한 조건에 맞는 공구가 열렸어요",
                format!("party_created:{}", c.party.id),
            )
        }
        Event::PartyCancelled(c) => {
            let members = match &c.member_ids {
                Some(ids) => ids.clone(),
                None => store::members::member_ids(tx.conn(), c.party.id).await?,
            };
            to_each(
                members,
                c,
                kind::PARTY_CANCELLED,
                "참여한 공구가 취소됐어요",
                format!("party_cancelled:{}", c.party.id),
            )
        }
        Event::PartyFull(c) => to_each(
            vec![c.party.leader_id],
            c,
            kind::PARTY_FULL,
            "공구 인원이 다 찼어요",
            format!("party_full:{id}"),
        ),
        Event::MemberLeft(c) => to_each(
            vec![c.party.leader_id],
            c,
            kind::MEMBER_LEFT,
            "멤버 한 명이 공구에서 나갔어요",
            format!("member_left:{id}"),
        ),
        Event::PartyUpdated(c) if c.previous_meet_at.is_some() => {
            let members = store::members::member_ids(tx.conn(), c.party.id).await?;
            to_each(
                members,
                c,
                kind::PARTY_CHANGED,
                "공구 모임 시간이 바뀌었어요",
                format!("party_changed:{id}"),
            )
        }
        Event::ReminderDue(r) => r
            .member_ids
            .iter()
            .map(|&user_id| NewNotification {
                user_id,
                kind: kind::REMINDER,
                party_id: Some(r.party_id),
                title: match r.lead.as_str() {
                    "1h" => "한 시간 뒤 공구 모임이에요".to_owned(),
                    _ => "내일 공구 모임이 있어요".to_owned(),
                },
                body: r.title.clone(),
                dedupe: format!("reminder:{}:{}:{}", r.party_id, r.meet_at, r.lead),
            })
            .collect(),
        Event::PenaltyApplied(p) => to_user(p, kind::PENALTY, "노쇼 페널티가 부과됐어요", id),
        Event::PenaltyRevoked(p) => to_user(p, kind::PENALTY, "페널티가 취소됐어요", id),
        Event::UserBanned(p) => to_user(p, kind::BAN, "공구 참여가 일시 제한됐어요", id),
        _ => Vec::new(),
    };
    Ok(out)
}

/// One notification per user of `users` but the one who acted.
fn to_each(
    users: Vec<i64>,
    change: &PartyChange,
    kind: &'static str,
    title: &str,
    dedupe: String,
) -> Vec<NewNotification> {
    users
        .into_iter()
        .filter(|u| Some(*u) != change.user_id)
        .map(|user_id| NewNotification {
            user_id,
            kind,
            party_id: Some(change.party.id),
            title: title.to_owned(),
            body: change.party.title.clone(),
            dedupe: dedupe.clone(),
        })
        .collect()
}

fn to_user(
    change: &PenaltyChange,
    kind: &'static str,
    title: &str,
    event_id: i64,
) -> Vec<NewNotification> {
    vec![NewNotification {
        user_id: change.user_id,
        kind,
        party_id: change.penalty.as_ref().map(|p| p.party_id),
        title: title.to_owned(),
        body: match change.banned_until {
            Some(_) if kind == kind::BAN => {
                "정해진 기간 동안 공구를 만들거나 참여할 수 없어요".to_owned()
            }
            _ => format!("유효한 페널티 {}건", change.active_penalties),
        },
        dedupe: format!("{kind}:{event_id}"),
    }]
}
