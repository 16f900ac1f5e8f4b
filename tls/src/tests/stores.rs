//! Every store format and key type, as written by keytool and openssl, through
//! `TlsConnector::from_keys` (which also makes ring load the key and checks it
//! against the certificate), and each way a store can be wrong.

use super::{fixture, s};
use super::{KEY_PASSWORD, STORE_PASSWORD};
use crate::key::{decrypt_pkcs8, pkcs12_kdf};
use crate::store::{self, Store};
use crate::{TlsConnector, TlsError};

fn connector(pairs: &[(&str, &str)]) -> Result<TlsConnector, TlsError> {
    let ca = s(&fixture().pki.ca_cert);
    let mut all = vec![("ssl.truststore.location", ca)];
    all.extend_from_slice(pairs);
    Ok(TlsConnector::from_keys("SSL", all)?.expect("SSL gives a connector"))
}

fn has_client_cert(c: &TlsConnector) -> bool {
    c.client_key.is_some()
}

#[test]
fn truststores_of_every_format() {
    let f = fixture();
    for (path, ty, pw) in [
        (&f.pki.ca_cert, "PEM", None),
        (&f.trust_jks, "JKS", None),
        (&f.trust_jks, "JKS", Some(STORE_PASSWORD)),
        (&f.trust_p12, "PKCS12", Some(STORE_PASSWORD)),
    ] {
        let store = Store::from_file(s(path), "ssl.truststore.location").unwrap();
        let certs = store::trusted_certs(&store, pw, "ssl.truststore.password").unwrap();
        assert_eq!(certs.len(), 1, "{ty}");
        let mut pairs = vec![("ssl.truststore.location", s(path)), ("ssl.truststore.type", ty)];
        if let Some(pw) = pw {
            pairs.push(("ssl.truststore.password", pw));
        }
        TlsConnector::from_keys("SSL", pairs).unwrap().unwrap();
    }
}

#[test]
fn truststore_password_errors() {
    let f = fixture();
    let jks = Store::from_file(s(&f.trust_jks), "ssl.truststore.location").unwrap();
    let e = store::trusted_certs(&jks, Some("wrong"), "ssl.truststore.password").unwrap_err();
    assert!(matches!(e, TlsError::WrongPassword { .. }), "{e}");
    let p12 = Store::from_file(s(&f.trust_p12), "ssl.truststore.location").unwrap();
    let e = store::trusted_certs(&p12, Some("wrong"), "ssl.truststore.password").unwrap_err();
    assert!(matches!(e, TlsError::WrongPassword { .. }), "{e}");
    let e = store::trusted_certs(&p12, None, "ssl.truststore.password").unwrap_err();
    assert!(matches!(e, TlsError::PasswordRequired { ref key, .. } if key == "ssl.truststore.password"), "{e}");
}

#[test]
fn keystores_of_every_format_and_key_type() {
    let f = fixture();
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "JKS RSA, separate key password",
            vec![
                ("ssl.keystore.location", s(&f.jks_rsa)),
                ("ssl.keystore.password", STORE_PASSWORD),
                ("ssl.key.password", KEY_PASSWORD),
            ],
        ),
        (
            "JKS EC from keytool, key password = store password",
            vec![
                ("ssl.keystore.location", s(&f.jks_ec)),
                ("ssl.keystore.password", STORE_PASSWORD),
                ("ssl.keystore.type", "jks"),
            ],
        ),
        (
            "PKCS12 EC from keytool",
            vec![
                ("ssl.keystore.location", s(&f.p12_keytool_ec)),
                ("ssl.keystore.password", STORE_PASSWORD),
                ("ssl.keystore.type", "PKCS12"),
            ],
        ),
        (
            "PKCS12 RSA from keytool",
            vec![("ssl.keystore.location", s(&f.p12_keytool_rsa)), ("ssl.keystore.password", STORE_PASSWORD)],
        ),
        (
            "PKCS12 RSA from openssl (AES-256, SHA-256 MAC)",
            vec![("ssl.keystore.location", s(&f.p12_openssl)), ("ssl.keystore.password", STORE_PASSWORD)],
        ),
        (
            "PKCS12 EC from openssl, legacy 3DES and SHA-1 MAC",
            vec![("ssl.keystore.location", s(&f.p12_openssl_legacy)), ("ssl.keystore.password", STORE_PASSWORD)],
        ),
        ("PEM keystore EC", vec![("ssl.keystore.location", s(&f.pem_keystore_ec)), ("ssl.keystore.type", "PEM")]),
        (
            "librdkafka PEM RSA, PBES2-encrypted",
            vec![
                ("ssl.key.location", s(&f.rsa_pbes2)),
                ("ssl.certificate.location", s(&f.rsa.chain)),
                ("ssl.key.password", KEY_PASSWORD),
            ],
        ),
        (
            "librdkafka PEM EC, PBE-SHA1-3DES-encrypted",
            vec![
                ("ssl.key.location", s(&f.ec_3des)),
                ("ssl.certificate.location", s(&f.ec.cert)),
                ("ssl.key.password", KEY_PASSWORD),
            ],
        ),
        (
            "librdkafka PEM RSA PKCS#1",
            vec![("ssl.key.location", s(&f.rsa_pkcs1)), ("ssl.certificate.location", s(&f.rsa.chain))],
        ),
        (
            "librdkafka PEM EC SEC1",
            vec![("ssl.key.location", s(&f.ec_sec1)), ("ssl.certificate.location", s(&f.ec.chain))],
        ),
    ];
    for (name, pairs) in cases {
        let c = connector(&pairs).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(has_client_cert(&c), "{name}");
    }
}

