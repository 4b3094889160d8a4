//! Session ids: what an agent may name a conversation.
//!
//! The Python original interpolated any string into the key. We accept what it would have
//! stored in practice and refuse what only causes trouble: an empty id (every such caller
//! would share one session), ids long enough to be a mistake, and control characters (a
//! newline or NUL in a key breaks log lines and shell tools that operators point at Redis).

use std::fmt;

/// Longest session id, in bytes. Ids are usually UUIDs or chat ids (under 100 bytes); the
/// limit only catches a caller passing something that is not an id (a message, a document).
pub const MAX_SESSION_ID_BYTES: usize = 512;

/// A checked session id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

/// Why a session id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionIdError {
    /// The id is empty.
    #[error("session id is empty")]
    Empty,
    /// The id is longer than [`MAX_SESSION_ID_BYTES`].
    #[error("session id is {len} bytes long; the limit is {MAX_SESSION_ID_BYTES}")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The id holds a control character.
    #[error("session id has a control character (U+{code:04X}) at byte {at}")]
    ControlCharacter {
        /// Byte offset of the character.
        at: usize,
        /// Its code point.
        code: u32,
    },
}

impl SessionId {
    /// Check `id`.
    pub fn new(id: impl Into<String>) -> Result<Self, SessionIdError> {
        let id = id.into();
        if id.is_empty() {
            return Err(SessionIdError::Empty);
        }
        if id.len() > MAX_SESSION_ID_BYTES {
            return Err(SessionIdError::TooLong { len: id.len() });
        }
        if let Some((at, ch)) = id.char_indices().find(|(_, ch)| ch.is_control()) {
            return Err(SessionIdError::ControlCharacter {
                at,
                code: u32::from(ch),
            });
        }
        Ok(Self(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for SessionId {
    type Error = SessionIdError;

    fn try_from(id: &str) -> Result<Self, Self::Error> {
        Self::new(id)
    }
}

impl TryFrom<String> for SessionId {
    type Error = SessionIdError;

    fn try_from(id: String) -> Result<Self, Self::Error> {
        Self::new(id)
    }
}

impl TryFrom<&String> for SessionId {
    type Error = SessionIdError;

    fn try_from(id: &String) -> Result<Self, Self::Error> {
        Self::new(id.as_str())
    }
}

impl TryFrom<&SessionId> for SessionId {
    type Error = SessionIdError;

    fn try_from(id: &SessionId) -> Result<Self, Self::Error> {
        Ok(id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_ids_are_accepted_as_they_are() {
        for id in ["abc", "user:42/chat 7", "9f1c-…-日本", "a*b?[c]"] {
            assert_eq!(SessionId::new(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn an_empty_id_is_refused() {
        assert_eq!(SessionId::new(""), Err(SessionIdError::Empty));
    }

    #[test]
    fn an_id_over_the_limit_is_refused_with_its_length() {
        let id = "x".repeat(MAX_SESSION_ID_BYTES + 1);
        assert_eq!(
            SessionId::new(id),
            Err(SessionIdError::TooLong {
                len: MAX_SESSION_ID_BYTES + 1
            })
        );
        assert!(SessionId::new("x".repeat(MAX_SESSION_ID_BYTES)).is_ok());
    }

    #[test]
    fn newlines_and_nul_are_refused_with_their_position() {
        assert_eq!(
            SessionId::new("ab\ncd"),
            Err(SessionIdError::ControlCharacter { at: 2, code: 0x0a })
        );
        assert!(SessionId::new("a\0").is_err());
    }
}
