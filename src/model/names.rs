//! Stream, group, consumer and checkpoint names and stream patterns,
//! parsed once at the edge.

use std::fmt;
use std::sync::Arc;

/// Longest stream name or pattern accepted.
pub const MAX_NAME_LEN: usize = 256;

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/')
}

/// Why a name or pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The input was empty.
    #[error("must not be empty")]
    Empty,
    /// The input was longer than [`MAX_NAME_LEN`].
    #[error("must be at most {MAX_NAME_LEN} characters, got {0}")]
    TooLong(usize),
    /// The input held a character outside the allowed set.
    #[error("character {0:?} is not allowed (use A-Z a-z 0-9 _ - . : /)")]
    BadChar(char),
}

fn check(input: &str, allow_star: bool) -> Result<(), NameError> {
    if input.is_empty() {
        return Err(NameError::Empty);
    }
    let len = input.chars().count();
    if len > MAX_NAME_LEN {
        return Err(NameError::TooLong(len));
    }
    match input
        .chars()
        .find(|&c| !(is_name_char(c) || (allow_star && c == '*')))
    {
        Some(c) => Err(NameError::BadChar(c)),
        None => Ok(()),
    }
}

/// A valid stream name: 1-256 characters of `A-Z a-z 0-9 _ - . : /`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamName(Arc<str>);

impl StreamName {
    /// Parses a stream name.
    pub fn parse(input: &str) -> Result<Self, NameError> {
        check(input, false)?;
        Ok(Self(Arc::from(input)))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Defines a name type of the stream-name alphabet, 1-256 characters,
/// distinct from the others so one cannot be passed for another.
macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Parses a name: 1-256 characters of `A-Z a-z 0-9 _ - . : /`.
            pub fn parse(input: &str) -> Result<Self, NameError> {
                check(input, false)?;
                Ok(Self(Arc::from(input)))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A consumer group's name, unique within its stream.
    GroupName
);
name_type!(
    /// A consumer's name, unique within its group.
    ConsumerName
);
name_type!(
    /// A checkpoint's name, unique per owner (and stream, for per-stream
    /// checkpoints).
    CheckpointName
);

/// A stream pattern: a stream name in which `*` matches any run of
/// characters, `:` included.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamPattern(String);

impl StreamPattern {
    /// Parses a pattern; one without `*` matches only the stream of that name.
    pub fn parse(input: &str) -> Result<Self, NameError> {
        check(input, true)?;
        Ok(Self(input.to_owned()))
    }

    /// The pattern as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `name` matches the pattern.
    pub fn matches(&self, name: &str) -> bool {
        glob_match(&self.0, name)
    }

    /// Whether the pattern matches every stream name (`*`, `**`, ...), so
    /// a read need not test names at all.
    pub fn matches_every_name(&self) -> bool {
        self.0.chars().all(|c| c == '*')
    }
}

impl fmt::Display for StreamPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One entry of a subscription's stream list: an exact name or a pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StreamSelector {
    /// Exactly this stream.
    Name(StreamName),
    /// Every stream whose name matches, including streams created later.
    Pattern(StreamPattern),
}

impl StreamSelector {
    /// Parses a name, or a pattern when the input contains `*`.
    pub fn parse(input: &str) -> Result<Self, NameError> {
        if input.contains('*') {
            StreamPattern::parse(input).map(Self::Pattern)
        } else {
            StreamName::parse(input).map(Self::Name)
        }
    }

    /// Whether the stream called `name` is selected.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Self::Name(n) => n.as_str() == name,
            Self::Pattern(p) => p.matches(name),
        }
    }
}

