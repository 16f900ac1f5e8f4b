//! Truststores and keystores: JKS, PKCS#12 and PEM, detected by content as the
//! Java client does, with the `ssl.*.type` key as a cross-check.

pub(crate) mod jks;
mod pem;
mod pkcs12;

use std::sync::Arc;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::TlsError;
use crate::key::{self, KeyProblem};

/// Stores larger than this are refused before reading (real ones are a few KiB;
/// a system CA bundle is about 200 KiB).
const MAX_STORE_BYTES: u64 = 16 * 1024 * 1024;

/// The three store formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreType {
    /// Java KeyStore.
    Jks,
    /// PKCS#12 (PFX).
    Pkcs12,
    /// PEM text.
    Pem,
}

impl StoreType {
    /// The name the type keys use.
    pub(crate) fn name(self) -> &'static str {
        match self {
            StoreType::Jks => "JKS",
            StoreType::Pkcs12 => "PKCS12",
            StoreType::Pem => "PEM",
        }
    }

    /// Parses `ssl.keystore.type` / `ssl.truststore.type` (any case).
    pub(crate) fn parse(key: &str, value: &str) -> Result<StoreType, TlsError> {
        match value.trim().to_ascii_uppercase().as_str() {
            "JKS" => Ok(StoreType::Jks),
            "PKCS12" | "PKCS#12" | "P12" | "PFX" => Ok(StoreType::Pkcs12),
            "PEM" => Ok(StoreType::Pem),
            other => Err(TlsError::config(key, format!("store type {other:?} is not supported (JKS, PKCS12, PEM)"))),
        }
    }

    /// What the bytes look like, or why they look like nothing we read.
    pub(crate) fn detect(bytes: &[u8]) -> Result<StoreType, String> {
        if bytes.starts_with(&jks::MAGIC) {
            return Ok(StoreType::Jks);
        }
        if bytes.starts_with(&jks::JCEKS_MAGIC) {
            return Err("JCEKS stores are not supported (convert to PKCS12 with keytool -importkeystore)".into());
        }
        if bytes.first() == Some(&0x30) {
            return Ok(StoreType::Pkcs12);
        }
        if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
            return Ok(StoreType::Pem);
        }
        if bytes.is_empty() {
            return Err("the store is empty".into());
        }
        Err("neither JKS (FEEDFEED), PKCS#12 (DER) nor PEM (-----BEGIN)".into())
    }
}

/// A store's bytes, how to name it in errors, and its configured type.
pub(crate) struct Store {
    /// "path (key)" or "key (inline PEM)": used in every error.
    pub(crate) name: String,
    bytes: Vec<u8>,
    /// The key giving the configured type, and the type, if configured.
    configured: Option<(&'static str, StoreType)>,
}

impl Store {
    /// Reads a store file named by `location_key`.
    pub(crate) fn from_file(path: &str, location_key: &str) -> Result<Store, TlsError> {
        let name = format!("{path} ({location_key})");
        let read = |e: std::io::Error| TlsError::Read { store: name.clone(), source: Arc::new(e) };
        let meta = std::fs::metadata(path).map_err(read)?;
        if meta.is_dir() {
            return Err(TlsError::config(location_key, format!("{path} is a directory, not a store file")));
        }
        if meta.len() > MAX_STORE_BYTES {
            return Err(TlsError::UnknownFormat {
                store: name,
                reason: format!("{} bytes is larger than any store ({MAX_STORE_BYTES} bytes at most)", meta.len()),
            });
        }
        let bytes = std::fs::read(path).map_err(read)?;
        Ok(Store { name, bytes, configured: None })
    }

    /// Inline PEM given in a key's value.
    pub(crate) fn inline(key: &str, pem: &str) -> Store {
        Store { name: format!("{key} (inline PEM)"), bytes: pem.as_bytes().to_vec(), configured: None }
    }

    /// Sets the type the configuration announces.
    pub(crate) fn with_type(mut self, configured: Option<(&'static str, StoreType)>) -> Store {
        self.configured = configured;
        self
    }

    /// The detected type, checked against the configured one.
    fn kind(&self) -> Result<StoreType, TlsError> {
        let detected = StoreType::detect(&self.bytes)
            .map_err(|reason| TlsError::UnknownFormat { store: self.name.clone(), reason })?;
        match self.configured {
            Some((type_key, configured)) if configured != detected => Err(TlsError::TypeMismatch {
                store: self.name.clone(),
                type_key: type_key.to_owned(),
                configured: configured.name().to_owned(),
                detected: detected.name(),
            }),
            _ => Ok(detected),
        }
    }
}

/// A private key with its certificate chain (leaf first).
pub(crate) struct KeyEntry {
    /// The alias or PEM section, for errors.
    pub(crate) entry: String,
    /// The key, normalised for ring.
    pub(crate) key: PrivateKeyDer<'static>,
    /// The chain, leaf first.
    pub(crate) chain: Vec<CertificateDer<'static>>,
}

/// The trust anchors of a truststore: trusted-certificate entries (JKS, PKCS#12)
/// or every certificate (PEM). `password_key` names the password's key in errors.
pub(crate) fn trusted_certs(
    store: &Store,
    password: Option<&str>,
    password_key: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = match store.kind()? {
        StoreType::Jks => {
            let entries = jks::parse(&store.bytes, password).map_err(|p| jks_error(store, p))?;
            entries
                .into_iter()
                .filter_map(|e| match e {
                    jks::Entry::Trusted { cert, .. } => Some(CertificateDer::from(cert)),
                    jks::Entry::Key { .. } => None,
                })
                .collect()
        }
        StoreType::Pkcs12 => pkcs12::trusted(store, password, password_key)?,
        StoreType::Pem => pem::parse(store)?.certs,
    };
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { store: store.name.clone(), what: "trusted certificate entry".into() });
    }
    Ok(certs)
}

