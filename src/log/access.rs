//! Which permission each operation needs, decided here once for gRPC,
//! HTTP/SSE and grpc-web alike: every [`EventLog`](super::EventLog)
//! operation names itself as an [`Operation`] and calls [`authorize`]
//! first thing, after its names were parsed (a malformed name is
//! INVALID_ARGUMENT whoever asks) and before it reads or changes anything.
//! Fields the transports decode into domain values (retention, start,
//! filter, durations) are checked before it, so a refused caller may
//! first learn that such a field is malformed; a publish's events are
//! decoded and counted against the rate only after it (`admit`). The
//! transports take a subscription slot only after the domain accepted the
//! call.
//!
//! The rules, as DESIGN.md states them: reading needs subscribe, appending
//! publish, creating, deleting and trimming admin; whoever decides where a
//! stream's events go (a group and its dead-letter stream, Take) needs
//! subscribe on the source and publish on the destination; a checkpoint
//! belongs to the token that commits it; nothing listed names a stream the
//! caller may not read.

use crate::auth::{AuthError, Permission, Principal};
use crate::model::names::{StreamName, StreamSelector};

/// What a caller asks to do, with the streams it touches.
#[derive(Debug, Clone, Copy)]
pub enum Operation<'a> {
    /// Describe a stream, read its history, list or describe its groups.
    Inspect(&'a StreamName),
    /// List streams (only readable ones are shown).
    ListStreams,
    /// Append to a stream.
    Publish(&'a StreamName),
    /// Follow streams and patterns.
    Subscribe(&'a [StreamSelector]),
    /// Take events off a stream: it reads and removes them.
    Take(&'a StreamName),
    /// Create, delete or trim a stream; delete a group or a consumer.
    Administer(&'a StreamName),
    /// Create a group on `stream`, dead-lettering to `dead_letter` (when
    /// that name is valid; an invalid one is refused as an argument later).
    CreateGroup {
        /// The group's stream.
        stream: &'a StreamName,
        /// Where its dead letters go.
        dead_letter: Option<&'a StreamName>,
    },
    /// Change where a group of `stream` reads (seek, redrive): like
    /// creating one, it decides which of the stream's events go out again.
    ChangeGroup(&'a StreamName),
    /// Receive, settle or list the pending work of a group of a stream.
    Consume(&'a StreamName),
    /// Commit or read one of the caller's checkpoints: of a stream, or
    /// global (`None`).
    Checkpoint(Option<&'a StreamName>),
    /// List the caller's checkpoints (only readable streams' are shown).
    ListCheckpoints,
}

impl Operation<'_> {
    /// The permission this operation needs on its stream (for the
    /// operations with more than one requirement, the first checked).
    pub fn permission(&self) -> Permission {
        match self {
            Self::Publish(_) => Permission::Publish,
            Self::Administer(_) | Self::CreateGroup { .. } | Self::ChangeGroup(_) => {
                Permission::Admin
            }
            Self::Inspect(_)
            | Self::ListStreams
            | Self::Subscribe(_)
            | Self::Take(_)
            | Self::Consume(_)
            | Self::Checkpoint(_)
            | Self::ListCheckpoints => Permission::Subscribe,
        }
    }
}

/// Checks that `caller` may do `operation`.
///
/// # Errors
/// [`AuthError::PermissionDenied`] naming the first permission missing.
pub fn authorize(caller: &Principal, operation: Operation<'_>) -> Result<(), AuthError> {
    let permission = operation.permission();
    match operation {
        Operation::Inspect(stream)
        | Operation::Publish(stream)
        | Operation::Administer(stream)
        | Operation::Consume(stream)
        | Operation::Checkpoint(Some(stream)) => caller.require(permission, stream),
        // Not about one stream: the caller must be able to read some, and
        // what it is then shown is limited to what it may read.
        Operation::ListStreams | Operation::Checkpoint(None) | Operation::ListCheckpoints => {
            caller.require_some(permission)
        }
        // Take removes what it reads: it needs both.
        Operation::Take(stream) => {
            caller.require(Permission::Subscribe, stream)?;
            caller.require(Permission::Publish, stream)
        }
        // Whoever decides where a stream's events are copied (here: its
        // dead-letter stream) must be allowed to read them, and to write
        // where they go.
        Operation::CreateGroup {
            stream,
            dead_letter,
        } => {
            caller.require(Permission::Admin, stream)?;
            caller.require(Permission::Subscribe, stream)?;
            match dead_letter {
                Some(destination) => caller.require(Permission::Publish, destination),
                None => Ok(()),
            }
        }
        // Whoever makes a group hand out events again must be allowed to
        // read them.
        Operation::ChangeGroup(stream) => {
            caller.require(Permission::Admin, stream)?;
            caller.require(Permission::Subscribe, stream)
        }
        // Subscribe on each stream named; for each pattern, some readable
        // stream it can match (events of others are then left out).
        Operation::Subscribe(selectors) => selectors.iter().try_for_each(|s| match s {
            StreamSelector::Name(name) => caller.require(Permission::Subscribe, name),
            StreamSelector::Pattern(pattern) => caller.require_pattern(pattern.as_str()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AuthConfig, Authenticator, TokenConfig, token_digest};

    fn caller(publish: &[&str], subscribe: &[&str], admin: bool) -> std::sync::Arc<Principal> {
        let config = AuthConfig {
            tokens: vec![TokenConfig {
                name: "t".into(),
                sha256: token_digest("secret"),
                publish: publish.iter().map(|s| s.to_string()).collect(),
                subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
                admin,
                metrics: false,
            }],
        };
        Authenticator::new(&config)
            .authenticate(Some("Bearer secret"))
            .unwrap()
    }

    fn stream(s: &str) -> StreamName {
        StreamName::parse(s).unwrap()
    }

    fn denied(result: Result<(), AuthError>) -> (Permission, Option<String>) {
        match result {
            Err(AuthError::PermissionDenied {
                permission, stream, ..
            }) => (permission, stream),
            other => panic!("expected a denial, got {other:?}"),
        }
    }

    #[test]
    fn take_needs_subscribe_and_publish_on_its_stream() {
        let orders = stream("orders:1");
        let reader = caller(&[], &["orders:*"], false);
        assert_eq!(
            denied(authorize(&reader, Operation::Take(&orders))),
            (Permission::Publish, Some("orders:1".into()))
        );
        let writer = caller(&["orders:*"], &[], false);
        assert_eq!(
            denied(authorize(&writer, Operation::Take(&orders))).0,
            Permission::Subscribe
        );
        let both = caller(&["orders:*"], &["orders:*"], false);
        assert!(authorize(&both, Operation::Take(&orders)).is_ok());
    }

    #[test]
    fn creating_a_group_needs_admin_subscribe_on_its_stream_and_publish_on_its_dead_letters() {
        let (orders, secret) = (stream("orders:eu"), stream("secret:leak"));
        let leaker = caller(&["secret:*"], &["secret:*"], true);
        let create = |dead_letter| Operation::CreateGroup {
            stream: &orders,
            dead_letter,
        };
        assert_eq!(
            denied(authorize(&leaker, create(Some(&secret)))),
            (Permission::Subscribe, Some("orders:eu".into()))
        );
        let orders_admin = caller(&["orders:*"], &["orders:*"], true);
        assert_eq!(
            denied(authorize(&orders_admin, create(Some(&secret)))),
            (Permission::Publish, Some("secret:leak".into()))
        );
        assert!(authorize(&orders_admin, create(None)).is_ok());
        let reader = caller(&[], &["orders:*"], false);
        assert_eq!(
            denied(authorize(&reader, create(None))).0,
            Permission::Admin
        );
    }

    #[test]
    fn a_subscription_needs_each_name_readable_and_each_pattern_able_to_match_a_readable_stream() {
        let reader = caller(&[], &["orders:*"], false);
        let select = |inputs: &[&str]| -> Vec<StreamSelector> {
            inputs
                .iter()
                .map(|s| StreamSelector::parse(s).unwrap())
                .collect()
        };
        assert!(authorize(&reader, Operation::Subscribe(&select(&["*", "orders:1"]))).is_ok());
        assert_eq!(
            denied(authorize(
                &reader,
                Operation::Subscribe(&select(&["orders:1", "billing:1"]))
            )),
            (Permission::Subscribe, Some("billing:1".into()))
        );
        assert_eq!(
            denied(authorize(
                &reader,
                Operation::Subscribe(&select(&["billing:*"]))
            ))
            .1,
            Some("billing:*".into())
        );
        let writer = caller(&["orders:*"], &[], false);
        assert!(authorize(&writer, Operation::Subscribe(&select(&["orders:*"]))).is_err());
    }

    #[test]
    fn global_checkpoints_and_listings_need_subscribe_on_some_stream() {
        let reader = caller(&[], &["orders:*"], false);
        let writer = caller(&["orders:*"], &[], false);
        for op in [
            Operation::Checkpoint(None),
            Operation::ListCheckpoints,
            Operation::ListStreams,
        ] {
            assert!(authorize(&reader, op).is_ok());
            assert_eq!(
                denied(authorize(&writer, op)),
                (Permission::Subscribe, None)
            );
        }
    }
}
