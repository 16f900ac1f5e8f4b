//! Unit tests over stores written by openssl and keytool, committed in
//! `tls/tests/fixtures/` (see [`fixture`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config;
mod fuzz;
mod stores;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The store password of every fixture store.
pub(crate) const STORE_PASSWORD: &str = "store-secret-1";
/// The key password where a store allows a separate one (JKS, encrypted PEM).
pub(crate) const KEY_PASSWORD: &str = "key-secret-2";

/// A leaf: PKCS#8 key, certificate, chain (leaf + CA).
pub(crate) struct Leaf {
    pub(crate) key: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) chain: PathBuf,
}

/// The CA and the directory of the fixtures.
pub(crate) struct Pki {
    pub(crate) dir: PathBuf,
    pub(crate) ca_cert: PathBuf,
}

/// Every store the unit tests read, and a scratch directory for the ones they damage.
pub(crate) struct Fixture {
    pub(crate) pki: Pki,
    pub(crate) scratch: PathBuf,
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

/// The committed stores in `tls/tests/fixtures/`, written by openssl and keytool
/// (`scripts/tls-fixtures.sh` regenerates them; the tests never run the tools).
pub(crate) fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let at = |file: &str| {
            let p = dir.join(file);
            assert!(p.is_file(), "fixture {} is missing: run scripts/tls-fixtures.sh", p.display());
            p
        };
        let leaf = |name: &str| Leaf {
            key: at(&format!("{name}.key")),
            cert: at(&format!("{name}.pem")),
            chain: at(&format!("{name}-chain.pem")),
        };
        let scratch = std::env::temp_dir().join(format!("ferrokafka-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&scratch).expect("scratch directory");
        Fixture {
            rsa: leaf("client-rsa"),
            ec: leaf("client-ec"),
            trust_jks: at("trust.jks"),
            trust_p12: at("trust.p12"),
            jks_rsa: at("kt-rsa.jks"),
            jks_ec: at("kt-ec.jks"),
            p12_keytool_ec: at("kt-ec.p12"),
            p12_keytool_rsa: at("kt-rsa.p12"),
            p12_openssl: at("openssl.p12"),
            p12_openssl_legacy: at("legacy.p12"),
            pem_keystore_ec: at("keystore-ec.pem"),
            rsa_pbes2: at("rsa-pbes2.pem"),
            ec_3des: at("ec-3des.pem"),
            rsa_pkcs1: at("rsa-pkcs1.pem"),
            ec_sec1: at("ec-sec1.pem"),
            pki: Pki { ca_cert: at("ca.pem"), dir: dir.clone() },
            scratch,
        }
    })
}

/// `path` as a `&str`.
pub(crate) fn s(path: &std::path::Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}
