//! Bearer tokens and what each may do.
//!
//! Tokens are configured by their SHA-256 only, so neither the config file
//! nor `riverlog config` ever holds one in clear. With no token configured
//! every caller may do everything.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::model::groups::CheckpointOwner;
use crate::model::names::{StreamName, StreamPattern};

/// One `[[auth.tokens]]` entry of the config file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who the token belongs to; appears in logs and errors.
    pub name: String,
    /// Lowercase or uppercase hex SHA-256 of the bearer token.
    pub sha256: String,
    /// Stream patterns this token may publish to.
    #[serde(default)]
    pub publish: Vec<String>,
    /// Stream patterns this token may read, subscribe to, consume and
    /// checkpoint.
    #[serde(default)]
    pub subscribe: Vec<String>,
    /// May create and delete streams and groups, and trim.
    #[serde(default)]
    pub admin: bool,
    /// May scrape `/metrics`, whose series name streams and groups.
    #[serde(default)]
    pub metrics: bool,
}

impl TokenConfig {
    /// The entry's body as TOML lines.
    pub fn to_toml(&self) -> String {
        let list = |items: &[String]| {
            toml::Value::Array(items.iter().cloned().map(toml::Value::String).collect())
        };
        let mut out = String::new();
        let _ = writeln!(out, "name = {}", toml::Value::String(self.name.clone()));
        let _ = writeln!(out, "sha256 = {}", toml::Value::String(self.sha256.clone()));
        let _ = writeln!(out, "publish = {}", list(&self.publish));
        let _ = writeln!(out, "subscribe = {}", list(&self.subscribe));
        let _ = writeln!(out, "admin = {}", self.admin);
        let _ = writeln!(out, "metrics = {}", self.metrics);
        out
    }
}

/// The `[auth]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// Configured tokens; none: auth is off.
    pub tokens: Vec<TokenConfig>,
}

impl AuthConfig {
    /// Checks every token; the error names the offending key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let mut names = HashMap::new();
        let mut digests = HashMap::new();
        for (i, token) in self.tokens.iter().enumerate() {
            let key = |field: &str| format!("auth.tokens[{i}].{field}");
            if token.name.trim().is_empty() {
                return Err((key("name"), "must not be empty".into()));
            }
            if let Some(first) = names.insert(token.name.as_str(), i) {
                return Err((
                    key("name"),
                    format!(
                        "{:?} is already the name of auth.tokens[{first}]",
                        token.name
                    ),
                ));
            }
            let digest = parse_digest(&token.sha256).ok_or_else(|| {
                (
                    key("sha256"),
                    "must be 64 hex digits: the SHA-256 of the token, never the token".into(),
                )
            })?;
            if let Some(first) = digests.insert(digest, i) {
                return Err((
                    key("sha256"),
                    format!("the same token is already configured as auth.tokens[{first}]"),
                ));
            }
            for (field, patterns) in [("publish", &token.publish), ("subscribe", &token.subscribe)]
            {
                for (j, pattern) in patterns.iter().enumerate() {
                    StreamPattern::parse(pattern).map_err(|reason| {
                        (
                            format!("{}[{j}]", key(field)),
                            format!("{pattern:?}: {reason}"),
                        )
                    })?;
                }
            }
        }
        Ok(())
    }
}

fn parse_digest(hex_digest: &str) -> Option<[u8; 32]> {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut digest).ok()?;
    Some(digest)
}

/// What a call needs on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Append events.
    Publish,
    /// Read, subscribe, consume, checkpoint.
    Subscribe,
    /// Create and delete streams and groups, trim.
    Admin,
    /// Scrape `/metrics` (not about one stream).
    Metrics,
}

impl Permission {
    /// The name used in config and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Subscribe => "subscribe",
            Self::Admin => "admin",
            Self::Metrics => "metrics",
        }
    }
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token, or one that is not configured.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The token may not do this.
    #[error("token {token:?} lacks {} permission{}", permission.as_str(),
        stream.as_ref().map(|s| format!(" on stream {s:?}")).unwrap_or_default())]
    PermissionDenied {
        /// The token's name.
        token: String,
        /// What was needed.
        permission: Permission,
        /// On which stream, if one.
        stream: Option<String>,
    },
}

