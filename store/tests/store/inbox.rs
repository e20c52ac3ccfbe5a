//! The inbox writer on both dialects: a fan-out written in chunks gives each user the next seq of
//! their own inbox, leaves out those already told of the same cause, writes nothing on a replay,
//! and a list naming one user twice is still written whole and in order.

use store::notifications::{self, kind, NewNotification};
use store::Db;

fn new(user_id: i64, dedupe: &str) -> NewNotification {
    NewNotification {
        user_id,
        kind: kind::PARTY_CREATED,
        party_id: None,
        title: "찜한 조건에 맞는 공구가 열렸어요".into(),
        body: "신라면 나눠요".into(),
        dedupe: dedupe.into(),
    }
}

async fn a_fan_out_writes_each_user_once_with_their_next_seq(db: Db) {
    // More users than two chunks; the first 30 have an earlier notification, and users 10..20
    // were told of this cause already.
    let mut ids = Vec::new();
    for i in 0..120 {
        let email = format!("inbox-{i}@test.gonggu.kr");
        let user = store::users::insert_user(&db, &email, "x", "n", 1)
            .await
            .unwrap();
        ids.push(user.id);
    }
    let mut tx = db.begin().await.unwrap();
    for &u in &ids[..30] {
        notifications::write(tx.conn(), &new(u, "earlier"), 1)
            .await
            .unwrap();
    }
    for &u in &ids[10..20] {
        notifications::write(tx.conn(), &new(u, "cause"), 1)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    // The fan-out, in no particular order.
    let fan: Vec<NewNotification> = ids.iter().rev().map(|&u| new(u, "cause")).collect();
    let mut tx = db.begin().await.unwrap();
    let written = notifications::write_all(tx.conn(), &fan, 2).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(written.len(), 110);
    for n in &written {
        let i = ids.iter().position(|&u| u == n.user_id).unwrap();
        assert!(!(10..20).contains(&i), "user {i} was told already");
        let want = if i < 30 { 2 } else { 1 };
        assert_eq!(n.seq, want, "user {i}");
        assert_eq!((n.kind.as_str(), n.created_at), (kind::PARTY_CREATED, 2));
    }
    let (rows,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM notifications WHERE dedupe = 'cause'")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(rows, 120, "one per user");

    // The same fan-out again (a replayed event): nothing.
    let mut tx = db.begin().await.unwrap();
    assert!(notifications::write_all(tx.conn(), &fan, 3)
        .await
        .unwrap()
        .is_empty());
    // One user twice: both written, in order, after what they had.
    let twice = [new(ids[0], "a"), new(ids[0], "b")];
    let written = notifications::write_all(tx.conn(), &twice, 3)
        .await
        .unwrap();
    let seqs: Vec<i64> = written.iter().map(|n| n.seq).collect();
    assert_eq!(seqs, [3, 4]);
    tx.commit().await.unwrap();
}

on_both!(a_fan_out_writes_each_user_once_with_their_next_seq);
