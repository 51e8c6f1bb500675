//! `riverlog publish STREAM`: one event from flags, or many from stdin.

use std::io::BufRead;

use clap::Args;
use serde_json::{Value, json};

use super::{CliError, Connection, emit};
use crate::proto::cloudevent::cloud_event::Data;
use crate::proto::json::from_json;
use crate::proto::v1::{PublishRequest, publish_request};
use crate::proto::{AttributeValue, CloudEvent, CloudEventAttributeValue, EventPayload};

/// Publish events to a stream.
///
/// With `--data TEXT` one event is published. With `--data -` every line of
/// stdin is an event: a CloudEvents JSON object (it has `specversion`), or
/// else the event's data, with the type and source given by the flags.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The stream.
    pub stream: String,
    /// Event data; `-` reads events from stdin, one per line.
    #[arg(long, short)]
    pub data: Option<String>,
    /// CloudEvent `type` of events built from data.
    #[arg(long = "type", short = 't', default_value = "riverlog.cli")]
    pub event_type: String,
    /// CloudEvent `source` of events built from data.
    #[arg(long, short, default_value = "/riverlog/cli")]
    pub source: String,
    /// CloudEvent `id` (default: a new UUIDv7); only for a single event.
    #[arg(long)]
    pub id: Option<String>,
    /// CloudEvent `subject`.
    #[arg(long)]
    pub subject: Option<String>,
    /// `datacontenttype`; default `application/json` when the data parses as
    /// JSON, else `text/plain`.
    #[arg(long)]
    pub content_type: Option<String>,
    /// Fail unless the stream's last sequence is this (0: no event yet).
    #[arg(long)]
    pub expect_last_sequence: Option<u64>,
    /// Events per publish call when reading stdin; each call is atomic.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Print one JSON object per event instead of a line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connection: Connection,
}

fn string_attr(value: &str) -> CloudEventAttributeValue {
    CloudEventAttributeValue {
        attr: Some(AttributeValue::CeString(value.to_owned())),
    }
}

impl PublishArgs {
    /// An event whose data is `data`, described by the flags.
    fn event_from_data(&self, data: &str, id: Option<&str>) -> CloudEvent {
        let is_json = serde_json::from_str::<Value>(data).is_ok();
        let content_type = self.content_type.clone().unwrap_or_else(|| {
            if is_json {
                "application/json".into()
            } else {
                "text/plain".into()
            }
        });
        let mut event = CloudEvent {
            id: id.map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned),
            source: self.source.clone(),
            spec_version: "1.0".into(),
            r#type: self.event_type.clone(),
            data: Some(Data::TextData(data.to_owned())),
            ..CloudEvent::default()
        };
        event
            .attributes
            .insert("datacontenttype".into(), string_attr(&content_type));
        if let Some(subject) = &self.subject {
            event
                .attributes
                .insert("subject".into(), string_attr(subject));
        }
        event
    }

    /// A stdin line as an event.
    fn event_from_line(&self, line: &str, number: usize) -> Result<CloudEvent, CliError> {
        if let Ok(value @ Value::Object(_)) = serde_json::from_str::<Value>(line) {
            if value.get("specversion").is_some() {
                return from_json(&value)
                    .map_err(|e| CliError::Usage(format!("stdin line {number}: {e}")));
            }
        }
        Ok(self.event_from_data(line, None))
    }

    async fn send(
        &self,
        client: &mut crate::proto::v1::event_log_client::EventLogClient<super::Authed>,
        events: Vec<CloudEvent>,
    ) -> Result<(), CliError> {
        let expected = self
            .expect_last_sequence
            .map(publish_request::Expected::ExpectedLastSequence);
        let response = client
            .publish(PublishRequest {
                stream: self.stream.clone(),
                events: events.iter().map(EventPayload::from_event).collect(),
                expected,
            })
            .await?
            .into_inner();
        for p in response.positions {
            let line = if self.json {
                json!({
                    "stream": self.stream,
                    "id": p.id,
                    "sequence": p.sequence,
                    "position": p.position,
                    "duplicate": p.duplicate,
                })
                .to_string()
            } else {
                let dup = if p.duplicate { " duplicate" } else { "" };
                format!(
                    "{}#{} @{} {}{dup}",
                    self.stream, p.sequence, p.position, p.id
                )
            };
            emit(&line)?;
        }
        Ok(())
    }

    /// Runs the command.
    pub async fn run(self) -> Result<(), CliError> {
        if self.batch == 0 {
            return Err(CliError::Usage("--batch must be at least 1".into()));
        }
        let Some(data) = self.data.clone() else {
            return Err(CliError::Usage(
                "give the event data with --data TEXT, or --data - to read events from stdin"
                    .into(),
            ));
        };
        let mut client = self.connection.event_log().await?;
        if data != "-" {
            let event = self.event_from_data(&data, self.id.as_deref());
            return self.send(&mut client, vec![event]).await;
        }
        if self.id.is_some() {
            return Err(CliError::Usage(
                "--id names a single event; stdin lines get their own ids".into(),
            ));
        }
        let mut batch = Vec::with_capacity(self.batch);
        for (i, line) in std::io::stdin().lock().lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            batch.push(self.event_from_line(&line, i + 1)?);
            if batch.len() == self.batch {
                self.send(&mut client, std::mem::take(&mut batch)).await?;
            }
        }
        if !batch.is_empty() {
            self.send(&mut client, batch).await?;
        }
        Ok(())
    }
}
