//! What a notification is about: the `kind` clients switch on. A leaf module, so the inbox, the
//! preferences and the push scheduling can all name the kinds without importing each other.

pub const PARTY_CREATED: &str = "party_created";
pub const PARTY_CANCELLED: &str = "party_cancelled";
pub const PARTY_FULL: &str = "party_full";
pub const MEMBER_LEFT: &str = "member_left";
pub const PARTY_CHANGED: &str = "party_changed";
pub const REMINDER: &str = "reminder";
pub const PENALTY: &str = "penalty";
pub const BAN: &str = "ban";
/// New messages in a party's chat, for a member with no open socket (one per quiet period).
pub const CHAT_MESSAGE: &str = "chat_message";
pub const ALL: [&str; 9] = [
    PARTY_CREATED,
    PARTY_CANCELLED,
    PARTY_FULL,
    MEMBER_LEFT,
    PARTY_CHANGED,
    REMINDER,
    PENALTY,
    BAN,
    CHAT_MESSAGE,
];
