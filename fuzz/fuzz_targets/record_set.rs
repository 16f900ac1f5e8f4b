//! Record data as a Fetch response carries it: v2 batches and legacy message sets,
//! CRC checks off so the fuzzer reaches the record decoder.
#![no_main]
use bytes::Bytes;
use ferrokafka_protocol::records::{AbortedTransactions, DecodeOptions, RecordSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = DecodeOptions { check_crcs: false, max_decompressed_bytes: 1 << 20 };
    let mut filter = AbortedTransactions::new(vec![]);
    for batch in RecordSet::new(Bytes::copy_from_slice(data), opts).flatten() {
        let _ = filter.retain(&batch);
        let _ = batch.control_marker();
        for r in batch.records().flatten() {
            for h in r.headers.iter() {
                let _ = h.key_str();
            }
        }
    }
});
