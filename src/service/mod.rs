//! What every transport shares, so gRPC (`api`), HTTP/SSE (`http`) and
//! the CLI never import each other: the classification of errors into
//! codes and reasons, the admission of calls (rate limits, subscription
//! slots, event checks), trace context, and the conversions between domain
//! types and their protobuf forms. (Which permission each
//! operation needs is the domain's: `log::access`.)

pub mod admission;
pub mod convert;
pub mod failure;
pub mod trace_context;