/// The first private key entry of a keystore. `key_password` falls back to
/// `store_password`, as in the Java client.
pub(crate) fn key_entry(
    store: &Store,
    store_password: Option<&str>,
    key_password: Option<&str>,
) -> Result<KeyEntry, TlsError> {
    let key_password = key_password.or(store_password);
    let mut entry = match store.kind()? {
        StoreType::Jks => jks_key(store, store_password, key_password)?,
        StoreType::Pkcs12 => pkcs12::key(store, store_password.or(key_password))?,
        StoreType::Pem => pem::key(store, key_password)?,
    };
    entry.key = key::normalize(entry.key).map_err(|p| key_error(store, &entry.entry, p))?;
    if entry.chain.is_empty() {
        return Err(TlsError::NoCertificate {
            store: store.name.clone(),
            what: format!("certificate chain for entry {:?}", entry.entry),
        });
    }
    Ok(entry)
}

/// A key from one PEM store and its chain from another (librdkafka's
/// `ssl.key.location` + `ssl.certificate.location`, Java's `ssl.keystore.key` +
/// `ssl.keystore.certificate.chain`).
pub(crate) fn split_pem_entry(
    key_store: &Store,
    chain_store: &Store,
    password: Option<&str>,
) -> Result<KeyEntry, TlsError> {
    if key_store.kind()? != StoreType::Pem {
        return Err(TlsError::UnknownFormat {
            store: key_store.name.clone(),
            reason: "expected a PEM private key".into(),
        });
    }
    if chain_store.kind()? != StoreType::Pem {
        return Err(TlsError::UnknownFormat {
            store: chain_store.name.clone(),
            reason: "expected PEM certificates".into(),
        });
    }
    let mut content = pem::parse(key_store)?;
    let (entry, key) = pem::decode_key(key_store, &mut content, password)?;
    let key = key::normalize(key).map_err(|p| key_error(key_store, &entry, p))?;
    let chain = pem::parse(chain_store)?.certs;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { store: chain_store.name.clone(), what: "certificate".into() });
    }
    Ok(KeyEntry { entry, key, chain })
}

fn jks_key(store: &Store, store_password: Option<&str>, key_password: Option<&str>) -> Result<KeyEntry, TlsError> {
    let entries = jks::parse(&store.bytes, store_password).map_err(|p| jks_error(store, p))?;
    let Some((alias, protected, chain)) = entries.into_iter().find_map(|e| match e {
        jks::Entry::Key { alias, protected, chain } => Some((alias, protected, chain)),
        jks::Entry::Trusted { .. } => None,
    }) else {
        return Err(TlsError::NoKeyEntry { store: store.name.clone() });
    };
    let password = key_password.ok_or_else(|| TlsError::PasswordRequired {
        store: store.name.clone(),
        what: format!("key entry {alias:?}"),
        key: "ssl.key.password".into(),
    })?;
    let pkcs8 = jks::recover_key(&protected, password).map_err(|r| match r {
        jks::KeyRecovery::WrongPassword => TlsError::WrongKeyPassword {
            store: store.name.clone(),
            entry: alias.clone(),
            what: "JKS key check digest".into(),
        },
        jks::KeyRecovery::Malformed(reason) => {
            TlsError::UnsupportedKey { store: store.name.clone(), entry: alias.clone(), reason }
        }
    })?;
    Ok(KeyEntry {
        entry: alias,
        key: PrivateKeyDer::Pkcs8(pkcs8.into()),
        chain: chain.into_iter().map(CertificateDer::from).collect(),
    })
}

fn jks_error(store: &Store, p: jks::JksProblem) -> TlsError {
    match p {
        jks::JksProblem::Corrupt(reason) => TlsError::corrupt(&store.name, reason),
        jks::JksProblem::Integrity => {
            TlsError::WrongPassword { store: store.name.clone(), what: "JKS integrity check".into() }
        }
        jks::JksProblem::Unsupported(reason) => TlsError::UnknownFormat { store: store.name.clone(), reason },
    }
}

/// Turns a key problem into the store error naming the entry.
pub(crate) fn key_error(store: &Store, entry: &str, p: KeyProblem) -> TlsError {
    match p {
        KeyProblem::WrongPassword(what) => {
            TlsError::WrongKeyPassword { store: store.name.clone(), entry: entry.to_owned(), what }
        }
        KeyProblem::Malformed(reason) => TlsError::corrupt(&store.name, format!("entry {entry:?}: {reason}")),
        KeyProblem::Unsupported(reason) => {
            TlsError::UnsupportedKey { store: store.name.clone(), entry: entry.to_owned(), reason }
        }
    }
}

#[cfg(test)]
pub(crate) fn store_from_bytes(name: &str, bytes: Vec<u8>) -> Store {
    Store { name: name.to_owned(), bytes, configured: None }
}
