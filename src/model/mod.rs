//! The ground floor both the domain (`log`) and `storage` import, and
//! nothing below it: validated names, stored records, the query shapes
//! reads take, event filters, and the storage error.
//!
//! - `names`: stream names, patterns, selectors and group, consumer and
//!   checkpoint names; the `*` glob riverlog defines.
//! - `records`: positions, sequences, time, stored events and stream info.
//! - `groups`: consumer-group and checkpoint records.
//! - `query`: reading direction and start, trim and take selections.
//! - `filter`: event filters by CloudEvent attributes.
//! - `error`: [`StorageError`].

pub mod error;
pub mod filter;
pub mod groups;
pub mod names;
pub mod query;
pub mod records;

pub use error::StorageError;
