//! Private keys: decrypting `EncryptedPrivateKeyInfo` (PBES2, and the PKCS#12
//! PBE-SHA1-3DES that keytool and `openssl pkcs8 -v1` still write), and normalising
//! EC keys so that ring accepts them (ring needs the public key inside the PKCS#8
//! document, which Java's encoder leaves out).

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, KeyIvInit};
use pkcs8::der::asn1::{AnyRef, BitStringRef, ObjectIdentifier, OctetStringRef};
use pkcs8::der::{Decode, Reader, SliceReader, Tag, Tagged};
use pkcs8::spki::AlgorithmIdentifierRef;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// PBES2 (PKCS#5 v2).
const PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
/// PKCS#12 pbeWithSHAAnd3-KeyTripleDES-CBC.
const PBE_SHA1_3DES: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.3");
/// Sun's JKS key protection (SHA-1 keystream); handled by the JKS reader.
pub(crate) const SUN_JKS_KEY_PROTECTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.42.2.17.1.1");
const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

/// PBKDF2 and PKCS#12-KDF iteration limit: a store is read on every client start,
/// and a hostile one must not keep us busy for minutes.
const MAX_ITERATIONS: u64 = 10_000_000;
/// scrypt cost limit (N ≤ 2^20 with r = 8 is 1 GiB of memory).
const MAX_SCRYPT_LOG_N: u32 = 20;

/// Why a key could not be decrypted or used (turned into a [`crate::TlsError`]
/// with the store and entry by the caller).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeyProblem {
    /// Decryption failed or the plaintext is no key: almost always the password.
    WrongPassword(String),
    /// The structure around the key is malformed.
    Malformed(String),
    /// A valid but unsupported algorithm or encryption.
    Unsupported(String),
}

/// Decrypts a DER `EncryptedPrivateKeyInfo` into a PKCS#8 `PrivateKeyInfo`.
pub(crate) fn decrypt_pkcs8(der: &[u8], password: &str) -> Result<Vec<u8>, KeyProblem> {
    let malformed = |e: pkcs8::der::Error| KeyProblem::Malformed(format!("EncryptedPrivateKeyInfo: {e}"));
    let mut r = SliceReader::new(der).map_err(malformed)?;
    let (alg, data) = r
        .sequence(|r| {
            let alg: AlgorithmIdentifierRef<'_> = r.decode()?;
            let data: &OctetStringRef = r.decode()?;
            Ok::<_, pkcs8::der::Error>((alg, data))
        })
        .map_err(malformed)?;
    let plain = if alg.oid == PBES2 {
        decrypt_pbes2(alg, data.as_bytes(), password)?
    } else if alg.oid == PBE_SHA1_3DES {
        decrypt_pkcs12_3des(alg, data.as_bytes(), password)?
    } else {
        return Err(KeyProblem::Unsupported(format!("key encryption {} is not supported", oid_name(&alg.oid))));
    };
    // A wrong key yields garbage that may still unpad (3DES: about 1 in 256).
    if pkcs8::PrivateKeyInfoRef::from_der(&plain).is_err() {
        return Err(KeyProblem::WrongPassword("the decrypted bytes are not a PKCS#8 key".into()));
    }
    Ok(plain)
}

fn decrypt_pbes2(alg: AlgorithmIdentifierRef<'_>, data: &[u8], password: &str) -> Result<Vec<u8>, KeyProblem> {
    let scheme = pkcs8::pkcs5::EncryptionScheme::try_from(alg)
        .map_err(|e| KeyProblem::Unsupported(format!("PBES2 parameters: {e}")))?;
    if let Some(params) = scheme.pbes2() {
        match &params.kdf {
            pkcs8::pkcs5::pbes2::Kdf::Pbkdf2(p) if u64::from(p.iteration_count) > MAX_ITERATIONS => {
                return Err(KeyProblem::Unsupported(format!(
                    "PBKDF2 iteration count {} is too large",
                    p.iteration_count
                )));
            }
            pkcs8::pkcs5::pbes2::Kdf::Scrypt(s) if s.cost_parameter > 1 << MAX_SCRYPT_LOG_N || s.block_size > 32 => {
                return Err(KeyProblem::Unsupported("scrypt parameters are too large".into()));
            }
            _ => {}
        }
    }
    scheme.decrypt(password, data).map_err(|e| match e {
        pkcs8::pkcs5::Error::DecryptFailed => KeyProblem::WrongPassword("PBES2 decryption failed".into()),
        other => KeyProblem::Unsupported(format!("PBES2: {other}")),
    })
}

