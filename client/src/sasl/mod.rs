//! SASL authentication (KIP-43, KIP-152, KIP-368): PLAIN, SCRAM-SHA-256/512 and
//! OAUTHBEARER, in pure Rust (HMAC, SHA-2 and PBKDF2 from ring, which rustls already
//! links).
//!
//! A connection authenticates right after ApiVersions: SaslHandshake (v1) names the
//! mechanism, then SaslAuthenticate requests carry the mechanism's messages. When the
//! broker announces a session lifetime (SaslAuthenticate v1+), the connection
//! re-authenticates on the same socket before it runs out; requests keep their order
//! because re-authentication goes through the connection's one request queue.
//!
//! | Java | librdkafka | meaning |
//! |---|---|---|
//! | `sasl.mechanism` | `sasl.mechanisms` | `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`, `OAUTHBEARER` (`GSSAPI` is refused: Kerberos needs C libraries) |
//! | `sasl.jaas.config` (`PlainLoginModule`, `ScramLoginModule`: `username`, `password`) | `sasl.username`, `sasl.password` | credentials |
//! | `sasl.jaas.config` (`OAuthBearerLoginModule`: `unsecuredLoginStringClaim_sub`, …) | `sasl.oauthbearer.config` (`principal=…`) | an unsecured token (development brokers) |
//! | a login callback handler class | [`TokenProvider`] (`Cluster::connect_with_token_provider`) | tokens from your identity service |

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::config::ConfigError;
use crate::conn::Connection;
use crate::error::{ClientError, Result};

mod http;
pub mod jaas;
pub mod oauth;
pub mod oidc;
pub(crate) mod reauth;
pub mod scram;

pub use oauth::{OAuthToken, TokenFuture, TokenProvider, UnsecuredJwt};
pub use oidc::{OidcProvider, OidcSettings};
use scram::{ScramClient, ScramHash};

/// A SASL mechanism ferrokafka speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// PLAIN (RFC 4616): user and password in the clear (use it over TLS).
    Plain,
    /// SCRAM-SHA-256 or SCRAM-SHA-512.
    Scram(ScramHash),
    /// OAUTHBEARER (RFC 7628).
    OAuthBearer,
}

impl Mechanism {
    /// The mechanism's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(h) => h.mechanism(),
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// Where OAUTHBEARER tokens come from.
#[derive(Clone, Debug)]
pub enum TokenSource {
    /// An unsecured JWT built from the configuration.
    Unsecured(UnsecuredJwt),
    /// Your provider (or the built-in OIDC client-credentials provider).
    Provider(Arc<dyn TokenProvider>),
    /// OIDC client credentials, to be connected by the cluster (it needs TLS settings).
    Oidc(OidcSettings),
}

/// SASL settings of a cluster: the mechanism and its credentials. `Debug` never shows
/// a secret.
#[derive(Clone)]
pub struct SaslConfig {
    mechanism: Mechanism,
    user: String,
    password: String,
    tokens: Option<TokenSource>,
}

impl std::fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslConfig")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .field("password", &"[redacted]")
            .field("tokens", &self.tokens.as_ref().map(|_| "[configured]"))
            .finish()
    }
}

fn missing(key: &str) -> ConfigError {
    ConfigError::Missing { key: key.to_owned() }
}

