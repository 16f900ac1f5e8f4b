//! OIDC client credentials (KIP-768; librdkafka's `sasl.oauthbearer.method=oidc`):
//! tokens fetched from the identity provider's token endpoint with the client id and
//! secret, cached, and fetched again once 80 % of their lifetime has passed (Java's
//! `sasl.login.refresh.window.factor`), so every authentication and re-authentication
//! presents a valid token.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine as _;
use ferrokafka_tls::TlsConnector;
use tokio::sync::Mutex;

use super::http::{form_escape, post_form, Url};
use super::oauth::{OAuthToken, TokenFuture, TokenProvider};

/// Fraction of a token's lifetime after which a new one is fetched.
const REFRESH_FACTOR: f64 = 0.8;

/// Where and how tokens are fetched.
#[derive(Clone)]
pub struct OidcSettings {
    /// The token endpoint (`sasl.oauthbearer.token.endpoint.url`).
    pub endpoint: String,
    /// `sasl.oauthbearer.client.id` (JAAS `clientId`).
    pub client_id: String,
    /// `sasl.oauthbearer.client.secret` (JAAS `clientSecret`). Never shown.
    pub client_secret: String,
    /// `sasl.oauthbearer.scope` (JAAS `scope`), if any.
    pub scope: Option<String>,
    /// SASL extensions sent with every token (`sasl.oauthbearer.extensions`).
    pub extensions: BTreeMap<String, String>,
    /// Longest wait for the endpoint (`sasl.login.read.timeout.ms`, 10 s).
    pub timeout: Duration,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("scope", &self.scope)
            .finish()
    }
}

/// A [`TokenProvider`] for OIDC client credentials.
pub struct OidcProvider {
    settings: OidcSettings,
    url: Url,
    tls: Option<Arc<TlsConnector>>,
    cached: Mutex<Option<(OAuthToken, SystemTime)>>,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider").field("settings", &self.settings).finish()
    }
}

impl OidcProvider {
    /// A provider; `tls` is used for an `https://` endpoint (the client's `ssl.*`
    /// trust settings, or the system's CAs).
    pub fn new(settings: OidcSettings, tls: Option<Arc<TlsConnector>>) -> Result<Self, String> {
        let url = Url::parse(&settings.endpoint)?;
        Ok(OidcProvider { settings, url, tls, cached: Mutex::new(None) })
    }

    async fn fetch(&self) -> Result<OAuthToken, String> {
        let s = &self.settings;
        let basic = B64.encode(format!("{}:{}", form_escape(&s.client_id), form_escape(&s.client_secret)));
        let mut body = "grant_type=client_credentials".to_owned();
        if let Some(scope) = &s.scope {
            body.push_str(&format!("&scope={}", form_escape(scope)));
        }
        let headers = [("Authorization", format!("Basic {basic}"))];
        let where_ = &s.endpoint;
        let (status, answer) = post_form(&self.url, self.tls.as_deref(), &headers, &body, s.timeout)
            .await
            .map_err(|e| format!("token endpoint {where_}: {e}"))?;
        let fields = flat_json(&answer)
            .map_err(|e| format!("token endpoint {where_} answered {status} with no JSON object: {e}"))?;
        if status != 200 {
            let why = fields.get("error_description").or(fields.get("error")).map_or("", String::as_str);
            return Err(format!(
                "token endpoint {where_} refused the client credentials of {:?}: HTTP {status} {why}",
                s.client_id
            ));
        }
        let value = fields
            .get("access_token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| format!("token endpoint {where_} answered without access_token"))?
            .clone();
        let now = SystemTime::now();
        let (exp, principal) = jwt_claims(&value);
        let expires_at = match fields.get("expires_in").and_then(|v| v.parse::<f64>().ok()) {
            Some(secs) if secs > 0.0 => now + Duration::from_secs_f64(secs),
            _ => exp
                .ok_or_else(|| format!("token endpoint {where_}: the token has neither expires_in nor an exp claim"))?,
        };
        Ok(OAuthToken {
            value,
            expires_at,
            principal: principal.unwrap_or_else(|| s.client_id.clone()),
            extensions: s.extensions.clone(),
        })
    }

    /// A valid token: the cached one while less than 80 % of its lifetime has passed.
    pub async fn current(&self) -> Result<OAuthToken, String> {
        let mut cached = self.cached.lock().await;
        let now = SystemTime::now();
        if let Some((token, refresh_at)) = cached.as_ref() {
            if now < *refresh_at && now < token.expires_at {
                return Ok(token.clone());
            }
        }
        let token = self.fetch().await?;
        let lifetime = token.expires_at.duration_since(now).unwrap_or_default();
        *cached = Some((token.clone(), now + lifetime.mul_f64(REFRESH_FACTOR)));
        Ok(token)
    }
}

impl TokenProvider for OidcProvider {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(self.current())
    }
}

/// Reads a token endpoint's raw HTTP answer as the provider does: status line and
/// headers, the (possibly chunked) body, its JSON members, and the JWT claims of the
/// access token. For the fuzz target; errors are texts.
#[doc(hidden)]
pub fn parse_token_answer(raw: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let (_, body) = super::http::parse_response(raw)?;
    let fields = flat_json(&body)?;
    if let Some(token) = fields.get("access_token") {
        let _ = jwt_claims(token);
    }
    Ok(fields)
}

