//! A reader for Java's JKS keystores (magic `FEEDFEED`, versions 1 and 2).
//!
//! Layout: magic, version, entry count; each entry is a tag (1: private key, 2:
//! trusted certificate), an alias (Java modified UTF-8), a timestamp, then either
//! the protected key with its certificate chain or one certificate (version 2
//! prefixes each certificate with its type, "X.509"). The store ends with
//! SHA-1(password as UTF-16BE ‖ "Mighty Aphrodite" ‖ everything before), checked
//! only when a password is given, as Java does for truststores loaded without one.
//!
//! Private keys are protected with Sun's algorithm (OID 1.3.6.1.4.1.42.2.17.1.1):
//! `salt(20) ‖ ciphertext ‖ check(20)`, the keystream being the chain of
//! SHA-1(password ‖ previous digest) starting from the salt, and the check
//! SHA-1(password ‖ plaintext).
//!
//! Every length is checked against the bytes left before anything is allocated.

use pkcs8::der::asn1::OctetStringRef;
use pkcs8::der::{Reader, SliceReader};
use pkcs8::spki::AlgorithmIdentifierRef;
use sha1::{Digest, Sha1};

use crate::key::SUN_JKS_KEY_PROTECTION;

/// JKS magic.
pub(crate) const MAGIC: [u8; 4] = [0xFE, 0xED, 0xFE, 0xED];
/// JCEKS magic (not supported, but recognised for a clear error).
pub(crate) const JCEKS_MAGIC: [u8; 4] = [0xCE, 0xCE, 0xCE, 0xCE];

/// One entry of a JKS store.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A private key (still protected) with its certificate chain, leaf first.
    Key {
        /// The alias.
        alias: String,
        /// DER `EncryptedPrivateKeyInfo` with Sun's key protection.
        protected: Vec<u8>,
        /// DER certificates.
        chain: Vec<Vec<u8>>,
    },
    /// A trusted certificate.
    Trusted {
        /// The alias.
        alias: String,
        /// DER certificate.
        cert: Vec<u8>,
    },
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::Key { alias, chain, .. } => {
                f.debug_struct("Key").field("alias", alias).field("chain_len", &chain.len()).finish_non_exhaustive()
            }
            Entry::Trusted { alias, .. } => f.debug_struct("Trusted").field("alias", alias).finish_non_exhaustive(),
        }
    }
}

/// Why a JKS store was rejected.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum JksProblem {
    /// Truncated or malformed; the text says where.
    Corrupt(String),
    /// The integrity digest does not match the password.
    Integrity,
    /// Something valid but unsupported (JCEKS secret keys, non-X.509 certificates).
    Unsupported(String),
}

/// A bounds-checked big-endian reader.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], JksProblem> {
        let left = self.data.len() - self.pos;
        if n > left {
            return Err(JksProblem::Corrupt(format!(
                "{what} needs {n} bytes at offset {} but only {left} are left",
                self.pos
            )));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u16(&mut self, what: &str) -> Result<u16, JksProblem> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, JksProblem> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A u32 length followed by that many bytes.
    fn blob(&mut self, what: &str) -> Result<&'a [u8], JksProblem> {
        let len = self.u32(what)?;
        let len = usize::try_from(len).map_err(|_| JksProblem::Corrupt(format!("{what} length {len}")))?;
        self.take(len, what)
    }

    /// Java's `DataInput.readUTF`: u16 length, modified UTF-8.
    fn utf(&mut self, what: &str) -> Result<String, JksProblem> {
        let len = self.u16(what)?;
        let bytes = self.take(usize::from(len), what)?;
        modified_utf8(bytes).ok_or_else(|| JksProblem::Corrupt(format!("{what} is not modified UTF-8")))
    }
}

/// Decodes Java's modified UTF-8 (NUL as C0 80, supplementary characters as two
/// three-byte surrogates).
fn modified_utf8(bytes: &[u8]) -> Option<String> {
    let mut units: Vec<u16> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            units.push(u16::from(b));
            i += 1;
        } else if b & 0xE0 == 0xC0 {
            let c = *bytes.get(i + 1)?;
            if c & 0xC0 != 0x80 {
                return None;
            }
            units.push((u16::from(b & 0x1F) << 6) | u16::from(c & 0x3F));
            i += 2;
        } else if b & 0xF0 == 0xE0 {
            let (c, d) = (*bytes.get(i + 1)?, *bytes.get(i + 2)?);
            if c & 0xC0 != 0x80 || d & 0xC0 != 0x80 {
                return None;
            }
            units.push((u16::from(b & 0x0F) << 12) | (u16::from(c & 0x3F) << 6) | u16::from(d & 0x3F));
            i += 3;
        } else {
            return None;
        }
    }
    String::from_utf16(&units).ok()
}

