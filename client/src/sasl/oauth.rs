//! OAUTHBEARER (RFC 7628, KIP-255, KIP-342): the client's initial message, unsecured
//! tokens as Java's `OAuthBearerUnsecuredLoginCallbackHandler` and librdkafka's
//! `sasl.oauthbearer.config` build them, and the [`TokenProvider`] trait for tokens
//! from elsewhere (an identity service, MSK IAM, Azure identity).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;

/// A bearer token with what the broker is told alongside it.
#[derive(Clone)]
pub struct OAuthToken {
    /// The token (a JWT, usually). Never shown by `Debug`.
    pub value: String,
    /// When it expires (re-authentication and refreshes happen before).
    pub expires_at: SystemTime,
    /// The principal it names (for messages).
    pub principal: String,
    /// SASL extensions sent with it (KIP-342), e.g. Confluent Cloud's `logicalCluster`.
    pub extensions: BTreeMap<String, String>,
}

impl std::fmt::Debug for OAuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthToken")
            .field("value", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .field("principal", &self.principal)
            .field("extensions", &self.extensions.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A boxed future, as [`TokenProvider`] returns.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<OAuthToken, String>> + Send + 'a>>;

/// Where OAUTHBEARER tokens come from. Called before each authentication; cache
/// and refresh inside as your identity service requires. The error text reaches the
/// user: keep secrets out of it.
pub trait TokenProvider: Send + Sync + std::fmt::Debug {
    /// A currently valid token.
    fn token(&self) -> TokenFuture<'_>;
}

/// An unsigned JWT (`alg: none`) for brokers that accept unsecured tokens (Kafka's
/// `OAuthBearerUnsecuredValidatorCallbackHandler`, development clusters).
#[derive(Clone, Debug, PartialEq)]
pub struct UnsecuredJwt {
    /// The principal (`sub` claim, or `principal_claim`).
    pub principal: String,
    /// Name of the principal claim (`sub`).
    pub principal_claim: String,
    /// Lifetime (`exp = iat + lifetime`), one hour by default.
    pub lifetime: Duration,
    /// Scopes (`scope` claim, a list), possibly none.
    pub scope: Vec<String>,
    /// Further string claims.
    pub claims: BTreeMap<String, String>,
    /// SASL extensions.
    pub extensions: BTreeMap<String, String>,
}

impl UnsecuredJwt {
    /// librdkafka's `sasl.oauthbearer.config`: `principal=NAME [principalClaimName=sub]
    /// [scope=a,b] [scopeClaimName=scope] [lifeSeconds=3600] [extension_KEY=VALUE]…`.
    pub fn from_librdkafka(config: &str) -> Result<Self, String> {
        let mut jwt = UnsecuredJwt::default();
        let mut principal = None;
        for item in config.split_whitespace() {
            let (k, v) = item.split_once('=').ok_or_else(|| format!("expected key=value, got {:?}", key_only(item)))?;
            match k {
                "principal" => principal = Some(v.to_owned()),
                "principalClaimName" => jwt.principal_claim = v.to_owned(),
                "scope" => jwt.scope = v.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
                "scopeClaimName" => return Err("scopeClaimName other than scope is not supported".into()),
                "lifeSeconds" => {
                    jwt.lifetime = parse_lifetime(v, "lifeSeconds")?;
                }
                _ => match k.strip_prefix("extension_") {
                    Some(ext) => {
                        jwt.extensions.insert(ext.to_owned(), v.to_owned());
                    }
                    None => return Err(format!("unknown sasl.oauthbearer.config item {k:?}")),
                },
            }
        }
        jwt.principal = principal.ok_or("sasl.oauthbearer.config needs principal=NAME")?;
        Ok(jwt)
    }

    /// Java's `OAuthBearerLoginModule` options for unsecured tokens:
    /// `unsecuredLoginStringClaim_sub`, `unsecuredLoginListClaim_scope` (first character
    /// separates), `unsecuredLoginLifetimeSeconds`, `unsecuredLoginPrincipalClaimName`,
    /// `unsecuredLoginExtension_KEY`.
    pub fn from_jaas(options: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut jwt = UnsecuredJwt::default();
        for (k, v) in options {
            if let Some(name) = k.strip_prefix("unsecuredLoginStringClaim_") {
                jwt.claims.insert(name.to_owned(), v.clone());
            } else if let Some(name) = k.strip_prefix("unsecuredLoginListClaim_") {
                let mut chars = v.chars();
                let sep = chars.next().unwrap_or(',');
                let items: Vec<String> =
                    chars.as_str().split(sep).filter(|s| !s.is_empty()).map(str::to_owned).collect();
                if name != "scope" {
                    return Err(format!("list claim {name:?} is not supported (only scope)"));
                }
                jwt.scope = items;
            } else if let Some(ext) = k.strip_prefix("unsecuredLoginExtension_") {
                jwt.extensions.insert(ext.to_owned(), v.clone());
            } else if k == "unsecuredLoginLifetimeSeconds" {
                jwt.lifetime = parse_lifetime(v, "unsecuredLoginLifetimeSeconds")?;
            } else if k == "unsecuredLoginPrincipalClaimName" {
                jwt.principal_claim = v.clone();
            } else if k.starts_with("unsecuredLogin") {
                return Err(format!("unknown OAuthBearerLoginModule option {k:?}"));
            }
        }
        jwt.principal = jwt
            .claims
            .remove(&jwt.principal_claim)
            .ok_or_else(|| format!("no unsecuredLoginStringClaim_{}", jwt.principal_claim))?;
        Ok(jwt)
    }

    /// The token, issued now.
    pub fn issue(&self, now: SystemTime) -> OAuthToken {
        let iat = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        let exp = iat + self.lifetime.as_secs_f64();
        let mut payload = serde_json_lite::Object::default();
        payload.num("iat", iat);
        payload.num("exp", exp);
        payload.str(&self.principal_claim, &self.principal);
        if !self.scope.is_empty() {
            payload.list("scope", &self.scope);
        }
        for (k, v) in &self.claims {
            payload.str(k, v);
        }
        let value = format!("{}.{}.", B64URL.encode(r#"{"alg":"none"}"#), B64URL.encode(payload.finish()));
        OAuthToken {
            value,
            // A lifetime past what the clock can hold expires "never" in practice: a
            // century from now (the value itself is bounded when parsed).
            expires_at: now.checked_add(self.lifetime).or_else(|| now.checked_add(MAX_LIFETIME)).unwrap_or(now),
            principal: self.principal.clone(),
            extensions: self.extensions.clone(),
        }
    }
}

impl Default for UnsecuredJwt {
    fn default() -> Self {
        UnsecuredJwt {
            principal: String::new(),
            principal_claim: "sub".into(),
            lifetime: Duration::from_secs(3600),
            scope: Vec::new(),
            claims: BTreeMap::new(),
            extensions: BTreeMap::new(),
        }
    }
}

/// The longest token lifetime accepted from configuration: 100 years.
const MAX_LIFETIME: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

fn parse_lifetime(v: &str, key: &str) -> Result<Duration, String> {
    let secs: u64 = v.parse().map_err(|_| format!("{key} is not a number"))?;
    let life = Duration::from_secs(secs);
    if life > MAX_LIFETIME {
        return Err(format!("{key} {secs} is longer than 100 years"));
    }
    Ok(life)
}

fn key_only(item: &str) -> &str {
    item.split('=').next().unwrap_or("")
}

/// The client's initial response: `n,,\x01auth=Bearer TOKEN\x01[key=value\x01]…\x01`.
pub fn client_first(token: &OAuthToken) -> Vec<u8> {
    let mut out = format!("n,,\x01auth=Bearer {}\x01", token.value);
    for (k, v) in &token.extensions {
        out.push_str(&format!("{k}={v}\x01"));
    }
    out.push('\x01');
    out.into_bytes()
}

/// A tiny JSON writer for the unsecured token's claims (strings escaped per RFC 8259).
mod serde_json_lite {
    #[derive(Default)]
    pub(super) struct Object(String);

    fn quote(s: &str) -> String {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    impl Object {
        fn key(&mut self, k: &str) {
            self.0.push(if self.0.is_empty() { '{' } else { ',' });
            self.0.push_str(&quote(k));
            self.0.push(':');
        }
        pub(super) fn num(&mut self, k: &str, v: f64) {
            self.key(k);
            self.0.push_str(&format!("{v:.3}"));
        }
        pub(super) fn str(&mut self, k: &str, v: &str) {
            self.key(k);
            self.0.push_str(&quote(v));
        }
        pub(super) fn list(&mut self, k: &str, v: &[String]) {
            self.key(k);
            self.0.push('[');
            self.0.push_str(&v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(","));
            self.0.push(']');
        }
        pub(super) fn finish(mut self) -> String {
            if self.0.is_empty() {
                self.0.push('{');
            }
            self.0.push('}');
            self.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsecured_tokens_from_both_spellings() {
        let r = UnsecuredJwt::from_librdkafka("principal=alice scope=read,write lifeSeconds=60 extension_traceId=7")
            .unwrap();
        let j = UnsecuredJwt::from_jaas(
            &[
                ("unsecuredLoginStringClaim_sub", "alice"),
                ("unsecuredLoginListClaim_scope", ",read,write"),
                ("unsecuredLoginLifetimeSeconds", "60"),
                ("unsecuredLoginExtension_traceId", "7"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        )
        .unwrap();
        assert_eq!(r, j);
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let t = r.issue(now);
        assert_eq!(t.expires_at, now + Duration::from_secs(60));
        let parts: Vec<&str> = t.value.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], "", "unsigned");
        assert_eq!(B64URL.decode(parts[0]).unwrap(), br#"{"alg":"none"}"#);
        let payload = String::from_utf8(B64URL.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(payload, r#"{"iat":1700000000.000,"exp":1700000060.000,"sub":"alice","scope":["read","write"]}"#);
        let first = client_first(&t);
        assert_eq!(first, format!("n,,\x01auth=Bearer {}\x01traceId=7\x01\x01", t.value).into_bytes());
        assert!(!format!("{t:?}").contains(&t.value));
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(UnsecuredJwt::from_librdkafka("scope=a").is_err(), "principal is required");
        assert!(UnsecuredJwt::from_librdkafka("principal=a lifeSeconds=x").is_err());
        assert!(UnsecuredJwt::from_librdkafka("principal=a bogus=1").is_err());
        assert!(UnsecuredJwt::from_librdkafka("principal").is_err());
        assert!(UnsecuredJwt::from_jaas(&BTreeMap::new()).is_err(), "no sub claim");
    }

    /// Found by the `sasl` fuzz target: `lifeSeconds=18446744073709551615` overflowed the
    /// expiry time and panicked.
    #[test]
    fn lifetimes_the_clock_cannot_hold_are_refused_or_clamped() {
        let err = UnsecuredJwt::from_librdkafka("principal=a lifeSeconds=18446744073709551615").unwrap_err();
        assert!(err.contains("longer than 100 years"), "{err}");
        let long = "unsecuredLoginLifetimeSeconds".to_owned();
        let opts =
            BTreeMap::from([(long, "99999999999".to_owned()), ("unsecuredLoginStringClaim_sub".into(), "a".into())]);
        assert!(UnsecuredJwt::from_jaas(&opts).is_err());
        let jwt = UnsecuredJwt { principal: "a".into(), lifetime: Duration::MAX, ..Default::default() };
        let token = jwt.issue(UNIX_EPOCH);
        assert_eq!(token.expires_at, UNIX_EPOCH + MAX_LIFETIME);
    }
}
