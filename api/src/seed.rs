//! `gonggu seed`: the bundled markets and items (compiled into the binary from `fixtures/`), and
//! with `--demo` a few demo users and parties around Seoul, Busan and Daejeon. Safe to run twice:
//! markets and items are upserted by natural key, users are reused, parties are created once.

use anyhow::{Context, Result};
use ingest::csv::{CsvBatch, CsvEncoding};
use store::bookings;
use store::catalog;
use store::live::Live;
use store::markets::count_markets;
use store::parties::{self, NewParty, Role};
use store::rules::{Email, Nickname};
use store::users::{self, SignupError};
use store::{Clock, Db};

const MARKETS_CSV: &str = include_str!("../../fixtures/markets.csv");
const ITEMS_CSV: &str = include_str!("../../fixtures/items.csv");
const SOURCE: &str = "fixtures";

/// Password of every demo account (documented in the README).
pub const DEMO_PASSWORD: &str = "gonggu-demo";

/// Demo accounts: email and nickname.
pub const DEMO_USERS: [(&str, &str); 6] = [
    ("minji@demo.gonggu.kr", "민지"),
    ("junho@demo.gonggu.kr", "준호"),
    ("seoyeon@demo.gonggu.kr", "서연"),
    ("hyunwoo@demo.gonggu.kr", "현우"),
    ("jiwon@demo.gonggu.kr", "지원"),
    ("dohyun@demo.gonggu.kr", "도현"),
];

/// Reads a bundled CSV through the import's own parser, so the fixtures follow the same rules as
/// `gonggu ingest --source csv`; the fixtures are checked in, so any rejected row is a bug.
fn bundled<T>(
    text: &str,
    what: &str,
    parse: fn(&[u8], CsvEncoding) -> Result<CsvBatch<T>, ingest::csv::CsvError>,
) -> Result<Vec<T>> {
    let batch = parse(text.as_bytes(), CsvEncoding::Utf8)
        .with_context(|| format!("reading the bundled {what} CSV"))?;
    if let Some(rejection) = batch.rejected.first() {
        anyhow::bail!("the bundled {what} CSV has a bad row: {rejection}");
    }
    Ok(batch.records)
}

/// True when no market exists yet (a fresh database).
pub async fn is_empty(db: &Db) -> Result<bool> {
    Ok(count_markets(db).await? == 0)
}

/// Loads the fixtures (and the demo when `demo`); returns a one-line summary.
pub async fn run(db: &Db, live: &Live, clock: &Clock, demo: bool) -> Result<String> {
    let markets = bundled(MARKETS_CSV, "markets", ingest::csv::parse_markets)?;
    let items = bundled(ITEMS_CSV, "items", ingest::csv::parse_items)?;
    let now = clock.now_ms();
    let mut tx = db.begin().await?;
    let mut market_ids = Vec::with_capacity(markets.len());
    for row in &markets {
        market_ids.push((
            catalog::upsert_row(&mut tx, SOURCE, row, now).await?,
            row.road_address.clone().unwrap_or_default(),
        ));
    }
    let mut item_ids = Vec::with_capacity(items.len());
    for row in &items {
        item_ids.push(catalog::upsert_row(&mut tx, SOURCE, row, now).await?);
    }
    tx.commit().await?;
    catalog::invalidate_item_search(live.cache.as_ref()).await?;
    let mut summary = format!("{} markets and {} items loaded", markets.len(), items.len());
    if demo {
        let created = demo_data(db, clock, &market_ids, &item_ids).await?;
        summary.push_str(&format!(
            "; {} demo users, {created} new demo parties",
            DEMO_USERS.len()
        ));
    }
    Ok(summary)
}

async fn demo_users(db: &Db, now: i64) -> Result<Vec<i64>> {
    let mut ids = Vec::new();
    let hash = crate::auth::password::hash(DEMO_PASSWORD.to_owned())
        .await
        .map_err(|e| anyhow::anyhow!("hashing the demo password: {}", e.detail))?;
    for (email, nickname) in DEMO_USERS {
        // The same rules as a signup: a demo account is one a user could have made.
        let email = Email::parse(email)?;
        let nickname = Nickname::parse(nickname)?;
        let email = email.as_str();
        let id = match users::insert_user(db, email, &hash, nickname.as_str(), now).await {
            Ok(user) => user.id,
            Err(SignupError::EmailTaken) => {
                let (user, _) = users::find_login(db, email)
                    .await?
                    .context("demo user vanished")?;
                user.id
            }
            Err(SignupError::Store(e)) => return Err(e.into()),
        };
        ids.push(id);
    }
    Ok(ids)
}

/// Demo parties per city: (road address prefix, how many).
const DEMO_CITIES: [(&str, usize); 3] = [("서울특별시", 14), ("부산광역시", 7), ("대전광역시", 5)];

async fn demo_data(
    db: &Db,
    clock: &Clock,
    markets: &[(i64, String)],
    items: &[i64],
) -> Result<usize> {
    let now = clock.now_ms();
    let users = demo_users(db, now).await?;
    let (existing, _) = parties::list_user_parties(db, users[0], Role::Leader, None, 1).await?;
    if !existing.is_empty() {
        return Ok(0);
    }
    const TITLES: [&str; 6] = [
        "대용량 나눠 사요",
        "묶음 상품 같이 사실 분",
        "주말 장보기 공구",
        "퇴근길에 같이 나눠요",
        "반씩 나눠 가져가요",
        "1인 가구 소분 파티",
    ];
    let hour = 3_600_000;
    let mut created = 0;
    let mut n = 0usize;
    for (prefix, count) in DEMO_CITIES {
        let local: Vec<i64> = markets
            .iter()
            .filter(|(_, a)| a.starts_with(prefix))
            .map(|(id, _)| *id)
            .collect();
        for k in 0..count.min(local.len()) {
            n += 1;
            let leader = users[n % users.len()];
            let meet_at = (now / hour + 24 + (n as i64 * 7) % 144) * hour;
            let party = NewParty {
                leader_id: leader,
                market_id: local[(k * 7) % local.len()],
                item_id: items[(n * 37) % items.len()],
                title: TITLES[n % TITLES.len()].to_owned(),
                description: "시장 입구에서 만나요. 영수증 보여드리고 바로 나눠요.".to_owned(),
                capacity: 3 + (n as i64 % 6),
                min_members: store::rules::MIN_MEMBERS_DEFAULT,
                price_per_share: Some(3_000 + (n as i64 * 1_700) % 20_000),
                meet_at,
                deadline_at: meet_at - 2 * hour,
            };
            let p = parties::create_party(db, &party, now)
                .await
                .map_err(|e| anyhow::anyhow!("creating a demo party: {e}"))?;
            created += 1;
            // A few members so seat counts vary.
            for j in 1..=(n % 3) {
                let member = users[(n + j) % users.len()];
                if member != leader {
                    let _ = bookings::join_party(db, p.id, member, now).await;
                }
            }
        }
    }
    Ok(created)
}
