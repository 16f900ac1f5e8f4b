//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), client side, sans I/O.
//!
//! Checks what a client must: the server nonce extends ours, the iteration count is
//! at least 4096, the salt is base64, and the server's signature in its final
//! message proves it knows the salted password (a server that skips or fakes it
//! fails the exchange).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::{digest, hmac, pbkdf2};

/// Fewest PBKDF2 iterations accepted (RFC 7677 recommends at least 4096).
pub const MIN_ITERATIONS: u32 = 4096;

/// The hash of a SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScramHash {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl ScramHash {
    /// The mechanism name.
    pub fn mechanism(self) -> &'static str {
        match self {
            ScramHash::Sha256 => "SCRAM-SHA-256",
            ScramHash::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramHash::Sha256 => hmac::HMAC_SHA256,
            ScramHash::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramHash::Sha256 => &digest::SHA256,
            ScramHash::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramHash::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramHash::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }
}

/// Why a SCRAM exchange failed on the client side.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScramError {
    /// The server's message does not follow the grammar.
    #[error("malformed server message: {0}")]
    Malformed(&'static str),
    /// The server nonce does not start with the client nonce (or adds nothing).
    #[error("the server nonce does not extend the client nonce")]
    NonceMismatch,
    /// The iteration count is below [`MIN_ITERATIONS`].
    #[error("the server asks for {0} iterations, fewer than the 4096 required")]
    TooFewIterations(u32),
    /// The server refused the proof (`e=…` in its final message).
    #[error("the server refused the authentication: {0}")]
    ServerError(String),
    /// The server's signature is wrong: it does not know the password.
    #[error("the server's signature does not verify: the server is not who it claims")]
    BadServerSignature,
}

/// A SCRAM exchange in progress.
pub struct ScramClient {
    hash: ScramHash,
    password: Vec<u8>,
    nonce: String,
    first_bare: String,
    /// The server signature the final message must carry.
    expected: Option<Vec<u8>>,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient").field("hash", &self.hash).field("password", &"[redacted]").finish()
    }
}

/// `saslname`: `=` and `,` escaped as `=3D` and `=2C`.
fn saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

impl ScramClient {
    /// Starts an exchange with a fresh random nonce.
    pub fn new(hash: ScramHash, user: &str, password: &str) -> Self {
        let mut raw = [0u8; 24];
        for b in raw.iter_mut() {
            *b = fastrand::u8(..);
        }
        // The OS generator when it answers; fastrand (seeded from the OS) otherwise.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw);
        Self::with_nonce(hash, user, password, &B64.encode(raw))
    }

    /// Starts an exchange with a given nonce (printable, no comma): for tests.
    pub fn with_nonce(hash: ScramHash, user: &str, password: &str, nonce: &str) -> Self {
        let first_bare = format!("n={},r={nonce}", saslname(user));
        ScramClient {
            hash,
            password: password.as_bytes().to_vec(),
            nonce: nonce.to_owned(),
            first_bare,
            expected: None,
        }
    }

