//! Key handling: protocols, versions, suites, host-name checking, conflicts.

use super::{fixture, s};
use crate::{TlsConnector, TlsError};

fn build(pairs: &[(&str, &str)]) -> Result<TlsConnector, TlsError> {
    let ca = s(&fixture().pki.ca_cert);
    let mut all = vec![("ssl.truststore.location", ca)];
    all.extend_from_slice(pairs);
    Ok(TlsConnector::from_keys("SSL", all)?.expect("SSL gives a connector"))
}

fn config_key(e: &TlsError) -> &str {
    match e {
        TlsError::Config { key, .. } => key,
        other => panic!("expected a Config error, got {other}"),
    }
}

#[test]
fn security_protocols() {
    assert!(TlsConnector::from_keys("PLAINTEXT", [("ssl.keystore.location", "/x")]).unwrap().is_none());
    assert!(TlsConnector::from_keys("sasl_plaintext", [("a", "b")]).unwrap().is_none());
    assert!(TlsConnector::from_keys("ssl", [("ssl.truststore.location", s(&fixture().pki.ca_cert))])
        .unwrap()
        .is_some());
    let e = TlsConnector::from_keys("TLS", Vec::<(&str, &str)>::new()).unwrap_err();
    assert_eq!(config_key(&e), "security.protocol");
}

#[test]
fn protocol_versions() {
    let versions = |pairs: &[(&str, &str)]| build(pairs).map(|c| c.settings.versions.clone());
    assert_eq!(versions(&[]).unwrap(), "TLSv1.3,TLSv1.2");
    assert_eq!(versions(&[("ssl.protocol", "TLSv1.2")]).unwrap(), "TLSv1.2");
    assert_eq!(versions(&[("ssl.protocol", "TLS")]).unwrap(), "TLSv1.3,TLSv1.2");
    assert_eq!(versions(&[("ssl.enabled.protocols", "TLSv1.3")]).unwrap(), "TLSv1.3");
    assert_eq!(
        versions(&[("ssl.enabled.protocols", "TLSv1.2, TLSv1.3"), ("ssl.protocol", "TLSv1.2")]).unwrap(),
        "TLSv1.2,TLSv1.3"
    );
    for bad in ["TLSv1.1", "TLSv1", "SSLv3", "TLSv1.4"] {
        let e = versions(&[("ssl.enabled.protocols", bad)]).unwrap_err();
        assert_eq!(config_key(&e), "ssl.enabled.protocols");
        assert!(e.to_string().contains(bad), "{e}");
    }
    let e = versions(&[("ssl.protocol", "SSL")]).unwrap_err();
    assert_eq!(config_key(&e), "ssl.protocol");
}

#[test]
fn cipher_suites_by_java_and_openssl_names() {
    let suites = |v: &str| build(&[("ssl.cipher.suites", v)]).map(|c| c.config.crypto_provider().cipher_suites.len());
    assert_eq!(suites("TLS_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384").unwrap(), 2);
    assert_eq!(suites("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305").unwrap(), 2);
    assert_eq!(suites("TLS_AES_256_GCM_SHA384, TLS_EMPTY_RENEGOTIATION_INFO_SCSV").unwrap(), 1);
    let e = suites("TLS_RSA_WITH_AES_128_CBC_SHA").unwrap_err();
    assert_eq!(config_key(&e), "ssl.cipher.suites");
    assert!(e.to_string().contains("TLS_RSA_WITH_AES_128_CBC_SHA"), "{e}");
    // Only TLS 1.2 suites with only TLS 1.3 enabled: nothing usable.
    let e =
        build(&[("ssl.cipher.suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"), ("ssl.enabled.protocols", "TLSv1.3")])
            .unwrap_err();
    assert_eq!(config_key(&e), "ssl.cipher.suites");
}

#[test]
fn endpoint_identification_and_verification() {
    let c = build(&[]).unwrap();
    assert!(c.settings.hostname_verification && c.settings.certificate_verification);
    for off in ["", "none", "NONE"] {
        assert!(!build(&[("ssl.endpoint.identification.algorithm", off)]).unwrap().settings.hostname_verification);
    }
    assert!(build(&[("ssl.endpoint.identification.algorithm", "HTTPS")]).unwrap().settings.hostname_verification);
    let e = build(&[("ssl.endpoint.identification.algorithm", "ldap")]).unwrap_err();
    assert_eq!(config_key(&e), "ssl.endpoint.identification.algorithm");
    let c = TlsConnector::from_keys("SSL", [("enable.ssl.certificate.verification", "false")]).unwrap().unwrap();
    assert!(!c.settings.certificate_verification);
    let e = build(&[("enable.ssl.certificate.verification", "maybe")]).unwrap_err();
    assert_eq!(config_key(&e), "enable.ssl.certificate.verification");
}

#[test]
fn conflicting_and_unknown_keys() {
    let f = fixture();
    let e = build(&[("ssl.ca.location", s(&f.pki.ca_cert))]).unwrap_err();
    assert_eq!(config_key(&e), "ssl.ca.location");
    let e = build(&[("ssl.keystore.location", s(&f.jks_ec)), ("ssl.key.location", s(&f.ec.key))]).unwrap_err();
    assert!(e.to_string().contains("conflicts"), "{e}");
    let e = build(&[("ssl.engine.location", "/x")]).unwrap_err();
    assert_eq!(config_key(&e), "ssl.engine.location");
    // JSSE algorithm keys are accepted and ignored.
    build(&[("ssl.keymanager.algorithm", "SunX509"), ("ssl.trustmanager.algorithm", "PKIX")]).unwrap();
    // librdkafka's CA location, file and directory.
    TlsConnector::from_keys("SSL", [("ssl.ca.location", s(&f.pki.ca_cert))]).unwrap().unwrap();
    TlsConnector::from_keys("SSL", [("ssl.ca.location", s(&f.pki.dir))]).unwrap().unwrap();
    // Empty values count as absent.
    build(&[("ssl.keystore.location", ""), ("ssl.cipher.suites", " ")]).unwrap();
}
