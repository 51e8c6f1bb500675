//! The write probe: a scratch write of a chosen size, committed alone, that
//! tells whether storage takes writes again after a batch failed for want
//! of it.

use super::transaction::Transaction;
use crate::model::StorageError;

impl Transaction {
    /// Writes what every append writes (the log head, rewritten as it is
    /// unless this batch moves it anyway) plus `bytes` of scratch data.
    pub(super) async fn probe(&mut self, bytes: usize) -> Result<(), StorageError> {
        if self.log_head.is_none() {
            self.log_head = Some(self.tx.log_head().await?);
        }
        self.log_head_dirty = true;
        self.tx.write_probe(&filler(bytes)).await
    }
}

/// `len` bytes that no storage engine compresses to nothing (xorshift; not
/// for anything but taking up space).
fn filler(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}
