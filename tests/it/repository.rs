//! The repository's own papers: the LICENSE is the Apache-2.0 text every
//! manifest declares, the changelog keeps the Keep a Changelog shape, and
//! the contributing guide names only files that exist. No server here.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// SHA-256 of the Apache License 2.0 as apache.org publishes it
/// (<https://www.apache.org/licenses/LICENSE-2.0.txt>; Debian's
/// /usr/share/common-licenses/Apache-2.0 is the same file).
const APACHE_2_0_SHA256: &str = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30";

/// Every manifest in the repository: the license it declares, or `None`
/// for private tooling that is never published.
fn declared_license(path: &str) -> Option<String> {
    let text = read(path);
    let value = if path.ends_with(".json") {
        let json: serde_json::Value = serde_json::from_str(&text).expect("package.json parses");
        if json["private"] == true {
            return None;
        }
        json["license"].clone()
    } else {
        let toml: toml::Value = toml::from_str(&text).expect("manifest parses");
        let section = if path.ends_with("pyproject.toml") {
            "project"
        } else {
            "package"
        };
        let license = toml.get(section).and_then(|s| s.get("license"));
        return Some(
            license
                .and_then(toml::Value::as_str)
                .unwrap_or("(none)")
                .to_owned(),
        );
    };
    Some(value.as_str().unwrap_or("(none)").to_owned())
}

#[test]
fn the_license_file_is_the_apache_2_0_text_that_every_manifest_declares() {
    let license = read("LICENSE");
    assert_eq!(
        hex::encode(Sha256::digest(license.as_bytes())),
        APACHE_2_0_SHA256,
        "LICENSE is not the Apache License 2.0 text, unchanged"
    );
    for manifest in [
        "Cargo.toml",
        "bench/Cargo.toml",
        "fuzz/Cargo.toml",
        "clients/typescript/package.json",
        "clients/python/pyproject.toml",
    ] {
        assert_eq!(
            declared_license(manifest).as_deref(),
            Some("Apache-2.0"),
            "{manifest}"
        );
    }
    // Tooling for the tests only, marked private: no license to declare.
    for private in ["tests/browser/package.json", "tools/package.json"] {
        assert_eq!(declared_license(private), None, "{private}");
    }
}

#[test]
fn the_changelog_opens_with_unreleased_and_uses_keep_a_changelog_types() {
    let changelog = read("CHANGELOG.md");
    let versions: Vec<&str> = changelog.lines().filter(|l| l.starts_with("## ")).collect();
    assert_eq!(versions.first(), Some(&"## [Unreleased]"));
    for version in versions {
        let name = version
            .trim_start_matches("## [")
            .split(']')
            .next()
            .unwrap_or_default();
        assert!(
            changelog.contains(&format!("\n[{name}]: ")),
            "no link for {version}"
        );
    }
    for kind in changelog.lines().filter(|l| l.starts_with("### ")) {
        assert!(
            [
                "### Added",
                "### Changed",
                "### Deprecated",
                "### Removed",
                "### Fixed",
                "### Security"
            ]
            .contains(&kind),
            "{kind} is not a Keep a Changelog type"
        );
    }
}

/// The repository paths a text names: words starting with a top-level
/// folder, up to the first character a path here does not use. A path with
/// a placeholder (`<version>_<what>.sql`) is not one.
fn repository_paths(text: &str) -> Vec<String> {
    const FOLDERS: [&str; 9] = [
        ".ci/",
        "clients/",
        "helm/",
        "migrations/",
        "proto/",
        "scripts/",
        "src/",
        "tests/",
        "bench/",
    ];
    let path_char = |c: char| c.is_ascii_alphanumeric() || "_./-".contains(c);
    let mut found = Vec::new();
    for (i, _) in text.char_indices() {
        let rest = &text[i..];
        let starts_word = text[..i].chars().next_back().is_none_or(|c| !path_char(c));
        if !starts_word || !FOLDERS.iter().any(|f| rest.starts_with(f)) {
            continue;
        }
        let end = rest.find(|c: char| !path_char(c)).unwrap_or(rest.len());
        if rest[end..].starts_with('<') {
            continue;
        }
        found.push(rest[..end].trim_end_matches('.').to_owned());
    }
    found
}

#[test]
fn the_contributing_guide_names_only_files_that_exist() {
    // `./scripts/test.sh` names scripts/test.sh.
    let guide = read("CONTRIBUTING.md").replace("./", " ");
    let paths = repository_paths(&guide);
    assert!(
        paths.iter().any(|p| p == "scripts/test.sh"),
        "the test command"
    );
    assert!(paths.iter().any(|p| p == "scripts/generate_clients.sh"));
    for path in paths {
        assert!(root().join(&path).exists(), "CONTRIBUTING.md names {path}");
    }
}
