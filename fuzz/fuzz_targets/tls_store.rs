//! Trust and key stores: the input as a JKS/PKCS#12/PEM file, and as inline PEM.
#![no_main]
use ferrokafka_tls::TlsConnector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("ferrokafka-fuzz-store-{}", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let p = path.to_string_lossy().into_owned();
    let _ = TlsConnector::from_keys("SSL", [("ssl.truststore.location", p.as_str()), ("ssl.truststore.password", "changeit")]);
    let _ = TlsConnector::from_keys("SSL", [("ssl.truststore.location", p.as_str())]);
    let _ = TlsConnector::from_keys("SSL", [("ssl.keystore.location", p.as_str()), ("ssl.keystore.password", "changeit")]);
    let text = String::from_utf8_lossy(data);
    let _ = TlsConnector::from_keys("SSL", [("ssl.truststore.certificates", text.as_ref())]);
    let _ = TlsConnector::from_keys("SSL", [("ssl.keystore.key", text.as_ref()), ("ssl.key.password", "pw")]);
});
