//! PEM stores: certificates and one private key (PKCS#8, PKCS#1 or SEC1, or an
//! encrypted PKCS#8 `ENCRYPTED PRIVATE KEY`), parsed with rustls-pki-types.
//!
//! rustls-pki-types skips sections whose label it does not know, and `ENCRYPTED
//! PRIVATE KEY` is one of them: such a section is cut out of the text and decoded
//! under the `PRIVATE KEY` label (same base64 body), then decrypted here.

use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};

use super::{key_error, KeyEntry, Store};
use crate::error::TlsError;
use crate::key;

const ENCRYPTED_BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const ENCRYPTED_END: &str = "-----END ENCRYPTED PRIVATE KEY-----";

/// A private key as found in the PEM text.
pub(crate) enum PemKey {
    /// Not encrypted.
    Plain(PrivateKeyDer<'static>),
    /// DER `EncryptedPrivateKeyInfo`.
    Encrypted(Vec<u8>),
}

/// What a PEM store holds.
pub(crate) struct PemContent {
    /// Every certificate, in file order.
    pub(crate) certs: Vec<CertificateDer<'static>>,
    /// The private key (at most one), with the label it had.
    pub(crate) key: Option<(&'static str, PemKey)>,
}

/// Parses every section of a PEM store.
pub(crate) fn parse(store: &Store) -> Result<PemContent, TlsError> {
    let text = std::str::from_utf8(&store.bytes)
        .map_err(|e| TlsError::corrupt(&store.name, format!("PEM text is not UTF-8 (byte {})", e.valid_up_to())))?;
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(TlsError::UnsupportedKey {
            store: store.name.clone(),
            entry: "PEM private key".into(),
            reason: "OpenSSL's traditional encrypted PEM (Proc-Type header) is not supported; \
                     convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`"
                .into(),
        });
    }
    // A boundary line cut short (a truncated file) would otherwise be skipped as text.
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with("-----")
            && !((line.starts_with("-----BEGIN ") || line.starts_with("-----END ")) && line.ends_with("-----"))
        {
            return Err(TlsError::corrupt(&store.name, format!("line {} is a malformed PEM boundary", n + 1)));
        }
    }
    let (rest, encrypted) = cut_encrypted(text).map_err(|reason| TlsError::corrupt(&store.name, reason))?;
    let mut content = PemContent { certs: Vec::new(), key: None };
    let mut keys = 0usize;
    if let Some(block) = encrypted {
        let relabelled = block
            .replace(ENCRYPTED_BEGIN, "-----BEGIN PRIVATE KEY-----")
            .replace(ENCRYPTED_END, "-----END PRIVATE KEY-----");
        let der = PrivatePkcs8KeyDer::from_pem_slice(relabelled.as_bytes())
            .map_err(|e| TlsError::corrupt(&store.name, format!("ENCRYPTED PRIVATE KEY: {e}")))?;
        content.key = Some(("ENCRYPTED PRIVATE KEY", PemKey::Encrypted(der.secret_pkcs8_der().to_vec())));
        keys += 1;
    }
    let mut sections = 0usize;
    for item in <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(rest.as_bytes()) {
        let (kind, der) = item.map_err(|e| TlsError::corrupt(&store.name, format!("PEM: {e}")))?;
        sections += 1;
        let key = match kind {
            SectionKind::Certificate => {
                content.certs.push(CertificateDer::from(der));
                continue;
            }
            SectionKind::PrivateKey => ("PRIVATE KEY", PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der))),
            SectionKind::RsaPrivateKey => ("RSA PRIVATE KEY", PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der))),
            SectionKind::EcPrivateKey => ("EC PRIVATE KEY", PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der))),
            _ => continue,
        };
        keys += 1;
        if content.key.is_none() {
            content.key = Some((key.0, PemKey::Plain(key.1)));
        }
    }
    if keys > 1 {
        return Err(TlsError::corrupt(&store.name, format!("{keys} private keys; a PEM keystore holds one")));
    }
    if sections == 0 && content.key.is_none() {
        return Err(TlsError::UnknownFormat {
            store: store.name.clone(),
            reason: "no CERTIFICATE or PRIVATE KEY section in the PEM text".into(),
        });
    }
    Ok(content)
}

/// Splits out the (first) `ENCRYPTED PRIVATE KEY` block.
fn cut_encrypted(text: &str) -> Result<(String, Option<String>), String> {
    let Some(start) = text.find(ENCRYPTED_BEGIN) else {
        return Ok((text.to_owned(), None));
    };
    let Some(end_rel) = text[start..].find(ENCRYPTED_END) else {
        return Err("ENCRYPTED PRIVATE KEY section has no END line".into());
    };
    let end = start + end_rel + ENCRYPTED_END.len();
    let block = text[start..end].to_owned();
    let rest = format!("{}\n{}", &text[..start], &text[end..]);
    if rest.contains(ENCRYPTED_BEGIN) {
        return Err("more than one ENCRYPTED PRIVATE KEY section".into());
    }
    Ok((rest, Some(block)))
}

/// The private key of a PEM store, decrypted with `password` if it is encrypted.
/// Returns the entry name (the section label) and the key.
pub(crate) fn decode_key(
    store: &Store,
    content: &mut PemContent,
    password: Option<&str>,
) -> Result<(String, PrivateKeyDer<'static>), TlsError> {
    let Some((label, key)) = content.key.take() else {
        return Err(TlsError::NoKeyEntry { store: store.name.clone() });
    };
    let entry = format!("{label} section");
    match key {
        PemKey::Plain(k) => Ok((entry, k)),
        PemKey::Encrypted(der) => {
            let Some(pw) = password else {
                return Err(TlsError::PasswordRequired {
                    store: store.name.clone(),
                    what: "the private key".into(),
                    key: "ssl.key.password".into(),
                });
            };
            let plain = key::decrypt_pkcs8(&der, pw).map_err(|p| key_error(store, &entry, p))?;
            Ok((entry, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(plain))))
        }
    }
}

/// Key and chain from one PEM store (Java's PEM keystore).
pub(crate) fn key(store: &Store, password: Option<&str>) -> Result<KeyEntry, TlsError> {
    let mut content = parse(store)?;
    let (entry, key) = decode_key(store, &mut content, password)?;
    Ok(KeyEntry { entry, key, chain: content.certs })
}
