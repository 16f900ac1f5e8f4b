//! SASL server messages and configuration: SCRAM server-first and server-final
//! messages (after a real client-first), the JAAS parser, the OAUTHBEARER option
//! parsers, and the OIDC token endpoint's HTTP/JSON answer. Every input must end in a value or a typed error, never a panic.
#![no_main]
use ferrokafka_client::sasl::scram::{ScramClient, ScramHash};
use ferrokafka_client::sasl::{jaas, SaslConfig, UnsecuredJwt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (first, rest) = data.split_at(data.len() / 2);
    for hash in [ScramHash::Sha256, ScramHash::Sha512] {
        let mut c = ScramClient::with_nonce(hash, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        // Cheap iteration counts are refused before PBKDF2 runs; keep the fuzzer fast by
        // not letting it ask for millions of rounds.
        let text = String::from_utf8_lossy(first);
        if text.split(",i=").nth(1).and_then(|i| i.split(',').next()).and_then(|i| i.parse::<u32>().ok()).is_some_and(|i| i > 10_000) {
            continue;
        }
        let _ = c.client_final(first);
        let _ = c.verify_server_final(rest);
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(j) = jaas::parse(&text) {
        let _ = format!("{j:?}");
        let _ = UnsecuredJwt::from_jaas(&j.options);
    }
    if let Ok(jwt) = UnsecuredJwt::from_librdkafka(&text) {
        let _ = jwt.issue(std::time::UNIX_EPOCH);
    }
    let _ = SaslConfig::from_keys([("sasl.mechanism", "PLAIN"), ("sasl.jaas.config", text.as_ref())]);
    // The OIDC token endpoint's answer: HTTP head, chunked bodies, JSON, JWT claims.
    let _ = ferrokafka_client::sasl::oidc::parse_token_answer(data);
});
