//! The real binary's configuration: file, environment and flags, the
//! `config` command, and refusing bad settings at start-up.

use std::process::Command;

use crate::common::*;

fn riverlog(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_riverlog"))
        .args(args)
        // The developer's own settings must not leak into the test.
        .env_remove("RIVERLOG_LISTEN")
        .env_remove("RIVERLOG_CONFIG")
        .envs(envs.iter().copied())
        .output()
        .expect("binary runs")
}

fn config_file(contents: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(f.path(), contents).expect("written");
    f
}

#[test]
fn flags_beat_environment_which_beats_the_file() {
    let file = config_file(
        "listen = \"127.0.0.1:1111\"\n\
         http_listen = \"127.0.0.1:2222\"\n\
         max_batch_events = 50\n\
         database_url = \"postgres://app:s3cret@db/log\"\n\
         [[auth.tokens]]\n\
         name = \"ingest\"\n\
         sha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n\
         publish = [\"orders:*\"]\n",
    );
    let out = riverlog(
        &["config", "--listen", "127.0.0.1:3333"],
        &[
            ("RIVERLOG_CONFIG", file.path().to_str().unwrap()),
            ("RIVERLOG_LISTEN", "127.0.0.1:4444"),
            ("RIVERLOG_HTTP_LISTEN", "127.0.0.1:5555"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(
        printed.contains("listen = \"127.0.0.1:3333\"  # flag --listen"),
        "{printed}"
    );
    assert!(
        printed.contains("http_listen = \"127.0.0.1:5555\"  # env RIVERLOG_HTTP_LISTEN"),
        "{printed}"
    );
    assert!(
        printed.contains("max_batch_events = 50  # file "),
        "{printed}"
    );
    assert!(printed.contains("db_pool_size = 4  # default"), "{printed}");
    assert!(printed.contains("name = \"ingest\""), "{printed}");
    assert!(
        !printed.contains("s3cret"),
        "the password must be hidden:\n{printed}"
    );
}

#[test]
fn bad_settings_stop_start_up_naming_the_key() {
    /// File contents, environment, what stderr must say.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        ("max_batch_events = \"lots\"\n", &[], "`max_batch_events`"),
        (
            "unknown_thing = 1\n",
            &[],
            "unknown config key `unknown_thing`",
        ),
        (
            "[[auth.tokens]]\nname = \"x\"\nsha256 = \"not-a-digest\"\n",
            &[],
            "`auth.tokens[0].sha256`",
        ),
        (
            "[[auth.tokens]]\nname = \"x\"\nsha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\npublsh = []\n",
            &[],
            "unknown field `publsh`",
        ),
        (
            "",
            &[("RIVERLOG_SHUTDOWN_GRACE", "soon")],
            "`shutdown_grace` (from env RIVERLOG_SHUTDOWN_GRACE)",
        ),
    ];
    for (contents, envs, expected) in cases {
        let file = config_file(contents);
        let path = file.path().to_str().unwrap();
        let out = riverlog(
            &["serve", "--config", path, "--listen", "127.0.0.1:0"],
            envs,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started despite {contents:?}");
        assert!(
            stderr.contains(expected),
            "{contents:?}: expected {expected:?} in {stderr}"
        );
    }
}

#[test]
fn hash_token_prints_what_auth_tokens_want() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_riverlog"))
        .arg("hash-token")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"test\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        riverlog::auth::token_digest("test")
    );
}

#[tokio::test]
async fn the_binary_serves_metrics_on_its_http_port() {
    let db = TestDb::new().await;
    let spawned = spawn_binary_with(&db, &["--log-format", "json"], &[]).await;
    let (status, body) = http_get(&spawned.http_url, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("riverlog_storage_up 1"), "{body}");
    let (status, _) = http_get(&spawned.http_url, "/nothing-here").await;
    assert_eq!(status, 404);
}
