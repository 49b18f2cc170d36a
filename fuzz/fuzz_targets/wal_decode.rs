//! WAL decoding of arbitrary bytes returns a record or an error, never panics; whatever
//! decodes re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_engine::wal::{decode_batch, decode_record, encode_batch, encode_record};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(record) = decode_record(bytes) {
        assert_eq!(decode_record(&encode_record(&record)).as_ref(), Ok(&record));
    }
    if let Ok(batch) = decode_batch(bytes) {
        assert_eq!(decode_batch(&encode_batch(&batch)).as_ref(), Ok(&batch));
    }
});