/// The password as Java hashes it: each UTF-16 code unit, big-endian.
pub(crate) fn utf16be(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Parses a JKS store; verifies its integrity digest when `password` is given.
pub(crate) fn parse(data: &[u8], password: Option<&str>) -> Result<Vec<Entry>, JksProblem> {
    let mut c = Cursor { data, pos: 0 };
    let magic = c.take(4, "magic")?;
    if magic == JCEKS_MAGIC {
        return Err(JksProblem::Unsupported(
            "JCEKS stores are not supported (convert to PKCS12 with keytool -importkeystore)".into(),
        ));
    }
    if magic != MAGIC {
        return Err(JksProblem::Corrupt("no JKS magic".into()));
    }
    let version = c.u32("version")?;
    if version != 1 && version != 2 {
        return Err(JksProblem::Unsupported(format!("JKS version {version}")));
    }
    let count = c.u32("entry count")?;
    let mut entries = Vec::new();
    for n in 0..count {
        let tag = c.u32("entry tag")?;
        let alias = c.utf("alias")?;
        c.take(8, "timestamp")?;
        match tag {
            1 => {
                let protected = c.blob("protected key")?.to_vec();
                let certs = c.u32("certificate chain length")?;
                let mut chain = Vec::new();
                for _ in 0..certs {
                    chain.push(cert(&mut c, version)?);
                }
                entries.push(Entry::Key { alias, protected, chain });
            }
            2 => entries.push(Entry::Trusted { cert: cert(&mut c, version)?, alias }),
            3 => {
                return Err(JksProblem::Unsupported(format!("entry {alias:?} is a secret key (JCEKS only)")));
            }
            other => return Err(JksProblem::Corrupt(format!("entry {n} ({alias:?}) has unknown tag {other}"))),
        }
    }
    let signed = c.pos;
    let digest = c.take(20, "integrity digest")?;
    if let Some(pw) = password {
        let mut h = Sha1::new();
        h.update(utf16be(pw));
        h.update(b"Mighty Aphrodite");
        h.update(&data[..signed]);
        if h.finalize().as_slice() != digest {
            return Err(JksProblem::Integrity);
        }
    }
    Ok(entries)
}

fn cert(c: &mut Cursor<'_>, version: u32) -> Result<Vec<u8>, JksProblem> {
    if version == 2 {
        let kind = c.utf("certificate type")?;
        if kind != "X.509" {
            return Err(JksProblem::Unsupported(format!("certificate type {kind:?}")));
        }
    }
    Ok(c.blob("certificate")?.to_vec())
}

/// Why a protected key could not be recovered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeyRecovery {
    /// The check digest does not match: wrong key password.
    WrongPassword,
    /// Not Sun's key protection, or malformed.
    Malformed(String),
}

/// Recovers the PKCS#8 key protected with Sun's JKS algorithm.
pub(crate) fn recover_key(protected: &[u8], password: &str) -> Result<Vec<u8>, KeyRecovery> {
    let mut r = SliceReader::new(protected).map_err(|e| KeyRecovery::Malformed(e.to_string()))?;
    let (alg, data) = r
        .sequence(|r| {
            let alg: AlgorithmIdentifierRef<'_> = r.decode()?;
            let data: &OctetStringRef = r.decode()?;
            Ok::<_, pkcs8::der::Error>((alg, data))
        })
        .map_err(|e| KeyRecovery::Malformed(format!("protected key: {e}")))?;
    if alg.oid != SUN_JKS_KEY_PROTECTION {
        return Err(KeyRecovery::Malformed(format!("key protection {} is not Sun's JKS algorithm", alg.oid)));
    }
    let data = data.as_bytes();
    if data.len() < 40 {
        return Err(KeyRecovery::Malformed("protected key shorter than salt and check".into()));
    }
    let (salt, rest) = data.split_at(20);
    let (cipher, check) = rest.split_at(rest.len() - 20);
    let pw = utf16be(password);
    let mut plain = Vec::with_capacity(cipher.len());
    let mut digest: Vec<u8> = salt.to_vec();
    for block in cipher.chunks(20) {
        let mut h = Sha1::new();
        h.update(&pw);
        h.update(&digest);
        digest = h.finalize().to_vec();
        plain.extend(block.iter().zip(&digest).map(|(a, b)| a ^ b));
    }
    let mut h = Sha1::new();
    h.update(&pw);
    h.update(&plain);
    if h.finalize().as_slice() != check {
        return Err(KeyRecovery::WrongPassword);
    }
    Ok(plain)
}
