//! riverlog servers: started here on a fresh SQLite file or a fresh
//! PostgreSQL database (one or more replicas), or run by someone else.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use sqlx::Connection;

use super::process::ServerProcess;
use crate::measure::Probe;

/// How long a started server may take to serve (PostgreSQL migrations
/// included).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to stop before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// One riverlog server the tool started.
struct Server {
    process: ServerProcess,
    grpc_url: String,
    metrics_url: String,
}

/// A riverlog deployment under test.
pub struct Riverlog {
    /// gRPC URLs of its servers (replicas), in order.
    pub urls: Vec<String>,
    /// Where its server-side figures come from (every server summed).
    pub probe: Probe,
    servers: Vec<Server>,
    /// The SQLite folder, removed on drop.
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database to drop: (maintenance URL, database name).
    database: Option<(String, String)>,
}

impl Riverlog {
    /// Starts `riverlog serve` on a fresh SQLite file in a temporary folder.
    pub async fn start_sqlite(bin: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("riverlog-bench-")
            .tempdir()
            .context("cannot make a temporary folder")?;
        let url = format!("sqlite://{}", dir.path().join("riverlog.db").display());
        let server = start_server(bin, &url, "riverlog (SQLite)").await?;
        Ok(Self::from_servers(vec![server], Some(dir), None))
    }

    /// Creates a fresh database `riverlog_bench_<pid>` on the PostgreSQL
    /// server of `admin_url` and starts `replicas` servers on it.
    pub async fn start_postgres(
        bin: &Path,
        admin_url: &str,
        replicas: usize,
    ) -> anyhow::Result<Self> {
        let name = format!("riverlog_bench_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(admin_url)
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {admin_url}"))?;
        drop_abandoned_databases(&mut admin).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .with_context(|| format!("cannot create the database {name}"))?;
        let _ = admin.close().await;
        let database = Some((admin_url.to_owned(), name.clone()));
        let url = with_database(admin_url, &name);
        let mut servers = Vec::new();
        for replica in 0..replicas.max(1) {
            match start_server(
                bin,
                &url,
                &format!("riverlog (PostgreSQL replica {replica})"),
            )
            .await
            {
                Ok(server) => servers.push(server),
                Err(e) => {
                    // Stop what started and drop the database before failing.
                    Self::from_servers(servers, None, database).stop().await?;
                    return Err(e);
                }
            }
        }
        let mut target = Self::from_servers(servers, None, database);
        target.probe.database_processes = Some("postgres".into());
        target.probe.checkpoint_url = Some(url);
        Ok(target)
    }

    /// A server someone else runs.
    pub fn external(url: &str, pids: &[u32], metrics_url: Option<&str>) -> Self {
        Self {
            urls: vec![url.to_owned()],
            probe: Probe {
                pids: pids.to_vec(),
                metrics_urls: metrics_url.map(str::to_owned).into_iter().collect(),
                database_processes: None,
                checkpoint_url: None,
            },
            servers: Vec::new(),
            _dir: None,
            database: None,
        }
    }

    fn from_servers(
        servers: Vec<Server>,
        dir: Option<tempfile::TempDir>,
        database: Option<(String, String)>,
    ) -> Self {
        Self {
            urls: servers.iter().map(|s| s.grpc_url.clone()).collect(),
            probe: Probe {
                pids: servers.iter().map(|s| s.process.pid).collect(),
                metrics_urls: servers.iter().map(|s| s.metrics_url.clone()).collect(),
                database_processes: None,
                checkpoint_url: None,
            },
            servers,
            _dir: dir,
            database,
        }
    }

    /// Stops the servers the tool started and drops its database.
    pub async fn stop(self) -> anyhow::Result<()> {
        for server in self.servers {
            server.process.stop(STOP_GRACE).await?;
        }
        if let Some((admin_url, name)) = self.database {
            let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await
            .with_context(|| format!("cannot drop the database {name}"))?;
            let _ = admin.close().await;
        }
        Ok(())
    }
}

/// Drops the databases of earlier runs that were interrupted before they
/// could drop their own (`riverlog_bench_<pid>` whose process is gone).
async fn drop_abandoned_databases(admin: &mut sqlx::PgConnection) -> anyhow::Result<()> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'riverlog\\_bench\\_%'",
    )
    .fetch_all(&mut *admin)
    .await?;
    for name in names {
        let alive = name
            .strip_prefix("riverlog_bench_")
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_none_or(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut *admin)
            .await
            .with_context(|| format!("cannot drop the abandoned database {name}"))?;
        }
    }
    Ok(())
}

/// Starts one `riverlog serve` on free ports over `database_url`, with
/// limits raised for the workloads (W6 alone opens 10,000 subscriptions,
/// the server's default cap), and waits until it serves.
async fn start_server(bin: &Path, database_url: &str, name: &str) -> anyhow::Result<Server> {
    let mut command = tokio::process::Command::new(bin);
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .args(["--database-url", database_url])
        .args(["--max-subscriptions", "1000000", "--shutdown-grace", "2s"])
        // Only the start-up line that names the bound addresses, and problems.
        .args(["--log-level", "warn,riverlog::server=info"])
        .args(["--log-format", "text"]);
    let (process, (grpc, http)) = ServerProcess::spawn(name, command, START_TIMEOUT, |line| {
        Some((log_field(line, "grpc")?, log_field(line, "http")?))
    })
    .await?;
    Ok(Server {
        process,
        grpc_url: format!("http://{grpc}"),
        metrics_url: format!("http://{http}/metrics"),
    })
}

/// The value of `name=VALUE` in a text log line.
fn log_field(line: &str, name: &str) -> Option<String> {
    line.split(&format!("{name}="))
        .nth(1)?
        .split_whitespace()
        .next()
        .map(str::to_owned)
}

/// `url` with its database name replaced by `name` (query kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "b"),
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "b"),
            "postgres://u:p@h/b?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "b"),
            "postgres://h:5432/b"
        );
    }

    #[test]
    fn reads_the_bound_addresses() {
        let line =
            "INFO riverlog::server: riverlog serving grpc=127.0.0.1:1 http=127.0.0.1:2 database=x";
        assert_eq!(log_field(line, "grpc").as_deref(), Some("127.0.0.1:1"));
        assert_eq!(log_field(line, "http").as_deref(), Some("127.0.0.1:2"));
    }
}
