//! [`ConfigError`]: why a configuration was rejected, never showing a secret.

use super::keys;

/// Shown instead of the value of a secret key.
const REDACTED: &str = "[redacted]";

/// A configuration key or value was rejected.
///
/// No message (and no `Debug` output) ever contains the value of a key for which
/// [`is_secret`](super::is_secret) holds: such values are replaced by `[redacted]`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A key that no layer of ferrokafka knows.
    #[error("unknown configuration key {key:?}{}", did_you_mean(.suggestion))]
    UnknownKey {
        /// The key as given.
        key: String,
        /// The closest accepted key, if one is close enough.
        suggestion: Option<String>,
    },
    /// A value that does not parse or is out of range. Build it with
    /// [`ConfigError::invalid_value`], which redacts secrets.
    #[error("invalid value {} for configuration key {key:?}: expected {expected}", shown(.key, .value))]
    #[non_exhaustive]
    InvalidValue {
        /// The key, as given.
        key: String,
        /// The value as given, or `[redacted]` for a secret key.
        value: String,
        /// What the key accepts.
        expected: String,
    },
    /// A required key is absent.
    #[error("missing required configuration key {key:?}")]
    Missing {
        /// The key.
        key: String,
    },
    /// Two keys (or a key and its alias) contradict each other.
    #[error("conflicting configuration keys {first:?} and {second:?}: {reason}")]
    Conflict {
        /// One key.
        first: String,
        /// The other key.
        second: String,
        /// Why they cannot go together.
        reason: String,
    },
}

impl ConfigError {
    /// An [`InvalidValue`](ConfigError::InvalidValue) error; the value is replaced
    /// by `[redacted]` when `key` [is secret](super::is_secret).
    pub fn invalid_value(key: impl Into<String>, value: &str, expected: impl Into<String>) -> Self {
        let key = key.into();
        let value = if keys::is_secret(&key) { REDACTED.to_owned() } else { value.to_owned() };
        ConfigError::InvalidValue { key, value, expected: expected.into() }
    }

    /// An [`UnknownKey`](ConfigError::UnknownKey) error for a layer that accepts
    /// the keys `known`, suggesting the closest of them.
    pub fn unknown_key(key: &str, known: &[&str]) -> Self {
        let suggestion = keys::suggest(key, |k| known.contains(&k), known.iter().copied());
        ConfigError::UnknownKey { key: key.to_owned(), suggestion }
    }
}

/// `value` quoted, or `[redacted]` if `key` is secret.
pub(crate) fn shown(key: &str, value: &str) -> String {
    if keys::is_secret(key) {
        REDACTED.to_owned()
    } else {
        format!("{value:?}")
    }
}

/// The "; did you mean ...?" tail of an unknown-key message.
fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion.as_ref().map(|s| format!("; did you mean {s:?}?")).unwrap_or_default()
}
