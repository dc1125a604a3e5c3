//! The error of reading or writing a run's or a list's documents. The steps turn it into their `StepError` with the
//! kind Step Functions matches (`steps/error.rs`): a store failure is retried, an unreadable or missing document is
//! fatal (running again cannot repair it), a request the documents refuse (an operator's removal without a reason)
//! is invalid input.

use std::error::Error as StdError;

use thiserror::Error;

use crate::adapters::store::StoreError;

/// A document that could not be read or written.
#[derive(Debug, Error)]
pub enum DocumentError {
    /// The bucket (or the local output directory) could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A document exists but does not read, or one a step needs is missing (a step ran out of order, or the bucket
    /// was tampered with): it is left as it is; running again cannot help.
    #[error("{message}")]
    Unreadable {
        /// What is wrong, naming the document.
        message: String,
        /// What failed to read it, when another error did.
        #[source]
        source: Option<Box<dyn StdError + Send + Sync + 'static>>,
    },
    /// What was asked of the documents cannot be done as asked (a removal without a reason, a failure that is not
    /// open): the request must change.
    #[error("{0}")]
    Refused(String),
    /// The list's received document.
    #[error(transparent)]
    Received(#[from] crate::run::ReceivedError),
    /// A shard line that does not read.
    #[error(transparent)]
    Shard(#[from] crate::run::ShardLineError),
}

impl DocumentError {
    /// An unreadable (or missing) document, described by `message`.
    pub fn unreadable(message: impl Into<String>) -> DocumentError {
        DocumentError::Unreadable {
            message: message.into(),
            source: None,
        }
    }
}
