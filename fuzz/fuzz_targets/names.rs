//! Stream names, labels, patterns and selectors (`src/log/names.rs`), and
//! the `*` matching used by patterns, permissions and event filters.
//!
//! Input: UTF-8 text, lines `a`, `b`, `text` (missing lines are empty).
//! Each of `a` and `b` is parsed as every kind of name; `text` is matched.
//!
//! Checked, as `names.rs` documents it:
//! - names and labels are 1-256 characters of `A-Z a-z 0-9 _ - . : /`,
//!   patterns may hold `*` as well; what parses re-parses to the same value;
//! - a selector is a pattern exactly when the input holds a `*`;
//! - `*` matches any run of characters (checked against a reference
//!   matcher), so a pattern matches itself and itself without its stars;
//!   one without `*` matches only the stream of that name;
//! - `globs_intersect` holds whenever some text matches both patterns.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riverlog::model::names::{
    CheckpointName, ConsumerName, GroupName, MAX_NAME_LEN, NameError, StreamName, StreamPattern,
    StreamSelector, glob_match, globs_intersect,
};

/// Longest line the quadratic matching checks run on.
const SHORT: usize = 96;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let mut lines = input.split('\n');
    let a = lines.next().unwrap_or_default();
    let b = lines.next().unwrap_or_default();
    let text = lines.next().unwrap_or_default();

    for s in [a, b] {
        check_parsers(s, &[a, b, text]);
    }

    // The quadratic checks below on short lines only: bugs in matching
    // show on short inputs, and long ones would slow every run tenfold.
    if a.len() > SHORT || b.len() > SHORT || text.len() > SHORT {
        return;
    }

    // Matching, on any text (event filters match types, sources and
    // subjects, which are not names).
    for (p, t) in [(a, text), (b, text), (a, b), (b, a)] {
        assert_eq!(
            glob_match(p, t),
            reference_match(p.as_bytes(), t.as_bytes()),
            "glob_match({p:?}, {t:?})"
        );
    }
    assert!(glob_match(a, a), "{a:?} matches itself");
    assert!(glob_match(a, &a.replace('*', "")), "{a:?} without stars");

    // Intersection: symmetric, and true whenever a text matches both.
    let ab = globs_intersect(a, b);
    assert_eq!(ab, globs_intersect(b, a), "symmetric: {a:?} / {b:?}");
    assert!(globs_intersect(a, a), "{a:?} intersects itself");
    let witnesses = [
        text.to_owned(),
        a.to_owned(),
        b.to_owned(),
        a.replace('*', ""),
        b.replace('*', ""),
    ];
    for w in &witnesses {
        if glob_match(a, w) && glob_match(b, w) {
            assert!(ab, "{w:?} matches both {a:?} and {b:?}");
        }
    }
});

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/')
}

/// The documented rules, written independently of `names.rs`.
fn expected(s: &str, allow_star: bool) -> Result<(), NameError> {
    let len = s.chars().count();
    if len == 0 {
        Err(NameError::Empty)
    } else if len > MAX_NAME_LEN {
        Err(NameError::TooLong(len))
    } else if let Some(c) = s
        .chars()
        .find(|&c| !(is_name_char(c) || (allow_star && c == '*')))
    {
        Err(NameError::BadChar(c))
    } else {
        Ok(())
    }
}

fn check_parsers(s: &str, others: &[&str]) {
    let name = StreamName::parse(s);
    assert_eq!(
        name.clone().map(|_| ()),
        expected(s, false),
        "StreamName {s:?}"
    );
    if let Ok(n) = &name {
        assert_eq!(n.as_str(), s);
        assert_eq!(n.to_string(), s);
        assert_eq!(StreamName::parse(n.as_str()).as_ref(), Ok(n));
    }

    // Group, consumer and checkpoint names follow the stream-name rules.
    macro_rules! agrees_with_stream_names {
        ($($kind:ident),*) => {$(
            let parsed = $kind::parse(s);
            assert_eq!(
                parsed.is_ok(),
                name.is_ok(),
                "{} and StreamName agree on {s:?}",
                stringify!($kind)
            );
            if let Ok(l) = &parsed {
                assert_eq!(l.as_str(), s);
                assert_eq!($kind::parse(l.as_str()).as_ref(), Ok(l));
            }
        )*};
    }
    agrees_with_stream_names!(GroupName, ConsumerName, CheckpointName);

    let pattern = StreamPattern::parse(s);
    assert_eq!(
        pattern.clone().map(|_| ()),
        expected(s, true),
        "StreamPattern {s:?}"
    );
    if let Ok(p) = &pattern {
        assert_eq!(p.as_str(), s);
        assert_eq!(p.to_string(), s);
        assert_eq!(StreamPattern::parse(p.as_str()).as_ref(), Ok(p));
        assert!(p.matches(s), "{s:?} matches itself");
        assert!(p.matches(&s.replace('*', "")), "{s:?} without its stars");
        if !s.contains('*') {
            for o in others {
                assert_eq!(p.matches(o), *o == s, "{s:?} without * on {o:?}");
            }
        }
    }

    match StreamSelector::parse(s) {
        Ok(StreamSelector::Name(n)) => {
            assert!(!s.contains('*'));
            assert_eq!(Ok(&n), name.as_ref());
            for o in others {
                assert_eq!(StreamSelector::Name(n.clone()).matches(o), *o == s);
            }
        }
        Ok(StreamSelector::Pattern(p)) => {
            assert!(s.contains('*'));
            assert_eq!(Ok(&p), pattern.as_ref());
        }
        Err(e) => {
            let kind = if s.contains('*') {
                pattern.map(|_| ())
            } else {
                name.map(|_| ())
            };
            assert_eq!(kind, Err(e), "selector error for {s:?}");
        }
    }
}

/// `*` matches any run of bytes, every other byte itself: the textbook
/// dynamic program, quadratic and obviously right.
fn reference_match(p: &[u8], t: &[u8]) -> bool {
    // row[j]: the pattern so far matches t[..j].
    let mut row = vec![false; t.len() + 1];
    let mut next = vec![false; t.len() + 1];
    row[0] = true;
    for &pc in p {
        if pc == b'*' {
            let mut any = false;
            for j in 0..=t.len() {
                any |= row[j];
                next[j] = any;
            }
        } else {
            next[0] = false;
            for j in 1..=t.len() {
                next[j] = row[j - 1] && t[j - 1] == pc;
            }
        }
        std::mem::swap(&mut row, &mut next);
    }
    row[t.len()]
}
