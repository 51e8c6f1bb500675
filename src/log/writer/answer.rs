//! Answers held back until the commit: a caller hears "done" only for what
//! is durable, and a rolled-back batch answers everyone with its error.

use tokio::sync::oneshot;

use crate::log::error::LogError;
use crate::model::StorageError;

/// Where a command's answer goes.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, LogError>>;

/// What applying a command came to: a storage error aborts the batch; a
/// domain error answers one caller.
pub(super) type Outcome<T> = Result<Result<T, LogError>, StorageError>;

/// Answers `reply` with a storage error.
pub(super) fn refuse<T>(reply: Reply<T>, error: &StorageError) {
    // A caller that went away no longer needs its answer.
    let _ = reply.send(Err(LogError::Storage(error.clone())));
}

/// A caller's answer, decided but held until the transaction's fate is known.
pub(super) trait Answer: Send {
    /// The transaction committed: send the decided result.
    fn send(self: Box<Self>);
    /// The transaction rolled back: report the storage error instead.
    fn fail(self: Box<Self>, error: &StorageError);
}

struct Decided<T> {
    reply: Reply<T>,
    result: Result<T, LogError>,
    /// Takes back a result whose caller went away before it was sent
    /// (what it handed out must not wait for someone who is gone).
    reclaim: Option<Box<dyn FnOnce(T) + Send>>,
}

impl<T: Send> Answer for Decided<T> {
    fn send(self: Box<Self>) {
        let Self {
            reply,
            result,
            reclaim,
        } = *self;
        // A caller that went away no longer needs its answer.
        if let (Err(Ok(unsent)), Some(reclaim)) = (reply.send(result), reclaim) {
            reclaim(unsent);
        }
    }

    fn fail(self: Box<Self>, error: &StorageError) {
        refuse(self.reply, error);
    }
}

/// Files the outcome of one command: a decided result waits in `answers`,
/// a storage error is reported at once and aborts the batch.
pub(super) fn settle<T: Send + 'static>(
    reply: Reply<T>,
    outcome: Outcome<T>,
    answers: &mut Vec<Box<dyn Answer>>,
) -> Result<(), StorageError> {
    settle_answer(reply, outcome, answers, None)
}

/// Like [`settle`]; if the caller is gone when the committed result is
/// sent, `reclaim` gets it back (to release what it handed out).
pub(super) fn settle_reclaiming<T: Send + 'static>(
    reply: Reply<T>,
    outcome: Outcome<T>,
    answers: &mut Vec<Box<dyn Answer>>,
    reclaim: impl FnOnce(T) + Send + 'static,
) -> Result<(), StorageError> {
    settle_answer(reply, outcome, answers, Some(Box::new(reclaim)))
}

fn settle_answer<T: Send + 'static>(
    reply: Reply<T>,
    outcome: Outcome<T>,
    answers: &mut Vec<Box<dyn Answer>>,
    reclaim: Option<Box<dyn FnOnce(T) + Send>>,
) -> Result<(), StorageError> {
    match outcome {
        Ok(result) => {
            answers.push(Box::new(Decided {
                reply,
                result,
                reclaim,
            }));
            Ok(())
        }
        Err(e) => {
            refuse(reply, &e);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_its_caller_no_longer_waits_for_is_reclaimed() {
        for caller_gone in [false, true] {
            let (reply, answer) = oneshot::channel::<Result<u32, LogError>>();
            let (reclaimed, taken_back) = std::sync::mpsc::channel();
            let mut answers: Vec<Box<dyn Answer>> = Vec::new();
            settle_reclaiming(reply, Ok(Ok(7)), &mut answers, move |unsent| {
                let _ = reclaimed.send(unsent);
            })
            .unwrap();
            if caller_gone {
                drop(answer);
                answers.into_iter().for_each(|a| a.send());
                assert_eq!(taken_back.try_recv(), Ok(7));
            } else {
                answers.into_iter().for_each(|a| a.send());
                assert!(taken_back.try_recv().is_err());
                assert_eq!(answer.blocking_recv().unwrap().unwrap(), 7);
            }
        }
    }
}
