//! SASL configuration: both spellings, refusals, redaction.

use super::*;

fn cfg(pairs: &[(&str, &str)]) -> std::result::Result<SaslConfig, ConfigError> {
    SaslConfig::from_keys(pairs.iter().copied())
}

#[test]
fn java_and_librdkafka_spellings_agree() {
    let java = cfg(&[
        ("sasl.mechanism", "SCRAM-SHA-512"),
        (
            "sasl.jaas.config",
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="s3cret";"#,
        ),
    ])
    .unwrap();
    let rdkafka =
        cfg(&[("sasl.mechanisms", "SCRAM-SHA-512"), ("sasl.username", "alice"), ("sasl.password", "s3cret")]).unwrap();
    for c in [&java, &rdkafka] {
        assert_eq!(c.mechanism(), Mechanism::Scram(ScramHash::Sha512));
        assert_eq!((c.user.as_str(), c.password.as_str()), ("alice", "s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"), "{c:?}");
    }
    let plain = cfg(&[
        ("sasl.mechanism", "PLAIN"),
        ("sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"$ConnectionString\" password=\"Endpoint=sb://x/;SharedAccessKey=k\";"),
    ])
    .unwrap();
    assert_eq!(plain.user, "$ConnectionString", "Event Hubs' PLAIN user");
    let oauth = cfg(&[("sasl.mechanism", "OAUTHBEARER"), ("sasl.oauthbearer.config", "principal=svc")]).unwrap();
    assert!(matches!(&oauth.tokens, Some(TokenSource::Unsecured(j)) if j.principal == "svc"));
    let oauth_jaas = cfg(&[
        ("sasl.mechanism", "OAUTHBEARER"),
        ("sasl.jaas.config", "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"svc\";"),
    ])
    .unwrap();
    assert_eq!(oauth_jaas.user, "svc");
    let bare = cfg(&[("sasl.mechanism", "OAUTHBEARER")]).unwrap();
    assert!(bare.lacks_tokens(), "a token provider must be given to the cluster");
}

#[test]
fn refusals_name_the_key_and_hide_secrets() {
    let e = cfg(&[]).unwrap_err().to_string();
    assert!(e.contains("GSSAPI") && e.contains("Kerberos"), "{e}");
    let e = cfg(&[("sasl.mechanism", "GSSAPI")]).unwrap_err().to_string();
    assert!(e.contains("Kerberos C libraries"), "{e}");
    let e = cfg(&[("sasl.mechanism", "SCRAM-SHA-1")]).unwrap_err().to_string();
    assert!(e.contains("SCRAM-SHA-256"), "{e}");
    let e = cfg(&[("sasl.mechanism", "PLAIN"), ("sasl.mechanisms", "SCRAM-SHA-256")]).unwrap_err();
    assert!(matches!(e, ConfigError::Conflict { .. }), "{e}");
    assert_eq!(cfg(&[("sasl.mechanism", "PLAIN"), ("sasl.password", "p")]).unwrap_err(), missing("sasl.username"));
    assert_eq!(cfg(&[("sasl.mechanism", "PLAIN"), ("sasl.username", "u")]).unwrap_err(), missing("sasl.password"));
    let e = cfg(&[
        ("sasl.mechanism", "SCRAM-SHA-256"),
        (
            "sasl.jaas.config",
            "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"hunter2\";",
        ),
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("ScramLoginModule") && !e.contains("hunter2"), "{e}");
    let e = cfg(&[("sasl.mechanism", "PLAIN"), ("sasl.jaas.config", "PlainLoginModule required password=\"hunter2\"")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("must end with ;") && !e.contains("hunter2"), "{e}");
    let e = cfg(&[("sasl.mechanism", "OAUTHBEARER"), ("sasl.oauthbearer.method", "oidc")]).unwrap_err();
    assert_eq!(e, missing("sasl.oauthbearer.token.endpoint.url"));
    let e = cfg(&[
        ("sasl.mechanism", "OAUTHBEARER"),
        ("sasl.oauthbearer.method", "oidc"),
        ("sasl.oauthbearer.token.endpoint.url", "ftp://x"),
    ])
    .unwrap_err()
    .to_string();
    assert!(e.contains("https://"), "{e}");
}

#[test]
fn oidc_settings_from_both_spellings() {
    let rd = cfg(&[
        ("sasl.mechanisms", "OAUTHBEARER"),
        ("sasl.oauthbearer.method", "oidc"),
        ("sasl.oauthbearer.token.endpoint.url", "https://idp.example/token"),
        ("sasl.oauthbearer.client.id", "app"),
        ("sasl.oauthbearer.client.secret", "s3cr3t-x"),
        ("sasl.oauthbearer.scope", "kafka"),
        ("sasl.oauthbearer.extensions", "logicalCluster=lkc-1,identityPoolId=pool-2"),
    ])
    .unwrap();
    let java = cfg(&[
        ("sasl.mechanism", "OAUTHBEARER"),
        ("sasl.oauthbearer.token.endpoint.url", "https://idp.example/token"),
        ("sasl.login.callback.handler.class", "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler"),
        ("sasl.jaas.config", "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId=\"app\" clientSecret=\"s3cr3t-x\" scope=\"kafka\" extension_logicalCluster=\"lkc-1\" extension_identityPoolId=\"pool-2\";"),
    ])
    .unwrap();
    for c in [&rd, &java] {
        let o = c.oidc().unwrap();
        assert_eq!(
            (o.client_id.as_str(), o.client_secret.as_str(), o.scope.as_deref()),
            ("app", "s3cr3t-x", Some("kafka"))
        );
        assert_eq!(o.extensions.len(), 2);
        assert!(!format!("{c:?} {o:?}").contains("s3cr3t-x"));
    }
    let no_secret = cfg(&[
        ("sasl.mechanism", "OAUTHBEARER"),
        ("sasl.oauthbearer.method", "oidc"),
        ("sasl.oauthbearer.token.endpoint.url", "http://x/t"),
        ("sasl.oauthbearer.client.id", "a"),
    ]);
    assert_eq!(no_secret.unwrap_err(), missing("sasl.oauthbearer.client.secret"));
}
