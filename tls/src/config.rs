//! Building a [`TlsConnector`] from the `ssl.*` keys.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;

use crate::connector::{Settings, TlsConnector};
use crate::error::TlsError;
use crate::store::{self, KeyEntry, Store, StoreType};
use crate::suites;
use crate::verify::{ClientCert, NoHostnameVerifier, NoVerification};

/// Every key this crate reads.
pub const KEYS: &[&str] = &[
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.type",
    "ssl.truststore.certificates",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.keystore.type",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.key.password",
    "ssl.protocol",
    "ssl.enabled.protocols",
    "ssl.cipher.suites",
    "ssl.endpoint.identification.algorithm",
    "ssl.ca.location",
    "ssl.ca.pem",
    "ssl.certificate.location",
    "ssl.certificate.pem",
    "ssl.key.location",
    "ssl.key.pem",
    "enable.ssl.certificate.verification",
];

/// Java keys that pick JSSE implementations (or configure brokers): accepted and
/// ignored, as they have no meaning with rustls.
const IGNORED: &[&str] = &[
    "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm",
    "ssl.secure.random.implementation",
    "ssl.provider",
    "ssl.client.auth",
    "ssl.principal.mapping.rules",
];

/// System CA bundles tried when no truststore is configured (Debian/Ubuntu,
/// Fedora/RHEL, openSUSE, Alpine).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

struct Keys(BTreeMap<String, String>);

impl Keys {
    /// A key's value; empty values count as absent, as in both Kafka clients.
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str).filter(|v| !v.trim().is_empty())
    }

    /// The one key of `group` that is set, or a conflict error.
    fn one_of<'k>(&self, group: &[&'k str]) -> Result<Option<&'k str>, TlsError> {
        let set: Vec<&str> = group.iter().copied().filter(|k| self.get(k).is_some()).collect();
        match set.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            [first, second, ..] => {
                Err(TlsError::config(second, format!("conflicts with {first}: configure one source only")))
            }
        }
    }

    fn store_type(&self, key: &'static str) -> Result<Option<(&'static str, StoreType)>, TlsError> {
        self.get(key).map(|v| StoreType::parse(key, v).map(|t| (key, t))).transpose()
    }

    fn flag(&self, key: &str, default: bool) -> Result<bool, TlsError> {
        match self.get(key).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" => Ok(true),
            Some(v) if v == "false" => Ok(false),
            Some(v) => Err(TlsError::config(key, format!("{v:?} is not a boolean (true, false)"))),
        }
    }
}

