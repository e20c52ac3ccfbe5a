//! The lifecycle of parties, bookings and waiting rooms: their states as enums stored as text, and
//! the transitions each may make, written once here. Every conditional update names the states it
//! may leave through [`PartyStatus::sources_sql`] (and the like), so a new transition is one line in
//! a `can_become` table, not a hunt through SQL strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A stored state name that is not one of the enum's: a row written by something else, or a bad
/// filter value.
#[derive(Debug, thiserror::Error)]
#[error("unknown {kind} `{value}`")]
pub struct UnknownState {
    pub kind: &'static str,
    pub value: String,
}

/// Declares a state enum with its stored names, parsing, display, and the SQL list helpers.
macro_rules! states {
    ($(#[$meta:meta])* $name:ident ($kind:literal) { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name as stored and shown.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The states a conditional update moving to `next` may start from, as an SQL list
            /// (`'a', 'b'`), for `WHERE status IN (...)`.
            pub fn sources_sql(next: $name) -> String {
                Self::sql_list(Self::ALL.iter().copied().filter(|s| s.can_become(next)))
            }

            /// States as an SQL list (`'a', 'b'`). The names are the enum's own, never input.
            pub fn sql_list(states: impl IntoIterator<Item = $name>) -> String {
                states
                    .into_iter()
                    .map(|s| format!("'{}'", s.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            }

            /// Every stored name, comma separated (for error messages).
            pub fn names() -> String {
                Self::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl FromStr for $name {
            type Err = UnknownState;
            fn from_str(s: &str) -> Result<Self, UnknownState> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownState { kind: $kind, value: s.to_owned() }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownState;
            fn try_from(s: String) -> Result<Self, UnknownState> {
                s.parse()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

states! {
    /// Where a party is in its life: `recruiting` ⇄ `full` → `closed` → `completed`, or `cancelled`
    /// before it meets.
    PartyStatus ("party status") {
        /// Taking bookings until the deadline.
        Recruiting = "recruiting",
        /// Every seat taken; a leave reopens it.
        Full = "full",
        /// The booking deadline passed with enough members; waiting for the meet.
        Closed = "closed",
        /// Met; attendance is being (or was) taken.
        Completed = "completed",
        /// Called off by its leader, or for too few members at the deadline.
        Cancelled = "cancelled",
    }
}

impl PartyStatus {
    /// The allowed transitions. Editing a party (title, meet time) is not a transition; see
    /// [`PartyStatus::is_live`].
    pub const fn can_become(self, next: PartyStatus) -> bool {
        use PartyStatus::*;
        matches!(
            (self, next),
            (Recruiting, Full)
                | (Full, Recruiting)
                | (Recruiting | Full, Closed)
                | (Closed, Completed)
                | (Recruiting | Full | Closed, Cancelled)
        )
    }

    /// Not yet over: the party can still be edited, cancelled, closed or completed.
    pub const fn is_live(self) -> bool {
        !matches!(self, PartyStatus::Completed | PartyStatus::Cancelled)
    }

    /// Listed as upcoming: recruiting or full. This is what the nearby index holds, what
    /// `parties::list_open_parties` returns, and the only states a waiting room serves.
    pub const fn is_open(self) -> bool {
        matches!(self, PartyStatus::Recruiting | PartyStatus::Full)
    }

    /// The live states as an SQL list.
    pub fn live_sql() -> String {
        Self::sql_list(Self::ALL.iter().copied().filter(|s| s.is_live()))
    }

    /// The open states as an SQL list.
    pub fn open_sql() -> String {
        Self::sql_list(Self::ALL.iter().copied().filter(|s| s.is_open()))
    }
}

/// Whether a party with this state takes a new booking at `now`: recruiting, a seat free, the
/// deadline ahead. The one definition of "open for booking"; the SQL form is
/// [`accepts_bookings_sql`].
pub const fn accepts_bookings(
    status: PartyStatus,
    joined: i64,
    capacity: i64,
    deadline_at: i64,
    now: i64,
) -> bool {
    matches!(status, PartyStatus::Recruiting) && joined < capacity && deadline_at > now
}

/// [`accepts_bookings`] as an SQL condition on `parties`, with `now` the placeholder of the
/// current time (`$2`).
pub fn accepts_bookings_sql(now: &str) -> String {
    format!(
        "status = '{}' AND joined < capacity AND deadline_at > {now}",
        PartyStatus::Recruiting
    )
}

states! {
    /// A member's booking: `joined` → `left` before the deadline, or after the meet `attended` or
    /// `no_show` (a leader may correct one into the other while attendance is open).
    BookingStatus ("booking status") {
        /// Holding a seat.
        Joined = "joined",
        /// Gave the seat back.
        Left = "left",
        /// Came to the meet.
        Attended = "attended",
        /// Did not come.
        NoShow = "no_show",
    }
}

impl BookingStatus {
    pub const fn can_become(self, next: BookingStatus) -> bool {
        use BookingStatus::*;
        matches!(
            (self, next),
            (Joined, Left | Attended | NoShow) | (Attended, NoShow) | (NoShow, Attended)
        )
    }

    /// Still a member of the party (not left): holds a seat or has been marked at the meet.
    pub const fn is_member(self) -> bool {
        !matches!(self, BookingStatus::Left)
    }
}

states! {
    /// A waiting room in front of a hot party.
    RoomState ("waiting room state") {
        /// Admitting at the room's rate.
        Open = "open",
        /// Entering is allowed; nobody is admitted until it resumes.
        Paused = "paused",
        /// The party filled, was cancelled or met, or the leader turned the room off: everyone
        /// waiting was told; nobody enters. A leader may open it again.
        Closed = "closed",
    }
}

impl RoomState {
    pub const fn can_become(self, next: RoomState) -> bool {
        use RoomState::*;
        matches!(
            (self, next),
            (Open, Paused) | (Paused, Open) | (Open | Paused, Closed) | (Closed, Open)
        )
    }

    /// Bookings of the party need an admission pass.
    pub const fn gates_bookings(self) -> bool {
        matches!(self, RoomState::Open | RoomState::Paused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_json() {
        for s in PartyStatus::ALL {
            assert_eq!(s.as_str().parse::<PartyStatus>().unwrap(), *s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in BookingStatus::ALL {
            assert_eq!(s.as_str().parse::<BookingStatus>().unwrap(), *s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in RoomState::ALL {
            assert_eq!(s.as_str().parse::<RoomState>().unwrap(), *s);
        }
        let err = "open".parse::<PartyStatus>().unwrap_err();
        assert_eq!(err.to_string(), "unknown party status `open`");
    }

    #[test]
    fn the_party_transitions_are_the_documented_ones() {
        use PartyStatus::*;
        assert_eq!(PartyStatus::sources_sql(Full), "'recruiting'");
        assert_eq!(PartyStatus::sources_sql(Recruiting), "'full'");
        assert_eq!(PartyStatus::sources_sql(Closed), "'recruiting', 'full'");
        assert_eq!(PartyStatus::sources_sql(Completed), "'closed'");
        assert_eq!(
            PartyStatus::sources_sql(Cancelled),
            "'recruiting', 'full', 'closed'"
        );
        for over in [Completed, Cancelled] {
            assert!(PartyStatus::ALL.iter().all(|s| !over.can_become(*s)));
        }
        assert_eq!(PartyStatus::live_sql(), "'recruiting', 'full', 'closed'");
        assert_eq!(PartyStatus::open_sql(), "'recruiting', 'full'");
    }

    #[test]
    fn only_a_recruiting_party_with_a_seat_before_its_deadline_takes_bookings() {
        use PartyStatus::*;
        assert!(accepts_bookings(Recruiting, 3, 4, 100, 99));
        assert!(!accepts_bookings(Recruiting, 4, 4, 100, 99));
        assert!(!accepts_bookings(Recruiting, 3, 4, 100, 100));
        for s in [Full, Closed, Completed, Cancelled] {
            assert!(!accepts_bookings(s, 1, 4, 100, 0));
        }
        assert_eq!(
            accepts_bookings_sql("$2"),
            "status = 'recruiting' AND joined < capacity AND deadline_at > $2"
        );
    }

    #[test]
    fn a_left_booking_stays_left_and_marks_can_be_corrected() {
        use BookingStatus::*;
        assert!(BookingStatus::ALL.iter().all(|s| !Left.can_become(*s)));
        assert!(Attended.can_become(NoShow) && NoShow.can_become(Attended));
        assert!(!Attended.can_become(Left));
        assert_eq!(BookingStatus::sources_sql(Left), "'joined'");
        assert!(!Left.is_member() && NoShow.is_member());
    }

    #[test]
    fn a_closed_room_can_be_opened_again_and_only_live_rooms_gate() {
        use RoomState::*;
        assert_eq!(RoomState::sources_sql(Open), "'paused', 'closed'");
        assert_eq!(RoomState::sources_sql(Paused), "'open'");
        assert_eq!(RoomState::sources_sql(Closed), "'open', 'paused'");
        assert!(Open.gates_bookings() && Paused.gates_bookings() && !Closed.gates_bookings());
    }
}