/// The `exp` and `sub` claims of a JWT, when it is one.
fn jwt_claims(token: &str) -> (Option<SystemTime>, Option<String>) {
    let Some(payload) = token.split('.').nth(1).and_then(|p| B64URL.decode(p.trim_end_matches('=')).ok()) else {
        return (None, None);
    };
    let Ok(claims) = flat_json(&payload) else { return (None, None) };
    let exp = claims
        .get("exp")
        .and_then(|e| e.parse::<f64>().ok())
        .filter(|e| *e > 0.0)
        .map(|e| UNIX_EPOCH + Duration::from_secs_f64(e));
    (exp, claims.get("sub").cloned())
}

/// The top-level string, number and boolean members of a JSON object, as text
/// (nested values are skipped). Enough for a token response; strict about syntax.
pub(crate) fn flat_json(data: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let text = std::str::from_utf8(data).map_err(|_| "not UTF-8")?;
    let mut p = Parser { s: text.as_bytes(), i: 0, depth: 0 };
    p.ws();
    p.expect(b'{')?;
    let mut out = BTreeMap::new();
    p.ws();
    if p.peek() == Some(b'}') {
        return Ok(out);
    }
    loop {
        p.ws();
        let key = p.string()?;
        p.ws();
        p.expect(b':')?;
        p.ws();
        if let Some(v) = p.value()? {
            out.insert(key, v);
        }
        p.ws();
        match p.next() {
            Some(b',') => continue,
            Some(b'}') => return Ok(out),
            _ => return Err("expected , or }".into()),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn next(&mut self) -> Option<u8> {
        let c = self.peek();
        self.i += 1;
        c
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.next() == Some(c) {
            Ok(())
        } else {
            Err(format!("expected {:?}", c as char))
        }
    }
    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.next().ok_or("unterminated string")? {
                b'"' => return String::from_utf8(out).map_err(|_| "bad UTF-8".into()),
                b'\\' => match self.next().ok_or("unterminated escape")? {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'u' => {
                        let hex = self.s.get(self.i..self.i + 4).ok_or("short \\u escape")?;
                        let code = u32::from_str_radix(std::str::from_utf8(hex).map_err(|_| "bad \\u escape")?, 16)
                            .map_err(|_| "bad \\u escape")?;
                        self.i += 4;
                        let c = char::from_u32(code).unwrap_or('\u{fffd}');
                        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    }
                    c @ (b'"' | b'\\' | b'/') => out.push(c),
                    _ => return Err("bad escape".into()),
                },
                c => out.push(c),
            }
        }
    }
    /// A value: `Some(text)` for strings, numbers and booleans; `None` for null and
    /// nested arrays or objects (skipped).
    fn value(&mut self) -> Result<Option<String>, String> {
        match self.peek().ok_or("missing value")? {
            b'"' => self.string().map(Some),
            b'{' | b'[' => {
                self.skip_nested()?;
                Ok(None)
            }
            _ => {
                let start = self.i;
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+')) {
                    self.i += 1;
                }
                let word = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| "bad value")?;
                match word {
                    "null" => Ok(None),
                    "true" | "false" => Ok(Some(word.to_owned())),
                    w if !w.is_empty() && w.parse::<f64>().is_ok() => Ok(Some(w.to_owned())),
                    _ => Err("bad value".into()),
                }
            }
        }
    }
    fn skip_nested(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > 32 {
            return Err("nested too deeply".into());
        }
        let close = if self.next() == Some(b'{') { b'}' } else { b']' };
        loop {
            self.ws();
            match self.peek().ok_or("unterminated value")? {
                c if c == close => {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                b',' | b':' => self.i += 1,
                b'"' => {
                    self.string()?;
                }
                _ => {
                    self.value()?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_responses_parse_and_garbage_does_not() {
        let m = flat_json(br#" {"access_token":"a\"b\u0041","expires_in":3600,"scope":["x"],"nested":{"k":[1,{"z":null}]},"ok":true,"n":null} "#).unwrap();
        assert_eq!(m["access_token"], "a\"bA");
        assert_eq!(m["expires_in"], "3600");
        assert_eq!(m["ok"], "true");
        assert!(!m.contains_key("scope") && !m.contains_key("n"));
        assert!(flat_json(b"{}").unwrap().is_empty());
        for bad in
            [&b""[..], b"[]", b"{\"a\":}", b"{\"a\":1", b"<html>", b"{\"a\":tru}", b"{\"a\" 1}", &[b'['; 100][..]]
        {
            assert!(flat_json(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(40), "]".repeat(40));
        assert!(flat_json(deep.as_bytes()).is_err(), "depth is bounded");
    }

    #[test]
    fn jwt_claims_give_expiry_and_subject() {
        let payload = B64URL.encode(r#"{"sub":"svc","exp":1700000000}"#);
        let (exp, sub) = jwt_claims(&format!("h.{payload}.s"));
        assert_eq!(exp, Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)));
        assert_eq!(sub.as_deref(), Some("svc"));
        assert_eq!(jwt_claims("opaque-token"), (None, None));
    }
}
