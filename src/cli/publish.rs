//! `riverlog publish STREAM`: one event from flags, or many from stdin.

use std::io::{BufRead, IsTerminal};
use std::sync::Arc;

use clap::Args;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::output::{Format, OutputArgs};
use super::progress::BulkProgress;
use super::{CliError, Connection, emit};
use crate::proto::cloudevent::cloud_event::Data;
use crate::proto::json::{declares_json, from_json};
use crate::proto::v1::event_log_client::EventLogClient;
use crate::proto::v1::{PublishRequest, PublishedPosition, RequestError, publish_request};
use crate::proto::{AttributeValue, CloudEvent, CloudEventAttributeValue, EventPayload};

/// Publish events to a stream.
///
/// With `--data TEXT` one event is published. With `--data -`, or without
/// `--data` when stdin is not a terminal (a pipe or a file), every line of
/// stdin is an event: a CloudEvents JSON object (it has `specversion`), or
/// else the event's data, with the type and source given by the flags.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The stream.
    pub stream: String,
    /// Event data; `-` reads events from stdin, one per line (the default
    /// when stdin is not a terminal).
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
    /// JSON, else `text/plain`. A JSON type (`*/json`, `*/*+json`) needs data
    /// that is JSON.
    #[arg(long)]
    pub content_type: Option<String>,
    /// Fail unless the stream's last sequence is this (0: no event yet).
    /// With stdin, each batch expects the sequence the batches before it
    /// lead to, so the events land contiguously after this one.
    #[arg(long)]
    pub expect_last_sequence: Option<u64>,
    /// Events per publish request when reading stdin; each is atomic. The
    /// batches go over one PublishStream call, several in flight at once;
    /// the first refusal stops the sending at once (batches already sent
    /// are answered and printed).
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    #[command(flatten)]
    pub connection: Connection,
    /// `-o json`: one JSON object per published event.
    #[command(flatten)]
    pub output: OutputArgs,
}

fn string_attr(value: &str) -> CloudEventAttributeValue {
    CloudEventAttributeValue {
        attr: Some(AttributeValue::CeString(value.to_owned())),
    }
}

impl PublishArgs {
    /// An event whose data is `data` (`what` names where it came from, for
    /// messages), described by the flags.
    ///
    /// # Errors
    /// [`CliError::Usage`] when `--content-type` declares JSON and the data
    /// is not JSON, naming the parser's complaint.
    fn event_from_data(
        &self,
        data: &str,
        id: Option<&str>,
        what: &str,
    ) -> Result<CloudEvent, CliError> {
        let parsed = serde_json::from_str::<Value>(data);
        let content_type = match (&self.content_type, &parsed) {
            (Some(declared), Err(e)) if declares_json(declared) => {
                return Err(CliError::Usage(format!(
                    "{what} is not JSON, which --content-type {declared} declares: {e}"
                )));
            }
            (Some(declared), _) => declared.clone(),
            (None, Ok(_)) => "application/json".into(),
            (None, Err(_)) => "text/plain".into(),
        };
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
        Ok(event)
    }

    /// A stdin line as an event.
    fn event_from_line(&self, line: &str, number: usize) -> Result<CloudEvent, CliError> {
        if let Ok(value @ Value::Object(_)) = serde_json::from_str::<Value>(line) {
            if value.get("specversion").is_some() {
                return from_json(&value)
                    .map_err(|e| CliError::Usage(format!("stdin line {number}: {e}")));
            }
        }
        self.event_from_data(line, None, &format!("stdin line {number}"))
    }

    /// The optimistic-concurrency condition of a request that follows
    /// `sent` events of this run: `--expect-last-sequence` plus them, so
    /// the events of stdin must land contiguously after it.
    fn expected(&self, sent: u64) -> Option<publish_request::Expected> {
        self.expect_last_sequence
            .map(|last| publish_request::Expected::ExpectedLastSequence(last + sent))
    }

    fn request(&self, events: &[CloudEvent], sent: u64) -> PublishRequest {
        PublishRequest {
            stream: self.stream.clone(),
            events: events.iter().map(EventPayload::from_event).collect(),
            expected: self.expected(sent),
        }
    }