/// Who is calling and what they may do.
#[derive(Debug)]
pub struct Principal {
    /// The token's name (`anonymous` when auth is off).
    pub name: String,
    publish: Vec<StreamPattern>,
    /// `None`: every stream.
    subscribe: Option<Arc<[StreamPattern]>>,
    admin: bool,
    metrics: bool,
    /// Whether anything is restricted (auth on).
    restricted: bool,
}

fn patterns(list: &[String]) -> Vec<StreamPattern> {
    // Validated at start-up; an invalid entry can only match nothing.
    list.iter()
        .filter_map(|p| StreamPattern::parse(p).ok())
        .collect()
}

impl Principal {
    /// The caller when auth is off: may do everything.
    pub fn open() -> Self {
        Self {
            name: "anonymous".into(),
            publish: Vec::new(),
            subscribe: None,
            admin: true,
            metrics: true,
            restricted: false,
        }
    }

    fn from_config(token: &TokenConfig) -> Self {
        let subscribe = patterns(&token.subscribe);
        let everything = subscribe.iter().any(|p| p.as_str() == "*");
        Self {
            name: token.name.clone(),
            publish: patterns(&token.publish),
            subscribe: (!everything).then(|| subscribe.into()),
            admin: token.admin,
            metrics: token.metrics,
            restricted: true,
        }
    }

    fn allowed(&self, permission: Permission, stream: &str) -> bool {
        if !self.restricted {
            return true;
        }
        match permission {
            Permission::Admin => self.admin,
            Permission::Metrics => self.metrics,
            Permission::Publish => self.publish.iter().any(|p| p.matches(stream)),
            Permission::Subscribe => self
                .subscribe
                .as_ref()
                .is_none_or(|list| list.iter().any(|p| p.matches(stream))),
        }
    }

    fn denied(&self, permission: Permission, stream: Option<&str>) -> AuthError {
        AuthError::PermissionDenied {
            token: self.name.clone(),
            permission,
            stream: stream.map(str::to_owned),
        }
    }

    /// Requires `permission` on `stream`.
    pub fn require(&self, permission: Permission, stream: &StreamName) -> Result<(), AuthError> {
        if self.allowed(permission, stream.as_str()) {
            Ok(())
        } else {
            Err(self.denied(permission, Some(stream.as_str())))
        }
    }

    /// Requires `permission` on at least some stream: for calls that are
    /// not about one stream (global checkpoints, pattern subscriptions,
    /// whose events are then limited by [`Principal::readable`]).
    pub fn require_some(&self, permission: Permission) -> Result<(), AuthError> {
        let some = !self.restricted
            || match permission {
                Permission::Admin => self.admin,
                Permission::Metrics => self.metrics,
                Permission::Publish => !self.publish.is_empty(),
                Permission::Subscribe => self.subscribe.as_ref().is_none_or(|l| !l.is_empty()),
            };
        if some {
            Ok(())
        } else {
            Err(self.denied(permission, None))
        }
    }

    /// Requires that a subscription to `pattern` could deliver something:
    /// some stream matching it must be readable. (What it then delivers is
    /// limited by [`Principal::readable`].)
    pub fn require_pattern(&self, pattern: &str) -> Result<(), AuthError> {
        let readable = match self.readable() {
            None => return Ok(()),
            Some(list) => list,
        };
        if readable
            .iter()
            .any(|p| crate::model::names::globs_intersect(p.as_str(), pattern))
        {
            Ok(())
        } else {
            Err(self.denied(Permission::Subscribe, Some(pattern)))
        }
    }

    /// The streams this caller may read; `None`: all of them.
    pub fn readable(&self) -> Option<Arc<[StreamPattern]>> {
        if self.restricted {
            self.subscribe.clone()
        } else {
            None
        }
    }

    /// Whose checkpoints this caller reads and moves: the token's own (by
    /// its name), or the shared ones when auth is off.
    pub fn checkpoint_owner(&self) -> CheckpointOwner {
        if self.restricted {
            CheckpointOwner::token(&self.name)
        } else {
            CheckpointOwner::shared()
        }
    }

    /// Whether this caller may read `stream`.
    pub fn may_read(&self, stream: &str) -> bool {
        self.allowed(Permission::Subscribe, stream)
    }
}

/// Resolves bearer tokens to principals.
#[derive(Debug)]
pub struct Authenticator {
    /// `None`: auth is off.
    by_digest: Option<HashMap<[u8; 32], Arc<Principal>>>,
    open: Arc<Principal>,
}