impl TlsConnector {
    /// Builds the connector from `security.protocol` and the `ssl.*` keys (Java
    /// client and librdkafka names; see the [crate documentation](crate)).
    /// Returns `None` for `PLAINTEXT` and `SASL_PLAINTEXT`. Stores are read and
    /// checked now, so every configuration error surfaces here.
    pub fn from_keys<K: AsRef<str>, V: AsRef<str>>(
        security_protocol: &str,
        keys: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Option<TlsConnector>, TlsError> {
        match security_protocol.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" | "SASL_PLAINTEXT" => return Ok(None),
            "SSL" | "SASL_SSL" => {}
            other => {
                return Err(TlsError::config(
                    "security.protocol",
                    format!("{other:?} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
                ))
            }
        }
        let keys = Keys(
            keys.into_iter()
                .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
                .filter(|(k, _)| k.starts_with("ssl.") || k == "enable.ssl.certificate.verification")
                .collect(),
        );
        for key in keys.0.keys() {
            if !KEYS.contains(&key.as_str()) && !IGNORED.contains(&key.as_str()) {
                return Err(TlsError::config(key, "not a TLS key ferrokafka supports"));
            }
        }
        build(&keys).map(Some)
    }
}

fn build(keys: &Keys) -> Result<TlsConnector, TlsError> {
    let versions = suites::versions(keys.get("ssl.enabled.protocols"), keys.get("ssl.protocol"))?;
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(list) = suites::cipher_suites("ssl.cipher.suites", keys.get("ssl.cipher.suites"))? {
        if !list.iter().any(|s| versions.iter().any(|v| s.version().version == v.version)) {
            return Err(TlsError::config(
                "ssl.cipher.suites",
                format!("no listed suite is usable with the enabled versions ({})", suites::version_names(&versions)),
            ));
        }
        provider.cipher_suites = list;
    }
    let provider = Arc::new(provider);
    let certificate_verification = keys.flag("enable.ssl.certificate.verification", true)?;
    let hostname_verification = match keys.0.get("ssl.endpoint.identification.algorithm").map(|v| v.trim()) {
        None => true,
        Some(v) if v.eq_ignore_ascii_case("https") => true,
        Some(v) if v.is_empty() || v.eq_ignore_ascii_case("none") => false,
        Some(v) => {
            return Err(TlsError::config(
                "ssl.endpoint.identification.algorithm",
                format!("{v:?} is not supported (https, or empty/none to turn host-name checking off)"),
            ))
        }
    };
    let (roots, trust) = trust_anchors(keys, certificate_verification)?;
    let client_key = match client_key(keys)? {
        Some((entry, store_name)) => {
            let described = format!("entry {:?} of {store_name}", entry.entry);
            Some((Arc::new(certified(entry, &store_name, &provider)?), described))
        }
        None => None,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::config("ssl.enabled.protocols", e.to_string()))?;
    let builder = if !certificate_verification {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification { provider: provider.clone() }))
    } else {
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| TlsError::config("ssl.truststore.location", format!("no usable trust anchor: {e}")))?;
        if hostname_verification {
            builder.with_webpki_verifier(webpki)
        } else {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(NoHostnameVerifier { inner: webpki }))
        }
    };
    let key = client_key.as_ref().map(|(k, _)| k.clone());
    let config =
        builder.with_client_cert_resolver(Arc::new(ClientCert { key: key.clone(), asked: Default::default() }));
    Ok(TlsConnector {
        config: Arc::new(config),
        client_key: key,
        settings: Arc::new(Settings {
            versions: suites::version_names(&versions),
            client_cert: client_key.map(|(_, name)| name),
            trust,
            hostname_verification,
            certificate_verification,
        }),
    })
}

/// Loads the key with ring and checks that it belongs to the leaf certificate.
fn certified(entry: KeyEntry, store: &str, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let name = entry.entry.clone();
    CertifiedKey::from_der(entry.chain, entry.key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch { store: store.to_owned(), entry: name.clone() },
        other => TlsError::UnsupportedKey { store: store.to_owned(), entry: name.clone(), reason: other.to_string() },
    })
}

/// The trust anchors and where they came from.
fn trust_anchors(keys: &Keys, verify: bool) -> Result<(RootCertStore, String), TlsError> {
    let source =
        keys.one_of(&["ssl.truststore.certificates", "ssl.truststore.location", "ssl.ca.location", "ssl.ca.pem"])?;
    let password = keys.get("ssl.truststore.password");
    let configured = keys.store_type("ssl.truststore.type")?;
    let (certs, name) = match source {
        Some(key @ ("ssl.truststore.certificates" | "ssl.ca.pem")) => {
            let store = Store::inline(key, keys.get(key).unwrap_or_default()).with_type(configured);
            (store::trusted_certs(&store, password, "ssl.truststore.password")?, store.name)
        }
        Some(key @ "ssl.truststore.location") => {
            let store = Store::from_file(keys.get(key).unwrap_or_default(), key)?.with_type(configured);
            (store::trusted_certs(&store, password, "ssl.truststore.password")?, store.name)
        }
        Some(key) => ca_location(keys.get(key).unwrap_or_default(), key)?,
        None if !verify => return Ok((RootCertStore::empty(), "none (certificate verification off)".into())),
        None => system_bundle()?,
    };
    let mut roots = RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| TlsError::corrupt(&name, format!("trusted certificate {}: {e}", i + 1)))?;
    }
    Ok((roots, name))
}

