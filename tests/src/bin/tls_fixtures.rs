//! Writes the stores ferrokafka-tls's unit tests read (`tls/tests/fixtures/`), with the
//! real tools (openssl, keytool) and certificates valid for 100 years. Run by
//! `scripts/tls-fixtures.sh`; the output is committed, as rustls commits its test CA.

use std::path::PathBuf;

use ferrokafka_tests::testgen::{KeyType, Pki, KEY_PASSWORD, STORE_PASSWORD};

fn main() -> Result<(), String> {
    let dir: PathBuf = std::env::args().nth(1).ok_or("usage: tls-fixtures DIR")?.into();
    // The tools run inside the directory: give them absolute paths.
    let dir = std::env::current_dir().map_err(|e| e.to_string())?.join(dir);
    let pki = Pki::kept(&dir, "unit", 36_500)?;
    let sans = "IP:127.0.0.1,DNS:localhost";
    let rsa = pki.leaf("client-rsa", KeyType::Rsa, sans)?;
    let ec = pki.leaf("client-ec", KeyType::Ec, sans)?;
    pki.truststore("JKS", "trust.jks")?;
    pki.truststore("PKCS12", "trust.p12")?;
    pki.keytool_keystore("kt-rsa", KeyType::Rsa, "JKS", KEY_PASSWORD, sans)?;
    pki.keytool_keystore("kt-ec", KeyType::Ec, "JKS", STORE_PASSWORD, sans)?;
    pki.keytool_keystore("kt-ec", KeyType::Ec, "PKCS12", STORE_PASSWORD, sans)?;
    pki.keytool_keystore("kt-rsa", KeyType::Rsa, "PKCS12", STORE_PASSWORD, sans)?;
    pki.openssl_pkcs12(&rsa, STORE_PASSWORD, false, "openssl.p12")?;
    pki.openssl_pkcs12(&ec, STORE_PASSWORD, true, "legacy.p12")?;
    pki.pem_keystore(&ec, "keystore-ec.pem")?;
    pki.encrypted_key(&rsa, true, KEY_PASSWORD, "rsa-pbes2.pem")?;
    pki.encrypted_key(&ec, false, KEY_PASSWORD, "ec-3des.pem")?;
    pki.traditional_key(&rsa, "rsa-pkcs1.pem")?;
    pki.traditional_key(&ec, "ec-sec1.pem")?;
    // Scratch files of the tools (CSRs, extension files, serials) are not fixtures.
    for e in std::fs::read_dir(&dir).map_err(|e| e.to_string())?.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.ends_with(".csr") || name.ends_with(".ext") || name.ends_with(".srl") {
            let _ = std::fs::remove_file(e.path());
        }
    }
    println!("wrote {}", dir.display());
    Ok(())
}