impl Authenticator {
    /// Builds the lookup from validated config.
    pub fn new(config: &AuthConfig) -> Self {
        let by_digest = (!config.tokens.is_empty()).then(|| {
            config
                .tokens
                .iter()
                .filter_map(|t| {
                    Some((
                        parse_digest(&t.sha256)?,
                        Arc::new(Principal::from_config(t)),
                    ))
                })
                .collect()
        });
        Self {
            by_digest,
            open: Arc::new(Principal::open()),
        }
    }

    /// Whether tokens are required.
    pub fn enabled(&self) -> bool {
        self.by_digest.is_some()
    }

    /// Resolves the value of an `authorization` header.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Arc<Principal>, AuthError> {
        let Some(tokens) = &self.by_digest else {
            return Ok(self.open.clone());
        };
        let header = authorization.ok_or(AuthError::Unauthenticated(
            "missing `authorization: Bearer <token>` metadata",
        ))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Unauthenticated(
                "authorization metadata must be `Bearer <token>`",
            ))?;
        // Only digests are compared: looking one up reveals nothing useful
        // about the tokens themselves.
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        tokens
            .get(&digest)
            .cloned()
            .ok_or(AuthError::Unauthenticated("unknown token"))
    }
}

/// The hex SHA-256 of a token, as `[[auth.tokens]]` wants it.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(
        name: &str,
        secret: &str,
        publish: &[&str],
        subscribe: &[&str],
        admin: bool,
    ) -> TokenConfig {
        TokenConfig {
            name: name.into(),
            sha256: token_digest(secret),
            publish: publish.iter().map(|s| s.to_string()).collect(),
            subscribe: subscribe.iter().map(|s| s.to_string()).collect(),
            admin,
            metrics: false,
        }
    }

    fn stream(s: &str) -> StreamName {
        StreamName::parse(s).unwrap()
    }

    #[test]
    fn no_tokens_means_everyone_may_do_everything() {
        let auth = Authenticator::new(&AuthConfig::default());
        assert!(!auth.enabled());
        let p = auth.authenticate(None).unwrap();
        assert!(p.require(Permission::Admin, &stream("a")).is_ok());
        assert!(p.readable().is_none());
    }

    #[test]
    fn tokens_are_checked_by_digest_and_scoped_by_pattern() {
        let config = AuthConfig {
            tokens: vec![token(
                "ingest",
                "s3cret",
                &["orders:*"],
                &["orders:*"],
                false,
            )],
        };
        config.validate().unwrap();
        let auth = Authenticator::new(&config);
        assert!(matches!(
            auth.authenticate(None),
            Err(AuthError::Unauthenticated(_))
        ));
        assert!(matches!(
            auth.authenticate(Some("Bearer nope")),
            Err(AuthError::Unauthenticated(_))
        ));
        assert!(matches!(
            auth.authenticate(Some("s3cret")),
            Err(AuthError::Unauthenticated(_))
        ));
        let p = auth.authenticate(Some("Bearer s3cret")).unwrap();
        assert_eq!(p.name, "ingest");
        assert!(p.require(Permission::Publish, &stream("orders:1")).is_ok());
        assert!(
            p.require(Permission::Publish, &stream("billing:1"))
                .is_err()
        );
        assert!(p.require(Permission::Admin, &stream("orders:1")).is_err());
        assert!(p.may_read("orders:2") && !p.may_read("billing:2"));
        assert!(p.require_some(Permission::Subscribe).is_ok());
        assert!(p.require_some(Permission::Admin).is_err());
    }

    #[test]
    fn bad_token_config_names_the_key() {
        let mut bad = token("a", "x", &[], &[], false);
        bad.sha256 = "s3cret".into();
        let err = AuthConfig { tokens: vec![bad] }.validate().unwrap_err();
        assert_eq!(err.0, "auth.tokens[0].sha256");

        let err = AuthConfig {
            tokens: vec![token("a", "x", &["bad pattern"], &[], false)],
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.0, "auth.tokens[0].publish[0]");

        let err = AuthConfig {
            tokens: vec![
                token("a", "x", &[], &[], false),
                token("a", "y", &[], &[], false),
            ],
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.0, "auth.tokens[1].name");
    }
}
