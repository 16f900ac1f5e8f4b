//! `ssl.enabled.protocols` / `ssl.protocol` and `ssl.cipher.suites`: Java (IANA)
//! and OpenSSL names mapped to what rustls with the ring provider offers.

use rustls::crypto::ring::cipher_suite as cs;
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

use crate::error::TlsError;

/// The suites rustls (ring) supports, with their IANA (Java) and OpenSSL names.
const SUITES: &[(&str, &str, SupportedCipherSuite)] = &[
    ("TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384", cs::TLS13_AES_256_GCM_SHA384),
    ("TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256", cs::TLS13_AES_128_GCM_SHA256),
    ("TLS_CHACHA20_POLY1305_SHA256", "TLS_CHACHA20_POLY1305_SHA256", cs::TLS13_CHACHA20_POLY1305_SHA256),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384", cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256", cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-RSA-CHACHA20-POLY1305",
        cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// Splits a list on commas, colons and whitespace (Java uses commas, OpenSSL colons).
fn items(value: &str) -> impl Iterator<Item = &str> {
    value.split([',', ':', ' ', '\t', '\n']).map(str::trim).filter(|s| !s.is_empty())
}

/// The cipher suites of `ssl.cipher.suites` (`None`: rustls's defaults).
pub(crate) fn cipher_suites(key: &str, value: Option<&str>) -> Result<Option<Vec<SupportedCipherSuite>>, TlsError> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for name in items(value) {
        // Java lists this signalling value among suites; rustls always behaves so.
        if name.eq_ignore_ascii_case("TLS_EMPTY_RENEGOTIATION_INFO_SCSV") {
            continue;
        }
        let found = SUITES
            .iter()
            .find(|(iana, openssl, _)| name.eq_ignore_ascii_case(iana) || name.eq_ignore_ascii_case(openssl));
        match found {
            Some((_, _, suite)) => {
                if !out.contains(suite) {
                    out.push(*suite);
                }
            }
            None => {
                let supported: Vec<&str> = SUITES.iter().map(|s| s.0).collect();
                return Err(TlsError::config(
                    key,
                    format!(
                        "cipher suite {name:?} is unknown or not supported by rustls; supported: {}",
                        supported.join(", ")
                    ),
                ));
            }
        }
    }
    if out.is_empty() {
        return Err(TlsError::config(key, "no cipher suite listed"));
    }
    Ok(Some(out))
}

/// The TLS versions from `ssl.enabled.protocols`, else `ssl.protocol` (Java: `TLSv1.3`
/// enables 1.2 and 1.3, `TLSv1.2` only 1.2), else both.
pub(crate) fn versions(
    enabled: Option<&str>,
    protocol: Option<&str>,
) -> Result<Vec<&'static SupportedProtocolVersion>, TlsError> {
    if let Some(list) = enabled.filter(|v| !v.trim().is_empty()) {
        let mut out: Vec<&'static SupportedProtocolVersion> = Vec::new();
        for name in items(list) {
            let v = version("ssl.enabled.protocols", name)?;
            if !out.iter().any(|o| o.version == v.version) {
                out.push(v);
            }
        }
        return Ok(out);
    }
    match protocol.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]),
        Some(p) if p.eq_ignore_ascii_case("TLS") || p.eq_ignore_ascii_case("TLSv1.3") => {
            Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12])
        }
        Some(p) => Ok(vec![version("ssl.protocol", p)?]),
    }
}

fn version(key: &str, name: &str) -> Result<&'static SupportedProtocolVersion, TlsError> {
    match name.to_ascii_uppercase().as_str() {
        "TLSV1.3" => Ok(&rustls::version::TLS13),
        "TLSV1.2" => Ok(&rustls::version::TLS12),
        "TLSV1" | "TLSV1.0" | "TLSV1.1" | "SSLV3" | "SSLV2HELLO" | "SSL" => Err(TlsError::config(
            key,
            format!("{name} is not supported: it is insecure and rustls implements only TLSv1.2 and TLSv1.3"),
        )),
        _ => Err(TlsError::config(key, format!("unknown TLS version {name:?} (TLSv1.2, TLSv1.3)"))),
    }
}

/// The names of `versions`, for messages.
pub(crate) fn version_names(versions: &[&'static SupportedProtocolVersion]) -> String {
    versions
        .iter()
        .map(|v| if v.version == rustls::ProtocolVersion::TLSv1_3 { "TLSv1.3" } else { "TLSv1.2" })
        .collect::<Vec<_>>()
        .join(",")
}
