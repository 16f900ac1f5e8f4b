//! Random and mutated bytes never panic any reader.

use proptest::prelude::*;

use crate::key::{decrypt_pkcs8, normalize};
use crate::store::{self, jks, store_from_bytes};

fn everything(bytes: Vec<u8>) {
    let store = store_from_bytes("fuzz", bytes.clone());
    let _ = store::trusted_certs(&store, None, "p");
    let _ = store::trusted_certs(&store, Some("pw"), "p");
    let _ = store::key_entry(&store, Some("pw"), None);
    let _ = jks::parse(&bytes, Some("pw"));
    let _ = jks::recover_key(&bytes, "pw");
    let _ = decrypt_pkcs8(&bytes, "pw");
    let _ = normalize(rustls_pki_types::PrivateKeyDer::Pkcs8(bytes.clone().into()));
    let _ = normalize(rustls_pki_types::PrivateKeyDer::Sec1(bytes.into()));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        everything(bytes);
    }

    #[test]
    fn random_jks_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = jks::MAGIC.to_vec();
        bytes.extend_from_slice(&[0, 0, 0, 2]);
        bytes.extend_from_slice(&body);
        everything(bytes);
    }

    #[test]
    fn mutated_real_stores_never_panic(which in 0usize..4, pos in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
        let f = super::fixture();
        let src = [&f.jks_rsa, &f.p12_keytool_ec, &f.pem_keystore_ec, &f.ec_3des][which];
        let mut bytes = std::fs::read(src).unwrap();
        let i = pos % bytes.len();
        bytes[i] = byte;
        bytes.truncate(cut % (bytes.len() + 1));
        everything(bytes);
    }
}

#[test]
fn modified_utf8_aliases_and_huge_counts() {
    // An entry count of 2^32-1 with nothing after it: a clean error, no allocation.
    let mut bytes = jks::MAGIC.to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 2, 0xFF, 0xFF, 0xFF, 0xFF]);
    assert!(matches!(jks::parse(&bytes, None), Err(jks::JksProblem::Corrupt(_))));
    // A certificate announcing 4 GiB.
    let mut bytes = jks::MAGIC.to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 1, b'a']);
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
    assert!(matches!(jks::parse(&bytes, None), Err(jks::JksProblem::Corrupt(_))));
}
