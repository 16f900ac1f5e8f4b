//! Configuration parsing from a string map (lines of key=value).
#![no_main]
use ferrokafka_client::config::ClientConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let pairs: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    if let Ok(c) = ClientConfig::from_pairs(pairs) {
        let _ = format!("{c:?}");
    }
});
