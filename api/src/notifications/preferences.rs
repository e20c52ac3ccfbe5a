//! `GET/PUT /me/notification-preferences`: kinds not pushed, and quiet hours (Asia/Seoul).
//!
//! Both only govern Web Push: every notification still reaches the inbox and the stream. A
//! notification written in quiet hours is never pushed, not even when they end (the inbox has it).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use store::notification_prefs::{self, Preferences, QuietHours, TimeOfDay};
use store::rules::Invalid;
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::error::{ApiResult, Problem};
use crate::extract::Json;
use crate::state::AppState;

/// Quiet hours in Korean time (Asia/Seoul, UTC+09:00): from `start` up to (not including) `end`;
/// a start later than the end wraps midnight (`23:00` to `08:00`).
#[derive(Deserialize, Serialize, ToSchema)]
pub struct QuietHoursBody {
    /// `HH:MM`, 00:00 to 23:59.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "23:00")]
    pub start: String,
    /// `HH:MM`, 00:00 to 23:59, not equal to `start`.
    #[schema(pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "08:00")]
    pub end: String,
}

/// What I want pushed. Muted kinds and quiet hours stop Web Push only: the inbox and the stream
/// get every notification.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationPreferences {
    /// Kinds never pushed to me (`party_created`, `party_cancelled`, `party_full`, `member_left`,
    /// `party_changed`, `reminder`, `penalty`, `ban`).
    #[schema(max_items = 32)] // store::notification_prefs::MAX_MUTED
    pub muted_kinds: Vec<String>,
    /// Nothing is pushed in these hours (and never afterwards); `null` for none.
    pub quiet_hours: Option<QuietHoursBody>,
}

impl NotificationPreferences {
    fn parse(self) -> Result<Preferences, Invalid> {
        let quiet_hours = match self.quiet_hours {
            Some(q) => Some(QuietHours::new(
                TimeOfDay::parse(&q.start, "quiet_hours.start")?,
                TimeOfDay::parse(&q.end, "quiet_hours.end")?,
            )?),
            None => None,
        };
        Ok(Preferences {
            muted_kinds: Preferences::muted(&self.muted_kinds)?,
            quiet_hours,
        })
    }
}

impl From<Preferences> for NotificationPreferences {
    fn from(p: Preferences) -> Self {
        Self {
            muted_kinds: p.muted_kinds,
            quiet_hours: p.quiet_hours.map(|q| QuietHoursBody {
                start: q.start.to_string(),
                end: q.end.to_string(),
            }),
        }
    }
}

/// My notification preferences (by default: everything pushed, no quiet hours).
#[utoipa::path(get, path = "/me/notification-preferences", tag = "notifications", security(("bearer" = [])),
    responses(
        (status = 200, description = "My preferences", body = NotificationPreferences),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn get_my_notification_preferences(
    State(state): State<AppState>,
    user: AuthUser,
) -> ApiResult<axum::Json<NotificationPreferences>> {
    let prefs = notification_prefs::get(&state.db, user.id).await?;
    Ok(axum::Json(prefs.into()))
}

/// Replace my notification preferences. Unknown kinds and malformed times are a 422 naming the
/// field (`muted_kinds[i]`, `quiet_hours.start`, `quiet_hours.end`).
#[utoipa::path(put, path = "/me/notification-preferences", tag = "notifications", security(("bearer" = [])),
    request_body = NotificationPreferences,
    responses(
        (status = 200, description = "My preferences as stored", body = NotificationPreferences),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn put_my_notification_preferences(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<NotificationPreferences>,
) -> ApiResult<axum::Json<NotificationPreferences>> {
    let prefs = body.parse()?;
    notification_prefs::put(&state.db, user.id, &prefs, state.now()).await?;
    tracing::info!(
        user.id = user.id,
        muted = prefs.muted_kinds.len(),
        quiet = prefs.quiet_hours.is_some(),
        "notification preferences set"
    );
    Ok(axum::Json(prefs.into()))
}
