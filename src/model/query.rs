//! What reads and removals select, as the domain asks and storage answers.

use super::records::{Sequence, UnixMicros};

/// Which events Trim removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrimUntil {
    /// All but the newest N.
    MaxEvents(u64),
    /// Those with a sequence below this.
    BeforeSequence(Sequence),
    /// Those recorded before this time.
    BeforeTime(UnixMicros),
}

/// The end of a stream Take removes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TakeEnd {
    /// Lowest sequences first.
    #[default]
    Oldest,
    /// Highest sequences first.
    Newest,
}

/// Reading direction within a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Ascending sequences.
    #[default]
    Forward,
    /// Descending sequences.
    Backward,
}

/// Where a stream read starts (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadFrom {
    /// The first event in the reading direction.
    #[default]
    End,
    /// This sequence.
    Sequence(Sequence),
    /// Events recorded at (forward: or after; backward: or before) this time.
    Time(UnixMicros),
}
