//! OIDC client credentials (KIP-768) against a token endpoint written in Python's
//! standard library: the Basic credentials and form a real identity provider expects,
//! caching and refreshing before expiry, and the endpoint's failures (refused
//! credentials, nothing listening, an answer that is not a token) as typed errors
//! without the secret. End to end, the token reaches tansu (which refuses every
//! OAUTHBEARER token: DESIGN.md) through `sasl.oauthbearer.method=oidc`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrokafka_client::cluster::Cluster;
use ferrokafka_client::config::ClientConfig;
use ferrokafka_client::sasl::{OidcProvider, OidcSettings};
use ferrokafka_client::ClientError;

const ENDPOINT: &str = r#"
import base64, http.server, json, sys, time
LIFETIME = float(sys.argv[1])
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        auth = self.headers.get("Authorization", "")
        if self.path == "/garbage":
            out, code, ctype = b"<html>maintenance</html>", 200, "text/html"
        elif auth != "Basic " + base64.b64encode(b"app:s3cret%2Bx").decode() or "grant_type=client_credentials" not in body:
            out, code, ctype = json.dumps({"error": "invalid_client", "error_description": "bad client"}).encode(), 401, "application/json"
        else:
            claims = base64.urlsafe_b64encode(json.dumps({"sub": "svc-app", "exp": time.time() + LIFETIME}).encode()).rstrip(b"=").decode()
            out, code, ctype = json.dumps({"access_token": "eyJhbGciOiJub25lIn0." + claims + ".", "token_type": "bearer", "expires_in": LIFETIME, "scope": body}).encode(), 200, "application/json"
            print("issued scope=" + ("kafka" if "scope=kafka" in body else "-"), flush=True)
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print("listening on 127.0.0.1:%d" % s.server_address[1], flush=True)
s.serve_forever()
"#;

struct Endpoint {
    child: Child,
    url: String,
    issued: Arc<Mutex<usize>>,
}

