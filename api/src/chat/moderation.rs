//! Moderation over HTTP: a sender deletes their own message and the leader any message of their
//! party (a tombstone stays in the sequence; live sockets get a `deleted` frame), and any member
//! reports a message for operators.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use store::chat::{self, Deletion, Reported};
use utoipa::ToSchema;

use super::frames::{MessageView, Note};
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::state::AppState;
use crate::time::Timestamp;

/// Longest report reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

fn no_message() -> ApiError {
    ApiError::not_found("message")
}

fn system_message() -> ApiError {
    ApiError::forbidden(
        "system_message",
        "system messages record what happened to the party; they cannot be deleted or reported",
    )
}

/// Delete a message: the sender their own, the leader any in their party. It stays in the
/// sequence as a tombstone (`deleted: true`, text emptied) and every open socket gets a `deleted`
/// frame. Deleting a tombstone again answers with it.
#[utoipa::path(delete, path = "/parties/{id}/chat/messages/{seq}", tag = "chat", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Party id"), ("seq" = i64, Path, description = "The message's seq")),
    responses(
        (status = 200, description = "The tombstone", body = MessageView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`not_a_member`, `left_party`, `not_your_message` (neither the sender nor the leader), `system_message`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such party or message", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`party_cancelled`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_chat_message(
    State(state): State<AppState>,
    Path((id, seq)): Path<(i64, i64)>,
    user: AuthUser,
) -> ApiResult<axum::Json<MessageView>> {
    super::member(&state, id, user.id).await?;
    match chat::delete(&state.db, id, seq, user.id, state.now()).await? {
        Deletion::Deleted(tombstone) => {
            let by = tombstone.deleted_by.unwrap_or(user.id);
            super::publish(&state, id, &Note::Deleted { seq, by }).await;
            Ok(axum::Json(MessageView::from(&tombstone)))
        }
        Deletion::NoMessage => Err(no_message()),
        Deletion::NotYours => Err(ApiError::forbidden(
            "not_your_message",
            "only the sender or the party's leader may delete a message",
        )),
        Deletion::System => Err(system_message()),
    }
}

/// Why a member reports a message.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    /// 1 to 500 characters, not blank.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// A stored report.
#[derive(Serialize, ToSchema)]
pub struct ReportView {
    pub id: i64,
    /// The reported message's seq.
    pub seq: i64,
    pub reason: String,
    pub created_at: Timestamp,
}

/// Checks a report's reason: 1 to 500 characters, not blank, no control characters but newlines.
fn reason(raw: String) -> ApiResult<String> {
    let text = raw.trim();
    let len = text.chars().count();
    if len == 0 {
        return Err(ApiError::invalid("reason", "reason must not be blank"));
    }
    if len > MAX_REASON_CHARS {
        return Err(ApiError::invalid(
            "reason",
            format!("reason is {len} characters; at most {MAX_REASON_CHARS}"),
        ));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::invalid(
            "reason",
            "reason must not hold control characters",
        ));
    }
    Ok(text.to_owned())
}

/// Report a message to the operators. Any member may report a member's message, once.
#[utoipa::path(post, path = "/parties/{id}/chat/messages/{seq}/report", tag = "chat", security(("bearer" = [])),
    params(("id" = i64, Path, description = "Party id"), ("seq" = i64, Path, description = "The message's seq")),
    request_body = ReportBody,
    responses(
        (status = 201, description = "Reported", body = ReportView),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`not_a_member`, `left_party`, `system_message`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such party or message", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`party_cancelled`, `already_reported` (by you)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (`reason`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn report_chat_message(
    State(state): State<AppState>,
    Path((id, seq)): Path<(i64, i64)>,
    user: AuthUser,
    Json(body): Json<ReportBody>,
) -> ApiResult<impl IntoResponse> {
    let reason = reason(body.reason)?;
    super::member(&state, id, user.id).await?;
    match chat::report(&state.db, id, seq, user.id, &reason, state.now()).await? {
        Reported::New(report) => {
            tracing::info!(
                party.id = id,
                seq,
                report.id = report.id,
                "chat message reported"
            );
            Ok((
                StatusCode::CREATED,
                axum::Json(ReportView {
                    id: report.id,
                    seq,
                    reason: report.reason,
                    created_at: Timestamp(report.created_at),
                }),
            ))
        }
        Reported::Again => Err(ApiError::conflict(
            "already_reported",
            "you reported this message already",
        )),
        Reported::NoMessage => Err(no_message()),
        Reported::System => Err(system_message()),
    }
}

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(delete_chat_message))
        .routes(utoipa_axum::routes!(report_chat_message))
        .routes(utoipa_axum::routes!(list_chat_reports))
}

/// A member's report, with the message it is about, as operators see it.
#[derive(Serialize, ToSchema)]
pub struct ChatReportView {
    /// The report's id.
    pub id: i64,
    pub party_id: i64,
    /// The reported message's seq in its party.
    pub seq: i64,
    pub sender_id: Option<i64>,
    /// The message's text; empty once deleted.
    pub text: String,
    pub deleted: bool,
    pub reporter_id: i64,
    pub reason: String,
    pub created_at: Timestamp,
}

/// A page of reports, newest first.
#[derive(Serialize, ToSchema)]
pub struct ChatReports {
    pub items: Vec<ChatReportView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportsQuery {
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// Reported chat messages, newest report first (operators only: `GONGGU_OPERATOR_EMAILS`).
#[utoipa::path(get, path = "/admin/chat-reports", tag = "admin", security(("bearer" = [])), params(ReportsQuery),
    responses(
        (status = 200, description = "A page of reports", body = ChatReports),
        (status = 401, description = "`unauthorized`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: operators only", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (`cursor`, `limit`)", body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_chat_reports(
    State(state): State<AppState>,
    user: AuthUser,
    crate::extract::Query(q): crate::extract::Query<ReportsQuery>,
) -> ApiResult<axum::Json<ChatReports>> {
    crate::auth::require_operator(&state, &user).await?;
    let limit = crate::paging::limit(q.limit)?;
    let before = crate::paging::cursor(q.cursor.as_deref())?;
    let mut rows = chat::reports(&state.db, before, limit as i64 + 1).await?;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| store::cursor::encode(r.id))
    } else {
        None
    };
    let items = rows
        .into_iter()
        .map(|r| ChatReportView {
            id: r.id,
            party_id: r.party_id,
            seq: r.seq,
            sender_id: r.sender_id,
            text: r.text,
            deleted: r.deleted_at.is_some(),
            reporter_id: r.reporter_id,
            reason: r.reason,
            created_at: Timestamp(r.created_at),
        })
        .collect();
    Ok(axum::Json(ChatReports { items, next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_trimmed_bounded_and_printable() {
        assert_eq!(reason("  spam \n".into()).unwrap(), "spam");
        assert_eq!(
            reason(" \n ".into()).unwrap_err().field.as_deref(),
            Some("reason")
        );
        assert!(reason("가".repeat(MAX_REASON_CHARS)).is_ok());
        assert!(reason("가".repeat(MAX_REASON_CHARS + 1)).is_err());
        assert!(reason("a\u{7}b".into()).is_err());
    }
}
