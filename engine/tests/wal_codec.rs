//! WAL frames round-trip, and truncated, bit-flipped or garbage bytes give an error, never a
//! panic and never a wrong record.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use switchboard_engine::wal::{
    decode_batch, decode_record, encode_batch, encode_record, FRAME_HEADER_BYTES,
};
use switchboard_engine::{DeadReason, MessageId, QueueConfig, Record, StoredMessage, WalError};

fn sample_records() -> Vec<Record> {
    let queue: Arc<str> = Arc::from("jobs");
    let message = StoredMessage {
        id: MessageId(0x0193_0000_0000_0000_0000_0000_0000_0042),
        queue: queue.clone(),
        seq: 42,
        priority: 7,
        payload: Arc::from(&b"hello \x00 world"[..]),
        headers: BTreeMap::from([("sender".to_string(), "alice".to_string())]),
        enqueued_at: 1_000,
        not_before: 1_500,
        expires_at: Some(90_000),
        max_attempts: 3,
        attempts: 0,
        dedup_key: Some("k".into()),
        dead: None,
    };
    vec![
        Record::QueueConfigured {
            queue: queue.clone(),
            config: QueueConfig::default(),
        },
        Record::Enqueued {
            message: message.clone(),
            dedup_until: Some(5_000),
        },
        Record::Delivered {
            queue: queue.clone(),
            id: message.id,
            attempts: 1,
        },
        Record::Requeued {
            queue: queue.clone(),
            id: message.id,
            priority: 7,
            seq: 42,
            not_before: 9,
        },
        Record::DeadLettered {
            queue: queue.clone(),
            id: message.id,
            reason: DeadReason::Expired,
            at: 10,
        },
        Record::Redriven {
            queue: queue.clone(),
            id: message.id,
            priority: 7,
            seq: 43,
            now: 11,
            expires_at: None,
        },
        Record::Removed {
            queue: queue.clone(),
            id: message.id,
        },
        Record::DedupForgotten {
            queue,
            key: "k".into(),
        },
    ]
}

#[test]
fn every_record_kind_round_trips() {
    for record in sample_records() {
        assert_eq!(decode_record(&encode_record(&record)).unwrap(), record);
    }
    let batch = sample_records();
    assert_eq!(decode_batch(&encode_batch(&batch)).unwrap(), batch);
}

#[test]
fn every_truncation_is_detected() {
    let frame = encode_batch(&sample_records());
    for len in 0..frame.len() {
        assert!(
            matches!(decode_batch(&frame[..len]), Err(WalError::Truncated { .. })),
            "truncated to {len} bytes"
        );
    }
}

#[test]
fn every_single_bit_flip_is_detected() {
    let frame = encode_batch(&sample_records());
    for byte in 0..frame.len() {
        for bit in 0..8 {
            let mut corrupt = frame.clone();
            corrupt[byte] ^= 1 << bit;
            assert!(
                decode_batch(&corrupt).is_err(),
                "flip of bit {bit} in byte {byte} went unnoticed"
            );
        }
    }
}

#[test]
fn an_unknown_version_is_named() {
    let mut frame = encode_record(&sample_records()[0]);
    frame[0] = 99;
    assert_eq!(decode_record(&frame), Err(WalError::UnknownVersion(99)));
}

#[test]
fn a_huge_declared_length_is_refused_without_allocating() {
    let mut frame = vec![1u8];
    frame.extend_from_slice(&u32::MAX.to_le_bytes());
    frame.extend_from_slice(&[0; 4]);
    assert!(matches!(decode_record(&frame), Err(WalError::TooLarge(_))));
}

#[test]
fn trailing_bytes_are_refused() {
    let mut frame = encode_record(&sample_records()[0]);
    frame.push(0);
    assert_eq!(decode_record(&frame), Err(WalError::TrailingBytes(1)));
}

#[test]
fn a_valid_checksum_over_garbage_is_malformed_not_a_panic() {
    let body = [0xffu8; 16];
    let mut frame = vec![1u8];
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32fast_hash(&body).to_le_bytes());
    frame.extend_from_slice(&body);
    assert!(matches!(decode_record(&frame), Err(WalError::Malformed(_))));
    assert!(frame.len() > FRAME_HEADER_BYTES);
}

fn crc32fast_hash(bytes: &[u8]) -> u32 {
    // The same CRC-32 (IEEE) the codec uses, computed bit by bit so the test does not trust it.
    let mut crc = 0xFFFF_FFFFu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_record(&bytes);
        let _ = decode_batch(&bytes);
    }

    #[test]
    fn arbitrary_bodies_with_valid_checksums_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut frame = vec![1u8];
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32fast_hash(&body).to_le_bytes());
        frame.extend_from_slice(&body);
        let _ = decode_record(&frame);
        let _ = decode_batch(&frame);
    }
}