impl Endpoint {
    fn start(lifetime_secs: f64) -> Endpoint {
        let mut child = Command::new("python3")
            .args(["-c", ENDPOINT, &lifetime_secs.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let (tx, rx) = std::sync::mpsc::channel();
        let issued = Arc::new(Mutex::new(0));
        let count = issued.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("listening on ") {
                    let _ = tx.send(a.to_owned());
                } else if line == "issued scope=kafka" {
                    *count.lock().unwrap() += 1;
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(20)).expect("token endpoint started");
        Endpoint { child, url: format!("http://{addr}/oauth2/token"), issued }
    }

    fn issued(&self) -> usize {
        *self.issued.lock().unwrap()
    }

    /// Tokens issued, once `n` have been: the endpoint prints each one just before it
    /// answers, and a thread of ours reads that line, maybe after the client has the token.
    async fn issued_after(&self, n: usize) -> usize {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.issued() < n && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.issued()
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn settings(url: &str, secret: &str) -> OidcSettings {
    OidcSettings {
        endpoint: url.to_owned(),
        client_id: "app".into(),
        client_secret: secret.into(),
        scope: Some("kafka".into()),
        extensions: Default::default(),
        timeout: Duration::from_secs(5),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn tokens_are_fetched_cached_and_refreshed_before_they_expire() {
    let ep = Endpoint::start(2.0);
    runtime().block_on(async {
        let p = OidcProvider::new(settings(&ep.url, "s3cret+x"), None).unwrap();
        let first = p.current().await.unwrap();
        assert_eq!(first.principal, "svc-app", "the JWT's sub claim");
        let left = first.expires_at.duration_since(std::time::SystemTime::now()).unwrap();
        assert!(left <= Duration::from_secs(2) && left > Duration::from_secs(1), "{left:?}");
        let again = p.current().await.unwrap();
        assert_eq!(again.value, first.value, "cached while young");
        assert_eq!(ep.issued_after(1).await, 1);
        tokio::time::sleep(Duration::from_millis(1700)).await; // past 80 % of 2 s
        let fresh = p.current().await.unwrap();
        assert_ne!(fresh.value, first.value, "refreshed before expiry");
        assert_eq!(ep.issued_after(2).await, 2);
        assert!(!format!("{p:?}").contains("s3cret"));
    });
}

#[test]
fn endpoint_failures_are_reported_without_the_secret() {
    let ep = Endpoint::start(60.0);
    let rt = runtime();
    let refused =
        rt.block_on(OidcProvider::new(settings(&ep.url, "wrong-s3cret"), None).unwrap().current()).unwrap_err();
    assert!(refused.contains("HTTP 401") && refused.contains("bad client") && refused.contains("\"app\""), "{refused}");
    assert!(!refused.contains("wrong-s3cret"), "{refused}");
    let garbage_url = ep.url.replace("/oauth2/token", "/garbage");
    let garbage =
        rt.block_on(OidcProvider::new(settings(&garbage_url, "s3cret+x"), None).unwrap().current()).unwrap_err();
    assert!(garbage.contains("no JSON object"), "{garbage}");
    let nobody = format!("http://127.0.0.1:{}/token", ferrokafka_tests::free_port());
    let down = rt.block_on(OidcProvider::new(settings(&nobody, "s3cret+x"), None).unwrap().current()).unwrap_err();
    assert!(down.contains("cannot connect") && !down.contains("s3cret"), "{down}");
}

/// `sasl.oauthbearer.method=oidc` end to end: the cluster fetches a token from the
/// endpoint and presents it; tansu refuses every OAUTHBEARER token, which must come
/// back as the authentication error of the token's principal.
#[test]
fn oidc_config_reaches_the_broker() {
    let ep = Endpoint::start(60.0);
    let broker = ferrokafka_tests::tansu::Tansu::start_authenticating();
    let cfg = ClientConfig::from_pairs([
        ("bootstrap.servers", broker.addr()),
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanisms", "OAUTHBEARER"),
        ("sasl.oauthbearer.method", "oidc"),
        ("sasl.oauthbearer.token.endpoint.url", ep.url.as_str()),
        ("sasl.oauthbearer.client.id", "app"),
        ("sasl.oauthbearer.client.secret", "s3cret+x"),
        ("sasl.oauthbearer.scope", "kafka"),
    ])
    .unwrap();
    let err = runtime().block_on(Cluster::connect(cfg)).unwrap_err();
    match &err {
        ClientError::Authentication { mechanism: "OAUTHBEARER", reason, .. } => {
            assert!(reason.contains("Authentication failed"), "{err}");
        }
        other => panic!("expected the broker's refusal, got {other:?}"),
    }
    assert!(ep.issued() >= 1, "the token came from the endpoint");
    assert!(!err.to_string().contains("s3cret"));
}

/// OAUTHBEARER accepted by a server that validates tokens (the front end checks the
/// unsecured JWT's principal and expiry, as Kafka's unsecured validator does): an
/// unsecured token from librdkafka's `sasl.oauthbearer.config` with an extension
/// (KIP-342), and OIDC tokens whose 6 s lifetime caps the session, so the connection
/// re-authenticates with a token fetched again before the old one expires.
#[test]
fn oauthbearer_tokens_are_accepted_and_renewed_before_expiry() {
    let fe =
        ferrokafka_tests::sasl_frontend::SaslFrontend::start(&[("alice", "-"), ("svc-app", "-")], &["OAUTHBEARER"], 0);
    let rt = runtime();
    let unsecured = ClientConfig::from_pairs([
        ("bootstrap.servers", fe.addr()),
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanisms", "OAUTHBEARER"),
        ("sasl.oauthbearer.config", "principal=alice lifeSeconds=60 extension_traceId=7"),
    ])
    .unwrap();
    rt.block_on(Cluster::connect(unsecured)).unwrap_or_else(|e| panic!("{e}\n{}", fe.output()));
    assert!(fe.wait_count("authenticated alice OAUTHBEARER", 1) >= 1, "{}", fe.output());
    assert!(fe.wait_count("extensions alice traceId=7", 1) >= 1, "{}", fe.output());

    // 6 s tokens: re-authentication comes 5 s into a session, when the cached token is
    // past 80 % of its life, so a new one is fetched with 1 s left. With 2 s tokens the
    // sessions shrank with the cached token's age (1 s, 0.5 s, 0.25 s) and the fetch and
    // the exchange had 0.25 s: too little on a loaded machine.
    let ep = Endpoint::start(6.0);
    let oidc = ClientConfig::from_pairs([
        ("bootstrap.servers", fe.addr()),
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "OAUTHBEARER"),
        ("sasl.oauthbearer.token.endpoint.url", ep.url.as_str()),
        (
            "sasl.jaas.config",
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=\"app\" clientSecret=\"s3cret+x\" scope=\"kafka\";",
        ),
    ])
    .unwrap();
    rt.block_on(async {
        let cluster = Cluster::connect(oidc).await.unwrap_or_else(|e| panic!("{e}\n{}", fe.output()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(13);
        while tokio::time::Instant::now() < deadline {
            cluster.describe(None).await.unwrap_or_else(|e| panic!("{e}\n{}", fe.output()));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert!(fe.wait_count("reauthenticated svc-app OAUTHBEARER", 2) >= 2, "{}", fe.output());
    let issued = rt.block_on(ep.issued_after(3));
    assert!(issued >= 3, "a fresh token for each re-authentication: {issued}");
}

/// A token the server finds expired (the provider claims it is still valid): the
/// server's RFC 7628 error challenge is acknowledged and the refusal reported.
#[test]
fn a_token_the_server_refuses_is_reported_with_its_reason() {
    #[derive(Debug)]
    struct Stale;
    impl ferrokafka_client::sasl::TokenProvider for Stale {
        fn token(&self) -> ferrokafka_client::sasl::TokenFuture<'_> {
            Box::pin(async {
                use base64::Engine as _;
                let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"sub":"alice","exp":1000}"#);
                Ok(ferrokafka_client::sasl::OAuthToken {
                    value: format!("eyJhbGciOiJub25lIn0.{claims}."),
                    expires_at: std::time::SystemTime::now() + Duration::from_secs(60),
                    principal: "alice".into(),
                    extensions: Default::default(),
                })
            })
        }
    }
    let fe = ferrokafka_tests::sasl_frontend::SaslFrontend::start(&[("alice", "-")], &["OAUTHBEARER"], 0);
    let cfg = ClientConfig::from_pairs([
        ("bootstrap.servers", fe.addr()),
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "OAUTHBEARER"),
    ])
    .unwrap();
    let err = runtime().block_on(Cluster::connect_with_token_provider(cfg, std::sync::Arc::new(Stale))).unwrap_err();
    match &err {
        ClientError::Authentication { mechanism: "OAUTHBEARER", reason, .. } => {
            assert!(reason.contains("invalid_token") && reason.contains("expired"), "{err}");
        }
        other => panic!("expected Authentication, got {other:?}"),
    }
}
