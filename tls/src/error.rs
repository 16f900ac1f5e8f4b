//! [`TlsError`]: what went wrong while loading stores or shaking hands, never
//! showing a password or key material.

use std::sync::Arc;

/// Everything the TLS layer can fail with.
///
/// Store errors name the store (file path and the key that pointed at it, or the
/// inline key), the entry when there is one, and what failed. Handshake errors name
/// the broker. No message and no `Debug` output contains a password, a private key
/// or an inline PEM value.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A TLS key has a value that cannot be used (or keys contradict each other).
    #[error("configuration key {key:?}: {reason}")]
    Config {
        /// The key.
        key: String,
        /// Why the value was refused (never the value of a secret key).
        reason: String,
    },
    /// A store file could not be read.
    #[error("cannot read {store}: {source}")]
    Read {
        /// The store (path and key).
        store: String,
        /// The I/O error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The bytes are none of JKS, PKCS#12 or PEM (or have no usable PEM section).
    #[error("{store}: unknown store format: {reason}")]
    UnknownFormat {
        /// The store.
        store: String,
        /// What was seen.
        reason: String,
    },
    /// The store's content and its `ssl.*.type` key disagree.
    #[error("{store}: {type_key} says {configured} but the content is {detected}")]
    TypeMismatch {
        /// The store.
        store: String,
        /// The type key (`ssl.keystore.type` or `ssl.truststore.type`).
        type_key: String,
        /// The configured type.
        configured: String,
        /// The type found by looking at the bytes.
        detected: &'static str,
    },
    /// The store password is wrong (or the store was altered: its integrity check failed).
    #[error("{store}: wrong store password, or the store is corrupted ({what} failed)")]
    WrongPassword {
        /// The store.
        store: String,
        /// Which check failed.
        what: String,
    },
    /// A private key entry could not be decrypted with the key password.
    #[error("{store}: entry {entry:?}: wrong key password ({what})")]
    WrongKeyPassword {
        /// The store.
        store: String,
        /// The entry (alias, or the PEM section).
        entry: String,
        /// Which check failed.
        what: String,
    },
    /// The store or key is encrypted and no password was configured.
    #[error("{store}: {what} is encrypted and {key} is not set")]
    PasswordRequired {
        /// The store.
        store: String,
        /// What needs it.
        what: String,
        /// The key that would give the password.
        key: String,
    },
    /// The store is truncated or malformed.
    #[error("{store}: corrupted or truncated store: {reason}")]
    Corrupt {
        /// The store.
        store: String,
        /// What is wrong, where.
        reason: String,
    },
    /// A keystore has no private key entry.
    #[error("{store}: no private key entry")]
    NoKeyEntry {
        /// The store.
        store: String,
    },
    /// A truststore (or key entry) has no certificate.
    #[error("{store}: no {what}")]
    NoCertificate {
        /// The store.
        store: String,
        /// What was looked for ("trusted certificate entry", "certificate chain for entry x").
        what: String,
    },
    /// A private key uses an algorithm or encryption this crate cannot use.
    #[error("{store}: entry {entry:?}: {reason}")]
    UnsupportedKey {
        /// The store.
        store: String,
        /// The entry.
        entry: String,
        /// What is not supported.
        reason: String,
    },
    /// A private key does not belong to the first certificate of its chain.
    #[error("{store}: entry {entry:?}: the private key does not match the certificate")]
    KeyMismatch {
        /// The store.
        store: String,
        /// The entry.
        entry: String,
    },
    /// The broker's certificate chain does not lead to a trusted CA.
    #[error(
        "TLS handshake with {server}: the broker's certificate is signed by an unknown CA (not in the truststore)"
    )]
    UnknownCa {
        /// The broker.
        server: String,
    },
    /// The broker's certificate (or one of its chain) has expired.
    #[error("TLS handshake with {server}: the broker's certificate has expired{detail}")]
    CertificateExpired {
        /// The broker.
        server: String,
        /// When, if known.
        detail: String,
    },
    /// The broker's certificate is not valid yet.
    #[error("TLS handshake with {server}: the broker's certificate is not valid yet{detail}")]
    CertificateNotYetValid {
        /// The broker.
        server: String,
        /// Since when, if known.
        detail: String,
    },
    /// The broker's certificate is not valid for the host name connected to.
    #[error("TLS handshake with {server}: the broker's certificate is not valid for {host:?}{detail} (ssl.endpoint.identification.algorithm= turns host-name checking off)")]
    HostnameMismatch {
        /// The broker.
        server: String,
        /// The host name (or IP address) checked.
        host: String,
        /// The names the certificate presents, if known.
        detail: String,
    },
    /// Another problem with the broker's certificate.
    #[error("TLS handshake with {server}: invalid broker certificate: {reason}")]
    InvalidCertificate {
        /// The broker.
        server: String,
        /// What rustls reported.
        reason: String,
    },
    /// The broker requires a client certificate and none is configured.
    #[error("TLS handshake with {server}: the broker requires a client certificate (configure ssl.keystore.location or ssl.certificate.location)")]
    ClientCertificateRequired {
        /// The broker.
        server: String,
    },
    /// The broker refused the client certificate.
    #[error("TLS handshake with {server}: the broker rejected the client certificate ({alert})")]
    ClientCertificateRejected {
        /// The broker.
        server: String,
        /// The TLS alert it sent.
        alert: String,
    },
    /// The broker speaks none of the enabled TLS versions.
    #[error("TLS handshake with {server}: no common TLS version (enabled: {enabled}): {reason}")]
    NoCommonVersion {
        /// The broker.
        server: String,
        /// The versions this client enabled.
        enabled: String,
        /// What was received.
        reason: String,
    },
    /// Any other handshake failure (no common cipher suite, protocol error, …).
    #[error("TLS handshake with {server} failed: {reason}")]
    Handshake {
        /// The broker.
        server: String,
        /// What rustls reported.
        reason: String,
    },
    /// The socket failed during the handshake (the broker closed it, reset, …).
    #[error("TLS handshake with {server}: {source}")]
    HandshakeIo {
        /// The broker.
        server: String,
        /// The I/O error.
        #[source]
        source: Arc<std::io::Error>,
    },
}

impl TlsError {
    /// Whether trying again (reconnecting) may succeed. Configuration, store and
    /// certificate problems are permanent; socket failures during a handshake are not.
    pub fn is_retriable(&self) -> bool {
        matches!(self, TlsError::HandshakeIo { .. })
    }

    pub(crate) fn config(key: &str, reason: impl Into<String>) -> TlsError {
        TlsError::Config { key: key.to_owned(), reason: reason.into() }
    }

    pub(crate) fn corrupt(store: &str, reason: impl Into<String>) -> TlsError {
        TlsError::Corrupt { store: store.to_owned(), reason: reason.into() }
    }
}