#[test]
fn inline_pem_keys() {
    let f = fixture();
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
    let (key, chain, ca) = (read(&f.rsa_pbes2), read(&f.rsa.chain), read(&f.pki.ca_cert));
    let c = TlsConnector::from_keys(
        "SASL_SSL",
        [
            ("ssl.truststore.certificates", ca.as_str()),
            ("ssl.keystore.key", key.as_str()),
            ("ssl.keystore.certificate.chain", chain.as_str()),
            ("ssl.key.password", KEY_PASSWORD),
            ("ssl.keystore.type", "PEM"),
            ("ssl.truststore.type", "PEM"),
        ],
    )
    .unwrap()
    .unwrap();
    assert!(has_client_cert(&c));
    let e = TlsConnector::from_keys(
        "SSL",
        [("ssl.truststore.certificates", ca.as_str()), ("ssl.keystore.key", key.as_str())],
    )
    .unwrap_err();
    assert!(matches!(e, TlsError::Config { ref key, .. } if key == "ssl.keystore.certificate.chain"), "{e}");
}

#[test]
fn wrong_and_missing_key_passwords() {
    let f = fixture();
    let e = connector(&[
        ("ssl.keystore.location", s(&f.jks_rsa)),
        ("ssl.keystore.password", STORE_PASSWORD),
        ("ssl.key.password", "wrong"),
    ])
    .unwrap_err();
    assert!(matches!(e, TlsError::WrongKeyPassword { ref entry, .. } if entry == "kt-rsa"), "{e}");
    // Without ssl.key.password the store password is tried, which is not this key's.
    let e =
        connector(&[("ssl.keystore.location", s(&f.jks_rsa)), ("ssl.keystore.password", STORE_PASSWORD)]).unwrap_err();
    assert!(matches!(e, TlsError::WrongKeyPassword { .. }), "{e}");
    let e = connector(&[("ssl.keystore.location", s(&f.jks_rsa)), ("ssl.keystore.password", "wrong")]).unwrap_err();
    assert!(matches!(e, TlsError::WrongPassword { .. }), "{e}");
    for key in [&f.rsa_pbes2, &f.ec_3des] {
        let cert = s(&f.rsa.cert);
        let e = connector(&[
            ("ssl.key.location", s(key)),
            ("ssl.certificate.location", cert),
            ("ssl.key.password", "nope"),
        ])
        .unwrap_err();
        assert!(matches!(e, TlsError::WrongKeyPassword { .. }), "{}: {e}", key.display());
        let e = connector(&[("ssl.key.location", s(key)), ("ssl.certificate.location", cert)]).unwrap_err();
        assert!(matches!(e, TlsError::PasswordRequired { .. }), "{e}");
    }
    for p12 in [&f.p12_openssl, &f.p12_openssl_legacy, &f.p12_keytool_ec] {
        let e = connector(&[("ssl.keystore.location", s(p12)), ("ssl.keystore.password", "wrong")]).unwrap_err();
        assert!(matches!(e, TlsError::WrongPassword { .. }), "{}: {e}", p12.display());
    }
}

#[test]
fn key_not_matching_its_certificate() {
    let f = fixture();
    let e = connector(&[("ssl.key.location", s(&f.rsa.key)), ("ssl.certificate.location", s(&f.ec.cert))]).unwrap_err();
    assert!(matches!(e, TlsError::KeyMismatch { .. }), "{e}");
}