    fn print_positions(&self, positions: Vec<PublishedPosition>) -> Result<(), CliError> {
        for p in positions {
            let line = if self.output.format() == Format::Json {
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
        let data = match self.data.clone() {
            Some(data) => data,
            // A pipe or a file: its lines are the events.
            None if !std::io::stdin().is_terminal() => "-".into(),
            None => {
                return Err(CliError::Usage(
                    "give the event data with --data TEXT, or pipe events to stdin, one per \
                     line (--data - reads them from the terminal)"
                        .into(),
                ));
            }
        };
        if data != "-" {
            // Checked before connecting: bad data is a usage error.
            let event = self.event_from_data(&data, self.id.as_deref(), "--data")?;
            let mut client = self.connection.event_log().await?;
            let response = client.publish(self.request(&[event], 0)).await?;
            return self.print_positions(response.into_inner().positions);
        }
        if self.id.is_some() {
            return Err(CliError::Usage(
                "--id names a single event; stdin lines get their own ids".into(),
            ));
        }
        let client = self.connection.event_log().await?;
        Arc::new(self).publish_stdin(client).await
    }

    /// Publishes stdin's lines in batches of `--batch` over one
    /// PublishStream call, several batches in flight at once, printing the
    /// events as their batches are answered (in order), with progress on
    /// a terminal and a summary line on stderr at the end.
    ///
    /// The first refusal ends the request stream at once, whatever stdin
    /// does next (it may be a `tail -f` that never ends): no batch is sent
    /// after it arrives. Batches sent before it arrived are still answered,
    /// and the events they appended printed: they may have landed after
    /// the refused batch would have (`--expect-last-sequence` makes each
    /// of them fail instead). Then the refusal is reported.
    async fn publish_stdin(
        self: Arc<Self>,
        mut client: EventLogClient<super::Authed>,
    ) -> Result<(), CliError> {
        let (requests, outgoing) = tokio::sync::mpsc::channel(IN_FLIGHT_BATCHES);
        // Each request's encoded event bytes, in sending order: the answers
        // come back in that order.
        let (sizes_in, mut sizes) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let refused = CancellationToken::new();
        let reader = {
            let args = self.clone();
            let refused = refused.clone();
            // Reading stdin blocks: on a thread of its own, which the
            // process does not wait for when the call fails first.
            let (done, finished) = tokio::sync::oneshot::channel();
            let read = move || -> Result<(), CliError> {
                let mut batch = Vec::with_capacity(args.batch);
                let mut sent = 0u64;
                let mut send = |batch: &mut Vec<CloudEvent>| {
                    let request = args.request(batch, sent);
                    sent += batch.len() as u64;
                    batch.clear();
                    let bytes = request.events.iter().map(|e| e.encoded().len() as u64);
                    // The answer loop outlives every send: nothing is lost.
                    let _ = sizes_in.send(bytes.sum());
                    // Fails only once the call has ended: its answer says why.
                    !refused.is_cancelled() && requests.blocking_send(request).is_ok()
                };
                for (i, line) in std::io::stdin().lock().lines().enumerate() {
                    let line = line?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    batch.push(args.event_from_line(&line, i + 1)?);
                    if batch.len() == args.batch && !send(&mut batch) {
                        return Ok(());
                    }
                }
                if !batch.is_empty() {
                    send(&mut batch);
                }
                Ok(())
            };
            std::thread::spawn(move || {
                let _ = done.send(read());
            });
            finished
        };
        let mut first_refusal = None;
        let mut progress = BulkProgress::start();
        // Half-closes the call as soon as a refusal arrives, without
        // waiting for the reader's next line.
        let outgoing = ReceiverStream::new(outgoing).take_until(refused.clone().cancelled_owned());
        let mut answers = client.publish_stream(outgoing).await?.into_inner();
        let answered = async {
            while let Some(answer) = answers.message().await? {
                let bytes = sizes.recv().await.unwrap_or_default();
                match answer.error {
                    Some(error) => {
                        refused.cancel();
                        first_refusal.get_or_insert(error);
                    }
                    None => {
                        let duplicates = answer.positions.iter().filter(|p| p.duplicate).count();
                        progress.answered(answer.positions.len() as u64, duplicates as u64, bytes);
                        progress.suspend(|| self.print_positions(answer.positions))?;
                    }
                }
            }
            Ok::<_, CliError>(())
        }
        .await;
        // What landed is summed up whatever ended the call.
        progress.finish();
        answered?;
        if let Some(error) = first_refusal {
            // The reader may still wait for a line that never comes.
            return Err(CliError::Refused(request_status(error)));
        }
        match reader.await {
            Ok(read) => read,
            Err(_) => Err(CliError::Io(std::io::Error::other("stdin reader failed"))),
        }
    }
}

/// Batches of stdin read ahead of their answers (the server pipelines
/// them; it holds up to 256 per call itself).
const IN_FLIGHT_BATCHES: usize = 16;

/// A refused request as the status a unary Publish would have returned,
/// for the exit code and message every command prints.
fn request_status(error: RequestError) -> Status {
    let mut details = ErrorDetails::with_error_info(error.reason, error.domain, error.metadata);
    if let Some(delay) = error
        .retry_delay
        .and_then(|d| std::time::Duration::try_from(d).ok())
    {
        details.set_retry_info(Some(delay));
    }
    Status::with_error_details(Code::from_i32(error.code), error.message, details)
}