fn decrypt_pkcs12_3des(alg: AlgorithmIdentifierRef<'_>, data: &[u8], password: &str) -> Result<Vec<u8>, KeyProblem> {
    let params = alg.parameters.ok_or_else(|| KeyProblem::Malformed("PBE-SHA1-3DES without parameters".into()))?;
    let (salt, iterations) =
        pbe_params(params).map_err(|e| KeyProblem::Malformed(format!("PBE-SHA1-3DES parameters: {e}")))?;
    if iterations == 0 || u64::from(iterations) > MAX_ITERATIONS {
        return Err(KeyProblem::Unsupported(format!("PBE iteration count {iterations} is out of range")));
    }
    let rounds = i32::try_from(iterations).map_err(|_| KeyProblem::Unsupported("iteration count".into()))?;
    let key = pkcs12_kdf(password, &salt, 1, rounds, 24)?;
    let iv = pkcs12_kdf(password, &salt, 2, rounds, 8)?;
    let dec = cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
        .map_err(|_| KeyProblem::Malformed("3DES key or IV length".into()))?;
    if data.is_empty() || !data.len().is_multiple_of(8) {
        return Err(KeyProblem::Malformed("3DES ciphertext is not a whole number of blocks".into()));
    }
    dec.decrypt_padded_vec::<Pkcs7>(data)
        .map_err(|_| KeyProblem::WrongPassword("PBE-SHA1-3DES padding check failed".into()))
}

/// The PKCS#12 KDF (RFC 7292 appendix B) with SHA-1; `id` 1 = key, 2 = IV, 3 = MAC.
pub(crate) fn pkcs12_kdf(password: &str, salt: &[u8], id: u8, rounds: i32, len: usize) -> Result<Vec<u8>, KeyProblem> {
    use pkcs12::kdf::{derive_key_utf8, Pkcs12KeyType};
    let kind = match id {
        1 => Pkcs12KeyType::EncryptionKey,
        2 => Pkcs12KeyType::Iv,
        _ => Pkcs12KeyType::Mac,
    };
    derive_key_utf8::<sha1::Sha1>(password, salt, kind, rounds, len)
        .map_err(|_| KeyProblem::Unsupported("the password cannot be encoded as a BMPString".into()))
}

/// `pkcs-12PbeParams ::= SEQUENCE { salt OCTET STRING, iterations INTEGER }`.
fn pbe_params(params: AnyRef<'_>) -> Result<(Vec<u8>, u32), pkcs8::der::Error> {
    let bytes = pkcs8::der::Encode::to_der(&params)?;
    let mut r = SliceReader::new(&bytes)?;
    r.sequence(|r| {
        let salt: &OctetStringRef = r.decode()?;
        let iterations: u32 = r.decode()?;
        Ok((salt.as_bytes().to_vec(), iterations))
    })
}

fn oid_name(oid: &ObjectIdentifier) -> String {
    let known = [
        ("1.2.840.113549.1.12.1.1", "pbeWithSHAAnd128BitRC4"),
        ("1.2.840.113549.1.12.1.2", "pbeWithSHAAnd40BitRC4"),
        ("1.2.840.113549.1.12.1.4", "pbeWithSHAAnd2-KeyTripleDES-CBC"),
        ("1.2.840.113549.1.12.1.5", "pbeWithSHAAnd128BitRC2-CBC"),
        ("1.2.840.113549.1.12.1.6", "pbeWithSHAAnd40BitRC2-CBC"),
        ("1.2.840.113549.1.5.3", "pbeWithMD5AndDES-CBC"),
        ("1.2.840.113549.1.5.10", "pbeWithSHA1AndDES-CBC"),
        ("1.3.6.1.4.1.42.2.19.1", "PBEWithMD5AndTripleDES (JCEKS)"),
    ];
    let s = oid.to_string();
    match known.iter().find(|(o, _)| *o == s) {
        Some((_, name)) => format!("{name} ({s})"),
        None => s,
    }
}

