//! rustls client configuration from Kafka's `ssl.*` keys, as the Java client and
//! librdkafka read them, without OpenSSL: rustls on the ring provider, stores read
//! by pure-Rust code.
//!
//! [`TlsConnector::from_keys`] takes `security.protocol` and the keys, reads and
//! checks every store at once (so configuration errors surface when a client is
//! built), and returns a connector used for every broker connection, with SNI and
//! host-name verification set from the broker's advertised host.
//!
//! | key | from | meaning |
//! |---|---|---|
//! | `security.protocol` | both | `SSL` and `SASL_SSL` use TLS; `PLAINTEXT`, `SASL_PLAINTEXT` do not |
//! | `ssl.truststore.location`, `.password`, `.type` | Java | trust anchors: JKS, PKCS12 or PEM file (type detected by content; the type key must agree). JKS reads without a password (integrity then unchecked) |
//! | `ssl.truststore.certificates` | Java | trust anchors as inline PEM |
//! | `ssl.keystore.location`, `.password`, `.type` | both | client key and chain: JKS, PKCS12 or PEM file (librdkafka: PKCS#12) |
//! | `ssl.keystore.key`, `ssl.keystore.certificate.chain` | Java | client key (PKCS#8, optionally encrypted) and chain as inline PEM |
//! | `ssl.key.password` | both | password of the private key; defaults to `ssl.keystore.password` |
//! | `ssl.protocol` | Java | `TLSv1.3`/`TLS` (TLS 1.2 and 1.3, the default) or `TLSv1.2` (1.2 only) |
//! | `ssl.enabled.protocols` | Java | `TLSv1.2`, `TLSv1.3` (others are refused); overrides `ssl.protocol` |
//! | `ssl.cipher.suites` | both | IANA (Java) or OpenSSL names of suites rustls implements; unknown names are refused |
//! | `ssl.endpoint.identification.algorithm` | both | `https` (default): check the host name; empty or `none`: don't (the chain is still verified) |
//! | `ssl.ca.location`, `ssl.ca.pem` | librdkafka | trust anchors: PEM file or directory of PEM files / inline PEM |
//! | `ssl.certificate.location`, `ssl.certificate.pem` | librdkafka | client chain (PEM) |
//! | `ssl.key.location`, `ssl.key.pem` | librdkafka | client key (PEM: PKCS#8, PKCS#1, SEC1, encrypted PKCS#8) |
//! | `enable.ssl.certificate.verification` | librdkafka | `false` accepts any broker certificate |
//!
//! Without any trust key, the system CA bundle is used (`SSL_CERT_FILE`, then the
//! usual Linux paths). `ssl.keymanager.algorithm`, `ssl.trustmanager.algorithm`,
//! `ssl.secure.random.implementation`, `ssl.provider` and the broker-side
//! `ssl.client.auth` and `ssl.principal.mapping.rules` are accepted and ignored;
//! any other `ssl.*` key is refused.
//!
//! Private keys: RSA, ECDSA P-256 and P-384, Ed25519, in PKCS#8, PKCS#1 or SEC1;
//! encrypted PKCS#8 with PBES2 (PBKDF2 or scrypt, AES or 3DES) or the PKCS#12
//! PBE-SHA1-3DES. EC keys written by Java (whose PKCS#8 has no public key) are
//! completed so that ring can use them.
//!
//! ```
//! use ferrokafka_tls::TlsConnector;
//! // PLAINTEXT: no connector.
//! assert!(TlsConnector::from_keys("PLAINTEXT", [("ssl.truststore.location", "/nowhere")])?.is_none());
//! // A bad value is reported with its key.
//! let e = TlsConnector::from_keys("SSL", [("ssl.enabled.protocols", "TLSv1.1")]).unwrap_err();
//! assert!(e.to_string().contains("ssl.enabled.protocols"));
//! # Ok::<(), ferrokafka_tls::TlsError>(())
//! ```

mod config;
mod connector;
mod error;
mod key;
mod store;
mod suites;
#[cfg(test)]
mod tests;
mod verify;

pub use config::KEYS;
pub use connector::TlsConnector;
pub use error::TlsError;
/// The stream a [`TlsConnector`] returns.
pub use tokio_rustls::client::TlsStream;
