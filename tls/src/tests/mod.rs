//! Unit tests. Stores are written by openssl and keytool once per test binary
//! (see [`fixture`]); nothing is skipped if a tool is missing: the tests fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config;
mod fuzz;
mod stores;

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::testgen::{KeyType, Leaf, Pki, KEY_PASSWORD, STORE_PASSWORD};

/// Every store the unit tests read.
pub(crate) struct Fixture {
    pub(crate) pki: Pki,
    pub(crate) rsa: Leaf,
    pub(crate) ec: Leaf,
    pub(crate) trust_jks: PathBuf,
    pub(crate) trust_p12: PathBuf,
    pub(crate) jks_rsa: PathBuf,
    pub(crate) jks_ec: PathBuf,
    pub(crate) p12_keytool_ec: PathBuf,
    pub(crate) p12_keytool_rsa: PathBuf,
    pub(crate) p12_openssl: PathBuf,
    pub(crate) p12_openssl_legacy: PathBuf,
    pub(crate) pem_keystore_ec: PathBuf,
    pub(crate) rsa_pbes2: PathBuf,
    pub(crate) ec_3des: PathBuf,
    pub(crate) rsa_pkcs1: PathBuf,
    pub(crate) ec_sec1: PathBuf,
}

/// Generates the stores once; the temporary directories of earlier runs are
/// removed first (statics are never dropped).
pub(crate) fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        Pki::remove_stale("unit");
        let pki = Pki::new("unit").expect("CA");
        let sans = "IP:127.0.0.1,DNS:localhost";
        let rsa = pki.leaf("client-rsa", KeyType::Rsa, sans).expect("rsa leaf");
        let ec = pki.leaf("client-ec", KeyType::Ec, sans).expect("ec leaf");
        Fixture {
            trust_jks: pki.truststore("JKS", "trust.jks").expect("jks truststore"),
            trust_p12: pki.truststore("PKCS12", "trust.p12").expect("p12 truststore"),
            jks_rsa: pki.keytool_keystore("kt-rsa", KeyType::Rsa, "JKS", KEY_PASSWORD, sans).expect("jks rsa"),
            jks_ec: pki.keytool_keystore("kt-ec", KeyType::Ec, "JKS", STORE_PASSWORD, sans).expect("jks ec"),
            p12_keytool_ec: pki.keytool_keystore("kt-ec", KeyType::Ec, "PKCS12", STORE_PASSWORD, sans).expect("p12 ec"),
            p12_keytool_rsa: pki.keytool_keystore("kt-rsa", KeyType::Rsa, "PKCS12", STORE_PASSWORD, sans).expect("p12"),
            p12_openssl: pki.openssl_pkcs12(&rsa, STORE_PASSWORD, false, "openssl.p12").expect("openssl p12"),
            p12_openssl_legacy: pki.openssl_pkcs12(&ec, STORE_PASSWORD, true, "legacy.p12").expect("legacy p12"),
            pem_keystore_ec: pki.pem_keystore(&ec, "keystore-ec.pem").expect("pem keystore"),
            rsa_pbes2: pki.encrypted_key(&rsa, true, KEY_PASSWORD, "rsa-pbes2.pem").expect("pbes2"),
            ec_3des: pki.encrypted_key(&ec, false, KEY_PASSWORD, "ec-3des.pem").expect("3des"),
            rsa_pkcs1: pki.traditional_key(&rsa, "rsa-pkcs1.pem").expect("pkcs1"),
            ec_sec1: pki.traditional_key(&ec, "ec-sec1.pem").expect("sec1"),
            rsa,
            ec,
            pki,
        }
    })
}

/// `path` as a `&str`.
pub(crate) fn s(path: &std::path::Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}