#[test]
fn type_key_is_a_cross_check() {
    let f = fixture();
    let e = connector(&[
        ("ssl.keystore.location", s(&f.jks_ec)),
        ("ssl.keystore.password", STORE_PASSWORD),
        ("ssl.keystore.type", "PKCS12"),
    ])
    .unwrap_err();
    match &e {
        TlsError::TypeMismatch { configured, detected, type_key, .. } => {
            assert_eq!((configured.as_str(), *detected, type_key.as_str()), ("PKCS12", "JKS", "ssl.keystore.type"));
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("PKCS12") && e.to_string().contains("JKS"), "{e}");
    let e =
        TlsConnector::from_keys("SSL", [("ssl.truststore.location", s(&f.trust_p12)), ("ssl.truststore.type", "PEM")])
            .unwrap_err();
    assert!(matches!(e, TlsError::TypeMismatch { .. }), "{e}");
    let e =
        TlsConnector::from_keys("SSL", [("ssl.truststore.location", s(&f.trust_p12)), ("ssl.truststore.type", "BKS")])
            .unwrap_err();
    assert!(matches!(e, TlsError::Config { .. }), "{e}");
}

#[test]
fn corrupted_and_truncated_stores() {
    let f = fixture();
    let dir = &f.scratch;
    for (src, pw) in [(&f.jks_ec, STORE_PASSWORD), (&f.p12_keytool_ec, STORE_PASSWORD), (&f.pem_keystore_ec, "")] {
        let bytes = std::fs::read(src).unwrap();
        // (The last byte of a PEM file is its final newline: cutting it is harmless.)
        // (A PEM cut exactly between two sections is a valid, shorter PEM: cut inside.)
        for cut in [bytes.len() / 3 + 7, bytes.len() / 2 + 7, bytes.len() - 25, bytes.len() - 2] {
            let path = dir.join(format!("cut-{cut}-{}", src.file_name().unwrap().to_string_lossy()));
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let e = connector(&[("ssl.keystore.location", s(&path)), ("ssl.keystore.password", pw)]).unwrap_err();
            assert!(
                matches!(e, TlsError::Corrupt { .. } | TlsError::WrongPassword { .. }),
                "{} cut at {cut}: {e}",
                src.display()
            );
        }
        // One flipped byte in the middle: the integrity check notices (PEM has none).
        if pw.is_empty() {
            continue;
        }
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        let path = dir.join(format!("flip-{}", src.file_name().unwrap().to_string_lossy()));
        std::fs::write(&path, &flipped).unwrap();
        let e = connector(&[("ssl.keystore.location", s(&path)), ("ssl.keystore.password", pw)]).unwrap_err();
        assert!(matches!(e, TlsError::WrongPassword { .. } | TlsError::Corrupt { .. }), "{e}");
    }
    let garbage = dir.join("garbage.bin");
    std::fs::write(&garbage, b"\x00\x01 not a store").unwrap();
    let e = connector(&[("ssl.keystore.location", s(&garbage))]).unwrap_err();
    assert!(matches!(e, TlsError::UnknownFormat { .. }), "{e}");
    let e = connector(&[("ssl.keystore.location", "/nonexistent/ferrokafka.jks")]).unwrap_err();
    assert!(matches!(e, TlsError::Read { .. }) && e.to_string().contains("/nonexistent/ferrokafka.jks"), "{e}");
}

#[test]
fn truststores_without_trusted_entries_and_keystores_without_keys() {
    let f = fixture();
    let e = connector(&[("ssl.keystore.location", s(&f.trust_jks)), ("ssl.keystore.password", STORE_PASSWORD)])
        .unwrap_err();
    assert!(matches!(e, TlsError::NoKeyEntry { .. }), "{e}");
    let e = TlsConnector::from_keys("SSL", [("ssl.truststore.location", s(&f.rsa.key))]).unwrap_err();
    assert!(matches!(e, TlsError::NoCertificate { .. }), "{e}");
}

#[test]
fn secrets_never_appear_in_errors_or_debug() {
    let f = fixture();
    let secret = "Very-Secret-Password-42";
    let key_pem = std::fs::read_to_string(&f.rsa.key).unwrap();
    let attempts: Vec<Vec<(&str, &str)>> = vec![
        vec![("ssl.keystore.location", s(&f.jks_rsa)), ("ssl.keystore.password", secret)],
        vec![("ssl.keystore.location", s(&f.p12_openssl)), ("ssl.keystore.password", secret)],
        vec![
            ("ssl.key.location", s(&f.rsa_pbes2)),
            ("ssl.certificate.location", s(&f.rsa.cert)),
            ("ssl.key.password", secret),
        ],
        vec![("ssl.keystore.key", key_pem.as_str()), ("ssl.keystore.certificate.chain", "garbage")],
        vec![("ssl.truststore.location", s(&f.trust_jks)), ("ssl.truststore.password", secret)],
    ];
    let body: String = key_pem.lines().nth(1).unwrap().to_owned();
    for pairs in attempts {
        let e = connector(&pairs).unwrap_err();
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(!text.contains(secret) && !text.contains(&body), "{text}");
        }
    }
    let ok =
        connector(&[("ssl.keystore.location", s(&f.p12_openssl)), ("ssl.keystore.password", STORE_PASSWORD)]).unwrap();
    let debug = format!("{ok:?}");
    assert!(!debug.contains(STORE_PASSWORD) && debug.contains("client_cert"), "{debug}");
}

