//! The streaming checkpoint reader.
#![no_main]
use ferrokafka_streaming::checkpoint::Checkpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Checkpoint::parse(data);
});
