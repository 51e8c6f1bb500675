//! `riverlog tail PATTERN...`: print events as they arrive.

use clap::Args;

use tonic::{Code, Status};

use super::output::{Format, OutputArgs, event_json, event_line};
use super::{CliError, Connection, emit};
use crate::model::names::StreamSelector;
use crate::proto::v1::subscribe_response::Message;
use crate::proto::v1::{
    EventFilter, GetStreamRequest, StartPosition, SubscribeRequest, start_position::Start,
};

/// Follow streams (names or `*` patterns) live, like `tail -f`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Stream names or patterns (`orders:*`).
    #[arg(required = true, value_parser = parse_selector)]
    pub streams: Vec<StreamSelector>,
    /// Where to start: `latest` (only new events), `earliest`, a sequence
    /// (`seq:N`, one stream only), a global position (`pos:N`), a time
    /// (`time:2026-11-24T10:00:00Z`) or a checkpoint (`checkpoint:NAME`).
    #[arg(long, default_value = "latest", value_parser = parse_start)]
    pub from: Start,
    /// Only events of these types (`*` wildcards); repeatable.
    #[arg(long = "type")]
    pub types: Vec<String>,
    /// Only events from these sources; repeatable.
    #[arg(long = "source")]
    pub sources: Vec<String>,
    /// Only events about these subjects; repeatable.
    #[arg(long = "subject")]
    pub subjects: Vec<String>,
    /// Exit after this many events.
    #[arg(long, short = 'n')]
    pub count: Option<u64>,
    /// Exit once history is delivered instead of waiting for new events.
    #[arg(long)]
    pub no_follow: bool,
    /// Wait for named streams that do not exist yet instead of failing
    /// with NOT_FOUND (patterns always wait for streams to come).
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub connection: Connection,
    /// `-o json`: CloudEvents JSON, one object per line.
    #[command(flatten)]
    pub output: OutputArgs,
}

fn parse_selector(s: &str) -> Result<StreamSelector, String> {
    StreamSelector::parse(s).map_err(|e| format!("{s:?}: {e}"))
}

fn parse_start(s: &str) -> Result<Start, String> {
    crate::log::Start::parse(s).map(|start| crate::service::convert::start_position(&start))
}

impl TailArgs {
    /// Runs the command until interrupted, `--count` events, or the end of
    /// history with `--no-follow`.
    pub async fn run(self) -> Result<(), CliError> {
        if self.count == Some(0) {
            return Ok(());
        }
        let mut client = self.connection.event_log().await?;
        if !self.wait {
            // The server waits for a named stream to appear; a typo would
            // then look like a quiet stream.
            for selector in &self.streams {
                if let StreamSelector::Name(name) = selector {
                    client
                        .get_stream(GetStreamRequest {
                            stream: name.to_string(),
                        })
                        .await
                        .map_err(|status| match status.code() {
                            Code::NotFound => CliError::Refused(Status::with_details(
                                Code::NotFound,
                                format!(
                                    "stream {name} does not exist (--wait waits for it to be \
                                     created)"
                                ),
                                status.details().to_vec().into(),
                            )),
                            _ => CliError::Refused(status),
                        })?;
                }
            }
        }
        let filter = EventFilter {
            types: self.types.clone(),
            sources: self.sources.clone(),
            subjects: self.subjects.clone(),
        };
        let mut stream = client
            .subscribe(SubscribeRequest {
                streams: self.streams.iter().map(selector_text).collect(),
                start: Some(StartPosition {
                    start: Some(self.from.clone()),
                }),
                filter: Some(filter),
                heartbeat_interval: None,
            })
            .await?
            .into_inner();
        let mut seen = 0;
        while let Some(response) = stream.message().await? {
            match response.message {
                Some(Message::Event(e)) => {
                    let line = match self.output.format() {
                        Format::Json => event_json(&e).to_string(),
                        Format::Text => event_line(&e),
                    };
                    emit(&line)?;
                    seen += 1;
                    if self.count.is_some_and(|n| seen >= n) {
                        return Ok(());
                    }
                }
                Some(Message::CaughtUp(_)) if self.no_follow => return Ok(()),
                _ => {}
            }
        }
        Ok(())
    }
}

/// A selector as the server takes it.
fn selector_text(selector: &StreamSelector) -> String {
    match selector {
        StreamSelector::Name(name) => name.to_string(),
        StreamSelector::Pattern(pattern) => pattern.as_str().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_parse_and_bad_ones_say_what_is_accepted() {
        assert_eq!(parse_start("latest"), Ok(Start::Latest(())));
        assert_eq!(parse_start("seq:5"), Ok(Start::Sequence(5)));
        assert_eq!(parse_start("pos:9"), Ok(Start::Position(9)));
        assert_eq!(
            parse_start("checkpoint:billing"),
            Ok(Start::Checkpoint("billing".into()))
        );
        assert!(matches!(
            parse_start("time:2026-11-24T10:00:00Z"),
            Ok(Start::Time(_))
        ));
        assert!(parse_start("seq:x").is_err());
        assert!(parse_start("tomorrow").unwrap_err().contains("use latest"));
    }
}