/// The PKCS#12 KDF against OpenSSL's own (`openssl kdf ... PKCS12KDF`), and the
/// legacy 3DES decryption against a key openssl encrypted.
#[test]
fn pkcs12_kdf_matches_openssl() {
    let salt = [1u8, 2, 3, 4, 5, 6, 7, 8];
    let key = pkcs12_kdf("secret", &salt, 1, 2048, 24).unwrap();
    let iv = pkcs12_kdf("secret", &salt, 2, 2048, 8).unwrap();
    assert_eq!(hex(&key), "46b7220edfa6b4bcfe35292f7f4888c97ff731e06932a6a2");
    assert_eq!(hex(&iv), "38f3a9b371c53b70");
    let out = std::process::Command::new("openssl")
        // OpenSSL's KDF takes the password already as a NUL-terminated BMPString.
        .args(["kdf", "-keylen", "24", "-kdfopt", "digest:SHA1", "-kdfopt", "hexpass:0073006500630072006500740000"])
        .args(["-kdfopt", "hexsalt:0102030405060708", "-kdfopt", "iter:2048", "-kdfopt", "id:1", "PKCS12KDF"])
        .output()
        .expect("openssl kdf");
    let text = String::from_utf8_lossy(&out.stdout).trim().replace(':', "").to_ascii_lowercase();
    assert_eq!(text, hex(&key));
}

#[test]
fn encrypted_pkcs8_decrypts_to_the_plain_key() {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::PrivatePkcs8KeyDer;
    let f = fixture();
    let plain = PrivatePkcs8KeyDer::from_pem_file(&f.ec.key).unwrap();
    for file in [&f.ec_3des, &f.rsa_pbes2] {
        let text = std::fs::read_to_string(file).unwrap().replace("ENCRYPTED PRIVATE KEY", "PRIVATE KEY");
        let der = PrivatePkcs8KeyDer::from_pem_slice(text.as_bytes()).unwrap();
        let decrypted = decrypt_pkcs8(der.secret_pkcs8_der(), KEY_PASSWORD).unwrap();
        if file == &f.ec_3des {
            assert_eq!(decrypted, plain.secret_pkcs8_der());
        }
        assert!(decrypt_pkcs8(der.secret_pkcs8_der(), "wrong").is_err());
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// keytool's EC keys have no public key in their PKCS#8: ring refuses them as
/// they are, and accepts them once `normalize` completed them.
#[test]
fn java_ec_keys_are_completed_for_ring() {
    use rustls_pki_types::PrivateKeyDer;
    let f = fixture();
    let entries = crate::store::jks::parse(&std::fs::read(&f.jks_ec).unwrap(), None).unwrap();
    let protected = entries
        .into_iter()
        .find_map(|e| match e {
            crate::store::jks::Entry::Key { protected, .. } => Some(protected),
            crate::store::jks::Entry::Trusted { .. } => None,
        })
        .unwrap();
    let raw = crate::store::jks::recover_key(&protected, STORE_PASSWORD).unwrap();
    let provider = rustls::crypto::ring::default_provider();
    let as_is = PrivateKeyDer::Pkcs8(raw.clone().into());
    assert!(provider.key_provider.load_private_key(as_is.clone_key()).is_err(), "ring needs the public key");
    let completed = crate::key::normalize(as_is).unwrap();
    assert!(completed.secret_der().len() > raw.len());
    provider.key_provider.load_private_key(completed).unwrap();
}