    /// The client-first message.
    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.first_bare).into_bytes()
    }

    /// Answers the server-first message with the client-final message (with the proof).
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let text = std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(ScramError::ServerError(e.chars().take(200).collect()));
        }
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for (i, attr) in text.split(',').enumerate() {
            match attr.split_once('=') {
                Some(("r", v)) if i == 0 => nonce = Some(v),
                Some(("s", v)) if i == 1 => salt = Some(v),
                Some(("i", v)) if i == 2 => iterations = Some(v),
                Some(("m", _)) => return Err(ScramError::Malformed("mandatory extension (m=) not supported")),
                Some(_) if i > 2 => {} // extensions
                _ => return Err(ScramError::Malformed("expected r=…,s=…,i=…")),
            }
        }
        let nonce = nonce.ok_or(ScramError::Malformed("no nonce"))?;
        let salt = B64
            .decode(salt.ok_or(ScramError::Malformed("no salt"))?)
            .map_err(|_| ScramError::Malformed("salt is not base64"))?;
        let iterations: u32 = iterations
            .ok_or(ScramError::Malformed("no iteration count"))?
            .parse()
            .map_err(|_| ScramError::Malformed("iteration count is not a number"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() <= self.nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        if iterations < MIN_ITERATIONS {
            return Err(ScramError::TooFewIterations(iterations));
        }
        let len = self.hash.digest().output_len();
        let mut salted = vec![0u8; len];
        let rounds = std::num::NonZeroU32::new(iterations).ok_or(ScramError::TooFewIterations(0))?;
        pbkdf2::derive(self.hash.pbkdf2(), rounds, &salt, &self.password, &mut salted);
        let salted_key = hmac::Key::new(self.hash.hmac(), &salted);
        let client_key = hmac::sign(&salted_key, b"Client Key");
        let stored_key = digest::digest(self.hash.digest(), client_key.as_ref());
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.first_bare);
        let client_signature =
            hmac::sign(&hmac::Key::new(self.hash.hmac(), stored_key.as_ref()), auth_message.as_bytes());
        let proof: Vec<u8> = client_key.as_ref().iter().zip(client_signature.as_ref()).map(|(k, s)| k ^ s).collect();
        let server_key = hmac::sign(&salted_key, b"Server Key");
        let server_signature =
            hmac::sign(&hmac::Key::new(self.hash.hmac(), server_key.as_ref()), auth_message.as_bytes());
        self.expected = Some(server_signature.as_ref().to_vec());
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: its signature must verify.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let text = std::str::from_utf8(server_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(ScramError::ServerError(e.chars().take(200).collect()));
        }
        let v =
            text.split(',').next().and_then(|a| a.strip_prefix("v=")).ok_or(ScramError::Malformed("expected v=…"))?;
        let got = B64.decode(v).map_err(|_| ScramError::Malformed("signature is not base64"))?;
        let expected = self.expected.as_deref().ok_or(ScramError::Malformed("final message before the first"))?;
        // Constant time is not needed for a value the server sent us, but costs nothing.
        if got.len() == expected.len() && got.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0 {
            Ok(())
        } else {
            Err(ScramError::BadServerSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677, section 3: SCRAM-SHA-256 with user "user" and password "pencil".
    #[test]
    fn rfc7677_example() {
        let mut c = ScramClient::with_nonce(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(c.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let fin = c.client_final(first).unwrap();
        assert_eq!(
            std::str::from_utf8(&fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap();
        assert_eq!(
            c.verify_server_final(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Err(ScramError::BadServerSignature)
        );
        assert_eq!(c.verify_server_final(b"e=invalid-proof"), Err(ScramError::ServerError("invalid-proof".into())));
    }

    #[test]
    fn refuses_bad_server_first_messages() {
        let mut c = ScramClient::with_nonce(ScramHash::Sha512, "u,=x", "p", "abc");
        assert_eq!(c.client_first(), b"n,,n=u=2C=3Dx,r=abc");
        for (msg, want) in [
            (&b"r=xyz123,s=c2FsdA==,i=4096"[..], ScramError::NonceMismatch),
            (b"r=abc,s=c2FsdA==,i=4096", ScramError::NonceMismatch),
            (b"r=abcdef,s=c2FsdA==,i=4095", ScramError::TooFewIterations(4095)),
            (b"r=abcdef,s=!!!,i=4096", ScramError::Malformed("salt is not base64")),
            (b"r=abcdef,i=4096", ScramError::Malformed("expected r=…,s=…,i=…")),
            (b"\xff", ScramError::Malformed("not UTF-8")),
            (b"", ScramError::Malformed("expected r=…,s=…,i=…")),
            (b"m=ext,r=abcdef,s=c2FsdA==,i=4096", ScramError::Malformed("mandatory extension (m=) not supported")),
            (b"r=abcdef,s=c2FsdA==,i=99999999999", ScramError::Malformed("iteration count is not a number")),
        ] {
            assert_eq!(c.client_final(msg), Err(want), "{:?}", String::from_utf8_lossy(msg));
        }
        assert!(c.verify_server_final(b"v=x").is_err(), "no final before the first");
        let secret = ScramClient::with_nonce(ScramHash::Sha256, "u", "hunter2", "n");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
