//! `Arbitrary` for the byte types the `bytes` crate does not cover.

use arbitrary::{Arbitrary, Result, Unstructured};
use bytes::Bytes;

/// Arbitrary bytes as a command payload.
pub(crate) fn bytes(input: &mut Unstructured<'_>) -> Result<Bytes> {
    Ok(Bytes::from(Vec::<u8>::arbitrary(input)?))
}

/// An arbitrary list of commands.
pub(crate) fn byte_list(input: &mut Unstructured<'_>) -> Result<Vec<Bytes>> {
    input
        .arbitrary_iter::<Vec<u8>>()?
        .map(|bytes| bytes.map(Bytes::from))
        .collect()
}
