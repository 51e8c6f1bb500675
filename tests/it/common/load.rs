//! Publish load against a server that is about to go away, and the check
//! that everything it acknowledged was kept.

use riverlog::proto::v1;

use super::*;

pub async fn connect(url: &str) -> v1::event_log_client::EventLogClient<tonic::transport::Channel> {
    v1::event_log_client::EventLogClient::connect(url.to_owned())
        .await
        .unwrap()
}

/// Publishers that publish one event at a time until the server goes
/// away, reporting every acknowledged (id, sequence). Ids are
/// `{prefix}w{publisher}-{n}`.
pub struct Load {
    publishers: Vec<tokio::task::JoinHandle<()>>,
    acked: tokio::sync::mpsc::UnboundedReceiver<(String, u64)>,
}

impl Load {
    pub fn start(
        client: &v1::event_log_client::EventLogClient<tonic::transport::Channel>,
        stream: &'static str,
        prefix: &str,
    ) -> Self {
        let (acked_tx, acked) = tokio::sync::mpsc::unbounded_channel();
        let publishers = (0..8)
            .map(|w| {
                let mut c = client.clone();
                let acked = acked_tx.clone();
                let prefix = prefix.to_owned();
                tokio::spawn(async move {
                    for i in 0.. {
                        let id = format!("{prefix}w{w}-{i}");
                        match c.publish(publish_request(stream, vec![event(&id)])).await {
                            Ok(r) => {
                                let _ = acked.send((id, r.into_inner().positions[0].sequence));
                            }
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        Self { publishers, acked }
    }

    /// Waits for `n` acknowledgements.
    pub async fn until_acked(&mut self, n: usize, seen: &mut Vec<(String, u64)>) {
        while seen.len() < n {
            seen.push(within(self.acked.recv()).await.expect("publishers running"));
        }
    }

    /// Waits for the publishers to stop; returns every acknowledgement.
    pub async fn finish(mut self, mut seen: Vec<(String, u64)>) -> Vec<(String, u64)> {
        for p in self.publishers {
            within(p).await.unwrap();
        }
        while let Some(a) = self.acked.recv().await {
            seen.push(a);
        }
        seen
    }
}

/// Asserts that a server on `db` holds every acknowledged event at its
/// acknowledged sequence; returns the stored sequences, sorted.
pub async fn assert_acked_stored(db: TestDb, stream: &str, acked: &[(String, u64)]) -> Vec<u64> {
    let server = TestServer::start_in(db, |_| {}).await;
    let mut client = server.client().await;
    let stored: std::collections::HashMap<String, u64> = read_all(&mut client, stream)
        .await
        .iter()
        .map(|e| (event_id(e), e.sequence))
        .collect();
    for (id, sequence) in acked {
        assert_eq!(
            stored.get(id),
            Some(sequence),
            "acknowledged event {id} lost"
        );
    }
    let mut sequences: Vec<_> = stored.values().copied().collect();
    sequences.sort_unstable();
    sequences
}
