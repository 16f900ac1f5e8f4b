//! PKCS#12 stores through p12-keystore (pure Rust: RustCrypto ciphers, MAC
//! checked, KDF iterations bounded).

use p12_keystore::error::Error as P12Error;
use p12_keystore::{KeyStore, Pkcs12Archive, Pkcs12ImportPolicy};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::{KeyEntry, Store};
use crate::error::TlsError;

/// Trust anchors: certificate bags with Java's trusted attribute (keytool's
/// trust-only stores) or without a key (`openssl pkcs12 -nokeys`).
pub(crate) fn trusted(
    store: &Store,
    password: Option<&str>,
    password_key: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let archive = Pkcs12Archive::from_pkcs12(&store.bytes, password.unwrap_or(""))
        .map_err(|e| p12_error(store, e, password.is_some(), password_key))?;
    Ok(archive
        .certs
        .iter()
        .filter(|c| c.trusted || c.local_key_id.is_none())
        .map(|c| CertificateDer::from(c.cert.as_der().to_vec()))
        .collect())
}

/// The first private key with its chain. PKCS#12 protects keys with the store
/// password (keytool and openssl write them so).
pub(crate) fn key(store: &Store, password: Option<&str>) -> Result<KeyEntry, TlsError> {
    let ks = KeyStore::from_pkcs12(&store.bytes, password.unwrap_or(""), Pkcs12ImportPolicy::Strict)
        .map_err(|e| p12_error(store, e, password.is_some(), "ssl.keystore.password"))?;
    let Some((alias, chain)) = ks.private_key_chain() else {
        return Err(TlsError::NoKeyEntry { store: store.name.clone() });
    };
    Ok(KeyEntry {
        entry: alias.to_owned(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec())),
        chain: chain.certs().iter().map(|c| CertificateDer::from(c.as_der().to_vec())).collect(),
    })
}

fn p12_error(store: &Store, e: P12Error, had_password: bool, password_key: &str) -> TlsError {
    let name = store.name.clone();
    match e {
        P12Error::MacError(_) | P12Error::UnpadError | P12Error::Pkcs5Error(_) if !had_password => {
            TlsError::PasswordRequired { store: name, what: "the PKCS#12 store".into(), key: password_key.into() }
        }
        P12Error::MacError(_) => TlsError::WrongPassword { store: name, what: "PKCS#12 MAC check".into() },
        P12Error::UnpadError | P12Error::Pkcs5Error(_) => {
            TlsError::WrongPassword { store: name, what: "PKCS#12 decryption".into() }
        }
        P12Error::UnsupportedEncryptionScheme
        | P12Error::UnsupportedMacAlgorithm
        | P12Error::UnsupportedContentType => TlsError::UnknownFormat { store: name, reason: format!("PKCS#12: {e}") },
        other => TlsError::corrupt(&name, format!("PKCS#12: {other}")),
    }
}
