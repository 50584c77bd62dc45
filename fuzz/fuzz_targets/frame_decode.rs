//! Arbitrary bytes as a peer connection's stream: the frame reader refuses oversized
//! lengths before allocating, stops cleanly on garbage or truncation, never panics, and
//! every frame it decodes re-encodes to an equal frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_tokio::transport::codec::{FrameReader, decode_frame, encode_frame};

/// A small limit, so that the fuzzer reaches the refusal of oversized frames quickly.
const FRAME_BYTES_MAX: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    // A payload on its own.
    if let Ok(frame) = decode_frame(data) {
        let mut encoded = Vec::new();
        encode_frame(&frame, &mut encoded).expect("a decoded frame encodes");
        let decoded = decode_frame(&encoded[4..]).expect("a re-encoded frame decodes");
        assert_eq!(decoded, frame);
    }
    // The same bytes as a stream of length-prefixed frames.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut reader = FrameReader::new(data, FRAME_BYTES_MAX);
        while let Ok(Some(frame)) = reader.next_frame().await {
            let mut encoded = Vec::new();
            encode_frame(&frame, &mut encoded).expect("a decoded frame encodes");
            assert!(encoded.len() <= data.len(), "a frame is never longer than its input");
        }
    });
});