impl SaslConfig {
    /// Reads the SASL keys (both spellings) from a client configuration's layer keys.
    pub fn from_keys<'a>(keys: impl IntoIterator<Item = (&'a str, &'a str)>) -> std::result::Result<Self, ConfigError> {
        let keys: std::collections::BTreeMap<&str, &str> = keys.into_iter().collect();
        let (mech_key, mech) = match (keys.get("sasl.mechanism"), keys.get("sasl.mechanisms")) {
            (Some(a), Some(b)) if a.trim() != b.trim() => {
                return Err(ConfigError::Conflict {
                    first: "sasl.mechanism".into(),
                    second: "sasl.mechanisms".into(),
                    reason: "they name different mechanisms".into(),
                })
            }
            (Some(m), _) => ("sasl.mechanism", m.trim()),
            (None, Some(m)) => ("sasl.mechanisms", m.trim()),
            (None, None) => ("sasl.mechanism", "GSSAPI"), // Java's and librdkafka's default
        };
        let mechanism = match mech.to_ascii_uppercase().as_str() {
            "PLAIN" => Mechanism::Plain,
            "SCRAM-SHA-256" => Mechanism::Scram(ScramHash::Sha256),
            "SCRAM-SHA-512" => Mechanism::Scram(ScramHash::Sha512),
            "OAUTHBEARER" => Mechanism::OAuthBearer,
            "GSSAPI" => {
                return Err(ConfigError::invalid_value(
                    mech_key,
                    mech,
                    "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (GSSAPI, the default when none is set, needs Kerberos C libraries, which ferrokafka does not link)",
                ))
            }
            _ => return Err(ConfigError::invalid_value(mech_key, mech, "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER")),
        };
        let jaas = match keys.get("sasl.jaas.config") {
            Some(text) => Some(jaas::parse(text).map_err(|e| ConfigError::invalid_value("sasl.jaas.config", text, e))?),
            None => None,
        };
        let module = jaas.as_ref().map(|j| j.simple_module().to_owned());
        let expect_module = match mechanism {
            Mechanism::Plain => "PlainLoginModule",
            Mechanism::Scram(_) => "ScramLoginModule",
            Mechanism::OAuthBearer => "OAuthBearerLoginModule",
        };
        if let Some(m) = &module {
            if m != expect_module {
                return Err(ConfigError::invalid_value(
                    "sasl.jaas.config",
                    "",
                    format!("a {expect_module} for {} (got {m})", mechanism.name()),
                ));
            }
        }
        let opt = |name: &str| jaas.as_ref().and_then(|j| j.options.get(name).cloned());
        let mut cfg = SaslConfig { mechanism, user: String::new(), password: String::new(), tokens: None };
        match mechanism {
            Mechanism::Plain | Mechanism::Scram(_) => {
                cfg.user = keys
                    .get("sasl.username")
                    .map(|s| s.to_string())
                    .or_else(|| opt("username"))
                    .ok_or_else(|| missing("sasl.username"))?;
                cfg.password = keys
                    .get("sasl.password")
                    .map(|s| s.to_string())
                    .or_else(|| opt("password"))
                    .ok_or_else(|| missing("sasl.password"))?;
            }
            Mechanism::OAuthBearer => {
                let method = keys.get("sasl.oauthbearer.method").map(|m| m.trim().to_ascii_lowercase());
                match method.as_deref() {
                    None | Some("default") | Some("oidc") => {}
                    Some(other) => {
                        return Err(ConfigError::invalid_value("sasl.oauthbearer.method", other, "default or oidc"))
                    }
                }
                let endpoint = keys.get("sasl.oauthbearer.token.endpoint.url").map(|s| s.trim().to_owned());
                if method.as_deref() == Some("oidc") || endpoint.is_some() {
                    cfg.tokens = Some(TokenSource::Oidc(oidc_settings(&keys, jaas.as_ref(), endpoint)?));
                    cfg.user = cfg.oidc().map(|o| o.client_id.clone()).unwrap_or_default();
                    return Ok(cfg);
                }
                let jwt = match (keys.get("sasl.oauthbearer.config"), &jaas) {
                    (Some(c), _) => Some(
                        UnsecuredJwt::from_librdkafka(c)
                            .map_err(|e| ConfigError::invalid_value("sasl.oauthbearer.config", c, e))?,
                    ),
                    (None, Some(j)) if !j.options.is_empty() => Some(
                        UnsecuredJwt::from_jaas(&j.options)
                            .map_err(|e| ConfigError::invalid_value("sasl.jaas.config", "", e))?,
                    ),
                    _ => None,
                };
                cfg.user = jwt.as_ref().map(|j| j.principal.clone()).unwrap_or_default();
                cfg.tokens = jwt.map(TokenSource::Unsecured);
            }
        }
        Ok(cfg)
    }

    /// The OIDC settings, when tokens come from a token endpoint.
    pub fn oidc(&self) -> Option<&OidcSettings> {
        match &self.tokens {
            Some(TokenSource::Oidc(s)) => Some(s),
            _ => None,
        }
    }

    /// The mechanism.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Uses `provider` for OAUTHBEARER tokens.
    pub fn with_token_provider(mut self, provider: Arc<dyn TokenProvider>) -> Self {
        self.tokens = Some(TokenSource::Provider(provider));
        self
    }

    /// Whether OAUTHBEARER lacks a token source.
    pub(crate) fn lacks_tokens(&self) -> bool {
        self.mechanism == Mechanism::OAuthBearer && self.tokens.is_none()
    }

    fn auth_error(&self, conn: &Connection, reason: impl Into<String>) -> ClientError {
        ClientError::Authentication {
            broker: conn.addr().to_owned(),
            mechanism: self.mechanism.name(),
            user: self.user.clone(),
            reason: reason.into(),
        }
    }
}

