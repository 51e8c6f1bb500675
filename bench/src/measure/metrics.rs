//! riverlog's commit counters, scraped from its Prometheus endpoint.

use std::ops::Add;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The write transactions a server committed (cumulative, or a delta).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Commits {
    /// Append transactions (`riverlog_append_batch_size_count`).
    pub appends: f64,
    /// Events those transactions appended (`riverlog_append_batch_size_sum`).
    pub appended_events: f64,
    /// Write transactions of every kind (`riverlog_commit_duration_seconds_count`).
    pub transactions: f64,
    /// Seconds spent in them (`riverlog_commit_duration_seconds_sum`).
    pub transaction_seconds: f64,
}

impl Commits {
    /// The change from `earlier` to `self`.
    pub fn since(&self, earlier: &Commits) -> Commits {
        Commits {
            appends: self.appends - earlier.appends,
            appended_events: self.appended_events - earlier.appended_events,
            transactions: self.transactions - earlier.transactions,
            transaction_seconds: self.transaction_seconds - earlier.transaction_seconds,
        }
    }

    /// Events per append transaction, if any committed.
    pub fn events_per_commit(&self) -> Option<f64> {
        (self.appends > 0.0).then(|| self.appended_events / self.appends)
    }

    /// Mean duration of a write transaction (commit included), ms.
    pub fn mean_commit_ms(&self) -> Option<f64> {
        (self.transactions > 0.0).then(|| self.transaction_seconds * 1000.0 / self.transactions)
    }
}

impl Add for Commits {
    type Output = Commits;
    fn add(self, o: Commits) -> Commits {
        Commits {
            appends: self.appends + o.appends,
            appended_events: self.appended_events + o.appended_events,
            transactions: self.transactions + o.transactions,
            transaction_seconds: self.transaction_seconds + o.transaction_seconds,
        }
    }
}

/// Reads the commit counters from `url` (`http://host:port/metrics`), or
/// `None` when the endpoint does not answer within 5 s.
pub async fn commits(url: &str) -> Option<Commits> {
    let text = tokio::time::timeout(Duration::from_secs(5), get(url))
        .await
        .ok()??;
    Some(parse(&text))
}

/// Sums the samples of `name` (with or without labels) in Prometheus text.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn parse(text: &str) -> Commits {
    Commits {
        appends: sample(text, "riverlog_append_batch_size_count"),
        appended_events: sample(text, "riverlog_append_batch_size_sum"),
        transactions: sample(text, "riverlog_commit_duration_seconds_count"),
        transaction_seconds: sample(text, "riverlog_commit_duration_seconds_sum"),
    }
}

/// A plain HTTP/1.0 GET (no chunked encoding, the server closes when
/// done); the body, if the status is 200.
async fn get(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut conn = tokio::net::TcpStream::connect(host).await.ok()?;
    conn.write_all(format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut response = Vec::new();
    conn.read_to_end(&mut response).await.ok()?;
    let response = String::from_utf8(response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.split_whitespace()
        .nth(1)
        .filter(|status| *status == "200")?;
    Some(body.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_counters() {
        let text = "# HELP x\nriverlog_append_batch_size_bucket{le=\"1\"} 1\n\
            riverlog_append_batch_size_sum 300\nriverlog_append_batch_size_count 10\n\
            riverlog_commit_duration_seconds_sum 0.02\nriverlog_commit_duration_seconds_count 12\n";
        let c = parse(text);
        assert_eq!(c.events_per_commit(), Some(30.0));
        assert!((c.mean_commit_ms().unwrap_or(0.0) - 20.0 / 12.0).abs() < 1e-9);
        assert_eq!(Commits::default().events_per_commit(), None);
    }
}