/// Matches `text` against `pattern`, where `*` matches any run of characters
/// and every other character matches itself.
///
/// Greedy two-pointer matching with backtracking to the last `*`: linear in
/// practice and never exponential, whatever the pattern.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Whether some text matches both patterns (`*` matching any run).
///
/// Dynamic programming over both patterns from their ends: `can[i][j]` says
/// whether `a[i..]` and `b[j..]` match a common text. A star may match
/// nothing, or take the other side's next character (or its whole star).
pub fn globs_intersect(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (n, m) = (a.len(), b.len());
    let mut can = vec![vec![false; m + 1]; n + 1];
    can[n][m] = true;
    for i in (0..=n).rev() {
        for j in (0..=m).rev() {
            if i == n && j == m {
                continue;
            }
            let mut ok = false;
            if i < n && a[i] == b'*' {
                ok |= can[i + 1][j] || (j < m && can[i][j + 1]);
            }
            if j < m && b[j] == b'*' {
                ok |= can[i][j + 1] || (i < n && can[i + 1][j]);
            }
            if i < n && j < m && a[i] != b'*' && b[j] != b'*' && a[i] == b[j] {
                ok |= can[i + 1][j + 1];
            }
            can[i][j] = ok;
        }
    }
    can[0][0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_intersect_when_some_name_matches_both() {
        for (a, b) in [
            ("orders:*", "*"),
            ("orders:*", "orders:eu:*"),
            ("*:dlq", "orders:*"),
            ("orders:eu", "orders:*"),
            ("a*c", "ab*"),
            ("*", "*"),
        ] {
            assert!(globs_intersect(a, b), "{a} / {b}");
            assert!(globs_intersect(b, a), "{b} / {a}");
        }
        for (a, b) in [
            ("orders:*", "payments:*"),
            ("orders:*", "orders"),
            ("a*b", "a*c"),
            ("x", "y"),
        ] {
            assert!(!globs_intersect(a, b), "{a} / {b}");
            assert!(!globs_intersect(b, a), "{b} / {a}");
        }
    }

    #[test]
    fn only_stars_match_every_name() {
        for every in ["*", "**"] {
            assert!(
                StreamPattern::parse(every).unwrap().matches_every_name(),
                "{every}"
            );
        }
        for some in ["orders:*", "*:dlq", "a*b", "orders"] {
            assert!(
                !StreamPattern::parse(some).unwrap().matches_every_name(),
                "{some}"
            );
        }
    }

    #[test]
    fn accepts_the_documented_alphabet() {
        for ok in [
            "a",
            "orders",
            "flow:event:abc-123",
            "A_b.c/d-e:9",
            &"x".repeat(256),
        ] {
            assert!(StreamName::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_empty_long_and_foreign_characters() {
        assert_eq!(StreamName::parse(""), Err(NameError::Empty));
        assert_eq!(
            StreamName::parse(&"x".repeat(257)),
            Err(NameError::TooLong(257))
        );
        assert_eq!(StreamName::parse("a b"), Err(NameError::BadChar(' ')));
        assert_eq!(StreamName::parse("a*"), Err(NameError::BadChar('*')));
        assert_eq!(StreamName::parse("é"), Err(NameError::BadChar('é')));
        assert_eq!(StreamPattern::parse("a?"), Err(NameError::BadChar('?')));
    }

    #[test]
    fn star_matches_any_run_including_separators() {
        assert!(glob_match(
            "store-sync:append:*",
            "store-sync:append:nq:flow:abc"
        ));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(glob_match("a*b*c", "abc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("*:dlq", "orders:eu:dlq"));
        assert!(!glob_match("orders:*", "orders"));
        assert!(!glob_match("orders", "orders:x"));
        assert!(glob_match("**a", "bba"));
    }

    #[test]
    fn selector_is_a_pattern_only_with_a_star() {
        assert!(matches!(
            StreamSelector::parse("a:b"),
            Ok(StreamSelector::Name(_))
        ));
        assert!(matches!(
            StreamSelector::parse("a:*"),
            Ok(StreamSelector::Pattern(_))
        ));
        assert!(StreamSelector::parse("a:*").unwrap().matches("a:z"));
        assert!(!StreamSelector::parse("a:b").unwrap().matches("a:bc"));
    }
}
