//! Arbitrary bytes through the wire decoding of a `Message`, the codec the TCP transport
//! uses: decoding never panics, and whatever decodes re-encodes to bytes that decode to
//! an equal message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_tokio::transport::codec::{decode_message, encode_message};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = decode_message(data) {
        let encoded = encode_message(&message);
        let decoded = decode_message(&encoded).expect("a re-encoded message decodes");
        assert_eq!(decoded, message);
    }
});
