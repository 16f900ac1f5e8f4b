//! Each decompressor with a 1 MiB limit: no panic, no allocation past the limit.
#![no_main]
use ferrokafka_protocol::compression::decompress;
use ferrokafka_protocol::Compression;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, input)) = data.split_first() else { return };
    let codec = [Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd][sel as usize % 4];
    if let Ok(out) = decompress(codec, input, 1 << 20, 0) {
        assert!(out.len() <= 1 << 20);
    }
});