/// librdkafka's `ssl.ca.location`: a PEM file, or a directory of PEM files.
fn ca_location(path: &str, key: &str) -> Result<(Vec<CertificateDer<'static>>, String), TlsError> {
    if !std::path::Path::new(path).is_dir() {
        let store = Store::from_file(path, key)?.with_type(Some((key_static(key), StoreType::Pem)));
        return Ok((store::trusted_certs(&store, None, "ssl.truststore.password")?, store.name));
    }
    let name = format!("{path} ({key})");
    let read = |e| TlsError::Read { store: name.clone(), source: Arc::new(e) };
    let mut files: Vec<_> = std::fs::read_dir(path).map_err(read)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    let mut certs = Vec::new();
    for file in files.iter().filter(|f| f.is_file()) {
        let Ok(store) = Store::from_file(&file.to_string_lossy(), key) else { continue };
        if let Ok(mut found) = store::trusted_certs(&store, None, "") {
            certs.append(&mut found);
        }
    }
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { store: name, what: "PEM certificate in the directory".into() });
    }
    Ok((certs, name))
}

fn key_static(key: &str) -> &'static str {
    KEYS.iter().copied().find(|k| *k == key).unwrap_or("ssl.truststore.type")
}

/// The first system CA bundle found (`SSL_CERT_FILE` first).
fn system_bundle() -> Result<(Vec<CertificateDer<'static>>, String), TlsError> {
    let env = std::env::var("SSL_CERT_FILE").ok();
    for path in env.iter().map(String::as_str).chain(SYSTEM_BUNDLES.iter().copied()) {
        if std::path::Path::new(path).is_file() {
            let store = Store::from_file(path, "system CA bundle")?;
            return Ok((store::trusted_certs(&store, None, "")?, store.name));
        }
    }
    Err(TlsError::config(
        "ssl.truststore.location",
        "no truststore is configured and no system CA bundle was found; set ssl.truststore.location or ssl.ca.location",
    ))
}

/// The client certificate and key, if configured, with the store's name.
fn client_key(keys: &Keys) -> Result<Option<(KeyEntry, String)>, TlsError> {
    let java_inline = keys.get("ssl.keystore.key").is_some() || keys.get("ssl.keystore.certificate.chain").is_some();
    let rdkafka = ["ssl.certificate.location", "ssl.certificate.pem", "ssl.key.location", "ssl.key.pem"]
        .iter()
        .any(|k| keys.get(k).is_some());
    let location = keys.get("ssl.keystore.location").is_some();
    let sources =
        [(java_inline, "ssl.keystore.key"), (location, "ssl.keystore.location"), (rdkafka, "ssl.certificate.location")];
    let set: Vec<&str> = sources.iter().filter(|(on, _)| *on).map(|(_, k)| *k).collect();
    if let [first, second, ..] = set.as_slice() {
        return Err(TlsError::config(second, format!("conflicts with {first}: configure one client key source only")));
    }
    let store_password = keys.get("ssl.keystore.password");
    let key_password = keys.get("ssl.key.password");
    let configured = keys.store_type("ssl.keystore.type")?;
    match set.first().copied() {
        None => Ok(None),
        Some("ssl.keystore.location") => {
            let store =
                Store::from_file(keys.get("ssl.keystore.location").unwrap_or_default(), "ssl.keystore.location")?
                    .with_type(configured);
            Ok(Some((store::key_entry(&store, store_password, key_password)?, store.name)))
        }
        Some(_) => {
            let (key_key, chain_key) = if java_inline {
                ("ssl.keystore.key", "ssl.keystore.certificate.chain")
            } else {
                (
                    keys.one_of(&["ssl.key.location", "ssl.key.pem"])?.unwrap_or("ssl.key.location"),
                    keys.one_of(&["ssl.certificate.location", "ssl.certificate.pem"])?
                        .unwrap_or("ssl.certificate.location"),
                )
            };
            let open = |k: &'static str| -> Result<Store, TlsError> {
                let value =
                    keys.get(k).ok_or_else(|| TlsError::config(k, "is required with the other client key keys"))?;
                let pem = Some((if java_inline { "ssl.keystore.type" } else { k }, StoreType::Pem));
                if k.ends_with(".location") {
                    Ok(Store::from_file(value, k)?.with_type(pem))
                } else {
                    Ok(Store::inline(k, value).with_type(if java_inline { configured.or(pem) } else { pem }))
                }
            };
            let key_store = open(key_key)?;
            let chain_store = open(chain_key)?;
            let entry = store::split_pem_entry(&key_store, &chain_store, key_password.or(store_password))?;
            Ok(Some((entry, format!("{} and {}", key_store.name, chain_store.name))))
        }
    }
}
