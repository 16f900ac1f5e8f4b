//! Record data as a Fetch response carries it: v2 batches and legacy message sets,
//! CRC checks off so the fuzzer reaches the record decoder; record views are checked
//! against owned records.
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
        // Owned records and views walk the same bytes: they must agree.
        let owned: Vec<_> = batch.records().map(|r| r.map_err(|e| e.to_string())).collect();
        let viewed: Vec<_> = batch.views().map(|v| v.map(|v| v.to_record()).map_err(|e| e.to_string())).collect();
        assert_eq!(owned, viewed);
        for r in owned.iter().flatten() {
            for h in r.headers.iter() {
                let _ = h.key_str();
            }
            assert_eq!(r.view().headers().iter().count(), r.headers.len());
        }
    }
});