/// OIDC client credentials from librdkafka's keys or Java's (token endpoint key plus
/// `OAuthBearerLoginModule` options `clientId`, `clientSecret`, `scope`, `extension_*`).
fn oidc_settings(
    keys: &std::collections::BTreeMap<&str, &str>,
    jaas: Option<&jaas::JaasConfig>,
    endpoint: Option<String>,
) -> std::result::Result<OidcSettings, ConfigError> {
    let opt = |name: &str| jaas.and_then(|j| j.options.get(name).cloned());
    let key = |k: &str| keys.get(k).map(|v| v.trim().to_owned());
    let endpoint = endpoint.ok_or_else(|| missing("sasl.oauthbearer.token.endpoint.url"))?;
    http::Url::parse(&endpoint)
        .map_err(|e| ConfigError::invalid_value("sasl.oauthbearer.token.endpoint.url", &endpoint, e))?;
    let client_id = key("sasl.oauthbearer.client.id")
        .or_else(|| opt("clientId"))
        .ok_or_else(|| missing("sasl.oauthbearer.client.id"))?;
    let client_secret = key("sasl.oauthbearer.client.secret")
        .or_else(|| opt("clientSecret"))
        .ok_or_else(|| missing("sasl.oauthbearer.client.secret"))?;
    let scope = key("sasl.oauthbearer.scope").or_else(|| opt("scope")).filter(|s| !s.is_empty());
    let mut extensions = std::collections::BTreeMap::new();
    if let Some(list) = keys.get("sasl.oauthbearer.extensions") {
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = item.split_once('=').ok_or_else(|| {
                ConfigError::invalid_value("sasl.oauthbearer.extensions", list, "comma-separated key=value pairs")
            })?;
            extensions.insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    for (k, v) in jaas.map(|j| &j.options).into_iter().flatten() {
        if let Some(name) = k.strip_prefix("extension_") {
            extensions.insert(name.to_owned(), v.clone());
        }
    }
    let timeout = match key("sasl.login.read.timeout.ms") {
        Some(ms) => Duration::from_millis(
            ms.parse().map_err(|_| ConfigError::invalid_value("sasl.login.read.timeout.ms", &ms, "milliseconds"))?,
        ),
        None => Duration::from_secs(10),
    };
    Ok(OidcSettings { endpoint, client_id, client_secret, scope, extensions, timeout })
}

/// Authenticates `conn` (the caller holds [`Connection::exclusive`] or is the only
/// user); returns the session lifetime the broker granted (KIP-368).
pub(crate) async fn authenticate(conn: &Connection, cfg: &SaslConfig) -> Result<Option<Duration>> {
    // A broker without SaslAuthenticate (Kafka 0.10–0.11) takes SaslHandshake v0 and
    // then the mechanism's tokens as raw size-prefixed frames.
    let legacy = conn.version(ApiKey::SaslAuthenticate).is_err();
    let handshake_version = if legacy { 0 } else { conn.version(ApiKey::SaslHandshake)? };
    let handshake: SaslHandshakeResponse = conn
        .call_exclusive_at(
            handshake_version,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(cfg.mechanism.name())),
        )
        .await?;
    if let Some(error) = ResponseError::try_from_code(handshake.error_code) {
        let enabled: Vec<String> = handshake.mechanisms.iter().map(|m| m.to_string()).collect();
        if error == ResponseError::UnsupportedSaslMechanism {
            return Err(ClientError::SaslMechanismNotEnabled {
                broker: conn.addr().to_owned(),
                mechanism: cfg.mechanism.name(),
                enabled,
            });
        }
        return Err(cfg.auth_error(conn, format!("SaslHandshake failed: {error}")));
    }
    let mut lifetime = None;
    let step = |bytes: Vec<u8>| {
        let conn = conn.clone();
        async move {
            if legacy {
                // Raw framing has no error code: a broker that refuses closes the connection.
                return match conn.raw_sasl_token(&bytes).await {
                    Ok(answer) => Ok(SaslAuthenticateResponse::default().with_auth_bytes(answer)),
                    Err(ClientError::Disconnected { .. } | ClientError::Io { .. }) => Ok(SaslAuthenticateResponse::default()
                        .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                        .with_error_message(Some(StrBytes::from_static_str(
                            "the broker closed the connection during the raw SASL exchange (SaslHandshake v0): credentials refused",
                        )))),
                    Err(e) => Err(e),
                };
            }
            let resp: SaslAuthenticateResponse =
                conn.call_exclusive(&SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(bytes))).await?;
            Ok::<_, ClientError>(resp)
        }
    };
    let check = |resp: &SaslAuthenticateResponse| -> Result<()> {
        match ResponseError::try_from_code(resp.error_code) {
            None => Ok(()),
            Some(e) => {
                let msg = resp.error_message.as_ref().map(|m| m.to_string()).unwrap_or_else(|| e.to_string());
                Err(cfg.auth_error(conn, msg))
            }
        }
    };
    let last = match cfg.mechanism {
        Mechanism::Plain => {
            let msg = format!("\0{}\0{}", cfg.user, cfg.password).into_bytes();
            let resp = step(msg).await?;
            check(&resp)?;
            resp
        }
        Mechanism::Scram(hash) => {
            let mut scram = ScramClient::new(hash, &cfg.user, &cfg.password);
            let first = step(scram.client_first()).await?;
            check(&first)?;
            let fin = scram.client_final(&first.auth_bytes).map_err(|e| cfg.auth_error(conn, e.to_string()))?;
            let last = step(fin).await?;
            check(&last)?;
            scram.verify_server_final(&last.auth_bytes).map_err(|e| cfg.auth_error(conn, e.to_string()))?;
            last
        }
        Mechanism::OAuthBearer => {
            let token =
                match &cfg.tokens {
                    Some(TokenSource::Unsecured(jwt)) => jwt.issue(SystemTime::now()),
                    Some(TokenSource::Provider(p)) => {
                        p.token().await.map_err(|e| cfg.auth_error(conn, format!("token provider: {e}")))?
                    }
                    Some(TokenSource::Oidc(_)) => {
                        return Err(cfg.auth_error(conn, "the OIDC token provider was not started"))
                    }
                    None => return Err(cfg.auth_error(
                        conn,
                        "no token: set sasl.oauthbearer.config, sasl.jaas.config, or give the cluster a TokenProvider",
                    )),
                };
            if token.expires_at <= SystemTime::now() {
                return Err(cfg.auth_error(conn, "the token has expired"));
            }
            let resp = step(oauth::client_first(&token)).await?;
            if !resp.auth_bytes.is_empty() && resp.error_code == 0 {
                // RFC 7628: an error challenge (JSON); acknowledge it, the broker then fails.
                let detail = String::from_utf8_lossy(&resp.auth_bytes).chars().take(300).collect::<String>();
                let ack = step(vec![1]).await;
                let reason = match ack {
                    Ok(r) => r.error_message.map(|m| m.to_string()).unwrap_or_default(),
                    Err(e) => e.to_string(),
                };
                return Err(cfg.auth_error(conn, format!("token refused: {detail} {reason}").trim().to_owned()));
            }
            check(&resp)?;
            resp
        }
    };
    if last.session_lifetime_ms > 0 {
        lifetime = Some(Duration::from_millis(last.session_lifetime_ms as u64));
    }
    Ok(lifetime)
}

#[cfg(test)]
mod tests;