/// Makes a private key loadable by ring: EC keys (PKCS#8 or SEC1) get their public
/// key computed when it is absent and are re-encoded as PKCS#8; RSA (PKCS#1 or
/// PKCS#8) and Ed25519 keys are returned as they are.
pub(crate) fn normalize(key: PrivateKeyDer<'static>) -> Result<PrivateKeyDer<'static>, KeyProblem> {
    match &key {
        PrivateKeyDer::Pkcs8(k) => {
            let info = pkcs8::PrivateKeyInfoRef::from_der(k.secret_pkcs8_der())
                .map_err(|e| KeyProblem::Malformed(format!("PKCS#8: {e}")))?;
            let oid = info.algorithm.oid;
            if oid == RSA || oid == ED25519 {
                Ok(key)
            } else if oid == EC {
                let curve = info
                    .algorithm
                    .parameters
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                    .ok_or_else(|| KeyProblem::Malformed("EC key without a named curve".into()))?;
                ec_to_pkcs8(info.private_key.as_bytes(), Some(curve))
            } else {
                Err(KeyProblem::Unsupported(format!(
                    "key algorithm {oid} is not supported (RSA, ECDSA P-256/P-384, Ed25519 are)"
                )))
            }
        }
        PrivateKeyDer::Sec1(k) => ec_to_pkcs8(k.secret_sec1_der(), None),
        _ => Ok(key),
    }
}

/// Parses a SEC1 `ECPrivateKey` and writes a PKCS#8 document that includes the
/// public key. `curve` is the PKCS#8 algorithm's parameter, if any.
fn ec_to_pkcs8(sec1: &[u8], curve: Option<ObjectIdentifier>) -> Result<PrivateKeyDer<'static>, KeyProblem> {
    let malformed = |e: pkcs8::der::Error| KeyProblem::Malformed(format!("EC private key: {e}"));
    let mut r = SliceReader::new(sec1).map_err(malformed)?;
    let (scalar, inner_curve, public) = r
        .sequence(|r| {
            let _version: u8 = r.decode()?;
            let scalar: &OctetStringRef = r.decode()?;
            let mut inner_curve = None;
            let mut public = None;
            while !r.is_finished() {
                let field: AnyRef<'_> = r.decode()?;
                match field.tag() {
                    Tag::ContextSpecific { constructed: true, number } if number.value() == 0 => {
                        inner_curve = Some(ObjectIdentifier::from_der(field.value())?)
                    }
                    Tag::ContextSpecific { constructed: true, number } if number.value() == 1 => {
                        public = Some(BitStringRef::from_der(field.value())?.raw_bytes().to_vec())
                    }
                    _ => {}
                }
            }
            Ok::<_, pkcs8::der::Error>((scalar.as_bytes().to_vec(), inner_curve, public))
        })
        .map_err(malformed)?;
    let curve = match (curve, inner_curve) {
        (Some(a), Some(b)) if a != b => return Err(KeyProblem::Malformed("EC key names two different curves".into())),
        (Some(c), _) | (None, Some(c)) => c,
        (None, None) => return Err(KeyProblem::Malformed("EC key without a named curve".into())),
    };
    let (size, public) = if curve == P256 {
        (32, public.map(Ok).unwrap_or_else(|| public_p256(&scalar))?)
    } else if curve == P384 {
        (48, public.map(Ok).unwrap_or_else(|| public_p384(&scalar))?)
    } else {
        return Err(KeyProblem::Unsupported(format!("EC curve {curve} is not supported (P-256 and P-384 are)")));
    };
    if scalar.len() > size {
        return Err(KeyProblem::Malformed("EC private key longer than its curve".into()));
    }
    let mut padded = vec![0u8; size - scalar.len()];
    padded.extend_from_slice(&scalar);
    // ECPrivateKey { 1, privateKey, [1] publicKey } inside PKCS#8 v0 with the curve.
    let ec_key =
        der_seq(&[&[0x02, 0x01, 0x01], &tlv(0x04, &padded), &tlv(0xA1, &tlv(0x03, &[&[0u8][..], &public].concat()))]);
    let alg = der_seq(&[&oid_der(&EC), &oid_der(&curve)]);
    let pkcs8 = der_seq(&[&[0x02, 0x01, 0x00], &alg, &tlv(0x04, &ec_key)]);
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8)))
}

fn public_p256(scalar: &[u8]) -> Result<Vec<u8>, KeyProblem> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let sk =
        p256::SecretKey::from_slice(scalar).map_err(|_| KeyProblem::Malformed("invalid P-256 private key".into()))?;
    Ok(sk.public_key().to_encoded_point(false).as_bytes().to_vec())
}

fn public_p384(scalar: &[u8]) -> Result<Vec<u8>, KeyProblem> {
    use p384::elliptic_curve::sec1::ToEncodedPoint;
    let sk =
        p384::SecretKey::from_slice(scalar).map_err(|_| KeyProblem::Malformed("invalid P-384 private key".into()))?;
    Ok(sk.public_key().to_encoded_point(false).as_bytes().to_vec())
}

fn oid_der(oid: &ObjectIdentifier) -> Vec<u8> {
    tlv(0x06, oid.as_bytes())
}

fn der_seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// One DER tag-length-value.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}
