//! Open event streams (SSE): at most a few per user on an instance, and ended when the user's
//! sessions end (logout, or a reused refresh token revoking its family) on any instance.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;

use store::live::{Bus, Subscription};

use crate::error::ApiError;

/// Open streams per user on this instance.
#[derive(Default)]
pub struct StreamCounts(Mutex<HashMap<i64, usize>>);

/// One open stream of a user; the count goes down when it is dropped (the stream ended or the
/// client went away).
pub struct StreamSlot {
    counts: Arc<StreamCounts>,
    user_id: i64,
}

impl StreamCounts {
    /// Takes a slot for `user_id`, or refuses with 429 past `max` open streams.
    pub fn acquire(self: &Arc<Self>, user_id: i64, max: usize) -> Result<StreamSlot, ApiError> {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let open = counts.entry(user_id).or_insert(0);
        if *open >= max {
            tracing::warn!(
                user.id = user_id,
                open = *open,
                "too many event streams; refused"
            );
            let mut err = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!("at most {max} event streams may be open at once; close one first"),
            );
            err.retry_after = Some(5);
            return Err(err);
        }
        *open += 1;
        Ok(StreamSlot {
            counts: self.clone(),
            user_id,
        })
    }

    /// Streams `user_id` has open on this instance.
    pub fn open(&self, user_id: i64) -> usize {
        let counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(&user_id).copied().unwrap_or(0)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(open) = counts.get_mut(&self.user_id) {
            *open -= 1;
            if *open == 0 {
                counts.remove(&self.user_id);
            }
        }
    }
}

/// The bus topic told when a user's sessions end.
pub use store::topics::sessions as session_topic;

/// Opens a stream of `user_id`: takes one of their slots (429 past `max`) and subscribes to their
/// session topic, so the stream ends when their sessions do (logout, a revoked family).
pub async fn open(
    counts: &Arc<StreamCounts>,
    bus: &dyn Bus,
    user_id: i64,
    max: usize,
) -> Result<(StreamSlot, Subscription), ApiError> {
    let slot = counts.acquire(user_id, max)?;
    let sessions = bus.subscribe(&session_topic(user_id)).await?;
    Ok((slot, sessions))
}

/// Tells every instance that `user_id`'s sessions ended, so their open streams close.
pub async fn end_streams(bus: &dyn Bus, user_id: i64) {
    if let Err(err) = bus
        .publish(&session_topic(user_id), b"{\"ended\":true}")
        .await
    {
        tracing::warn!(user.id = user_id, error = %err, "could not tell instances that the sessions ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_user_and_given_back() {
        let counts = Arc::new(StreamCounts::default());
        let a = counts.acquire(1, 2).unwrap();
        let _b = counts.acquire(1, 2).unwrap();
        let err = counts.acquire(1, 2).err().unwrap();
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        let _other = counts.acquire(2, 2).unwrap();
        drop(a);
        assert_eq!(counts.open(1), 1);
        assert!(counts.acquire(1, 2).is_ok());
    }
}
