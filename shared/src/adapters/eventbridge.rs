//! Announcing a list's status: an EventBridge event in AWS (what campaign activation is gated on), nothing locally.

use async_trait::async_trait;
use thiserror::Error;

use crate::run::ListStatus;

/// An announcement that did not go out.
#[derive(Debug, Error)]
pub enum NotifyError {
    /// The status cannot be written as JSON (a bug).
    #[error("status does not serialize")]
    Serialize(#[source] serde_json::Error),
    /// The bus could not be reached or answered an error: trying again may work.
    #[error("cannot publish the status event of {list} on bus {bus}: {reason}")]
    Publish {
        /// The list whose status was being announced.
        list: String,
        /// Bus name or ARN.
        bus: String,
        /// What the SDK said.
        reason: String,
    },
    /// EventBridge took the request but refused the entry.
    #[error("EventBridge refused the status event of {list}: {why}")]
    Refused {
        /// The list whose status was being announced.
        list: String,
        /// The entry's error messages.
        why: String,
    },
}

/// Where a published status is announced.
#[async_trait]
pub trait StatusNotifier: Send + Sync {
    /// Announce a list's status once it is written (`status/<list>/latest.json`), for what gates campaigns on it.
    async fn notify(&self, status: &ListStatus) -> Result<(), NotifyError>;
}

/// No announcement (local runs).
pub struct NoNotifier;

#[async_trait]
impl StatusNotifier for NoNotifier {
    async fn notify(&self, _status: &ListStatus) -> Result<(), NotifyError> {
        Ok(())
    }
}

/// An event on an EventBridge bus: source `dncflow`, detail-type `DNC List Status`, the status as detail. A rule on
/// `detail.status = SUCCESS` and `detail.list` is what campaign activation can be gated on.
pub struct EventBridgeNotifier {
    /// The EventBridge client (its endpoint may be an emulator's).
    pub client: aws_sdk_eventbridge::Client,
    /// Bus name or ARN.
    pub bus: String,
}

impl EventBridgeNotifier {
    /// The events' `source`, what a rule matches on.
    pub const SOURCE: &'static str = "dncflow";
    /// The event detail type.
    pub const DETAIL_TYPE: &'static str = "DNC List Status";

    /// A client from the default AWS configuration (honours `AWS_ENDPOINT_URL_EVENTBRIDGE`).
    pub async fn from_env(bus: impl Into<String>) -> EventBridgeNotifier {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        EventBridgeNotifier {
            client: aws_sdk_eventbridge::Client::new(&config),
            bus: bus.into(),
        }
    }
}

#[async_trait]
impl StatusNotifier for EventBridgeNotifier {
    async fn notify(&self, status: &ListStatus) -> Result<(), NotifyError> {
        use aws_sdk_eventbridge::types::PutEventsRequestEntry;
        let detail = serde_json::to_string(status).map_err(NotifyError::Serialize)?;
        let out = self
            .client
            .put_events()
            .entries(
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus)
                    .source(Self::SOURCE)
                    .detail_type(Self::DETAIL_TYPE)
                    .detail(detail)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| NotifyError::Publish {
                list: status.list.clone(),
                bus: self.bus.clone(),
                reason: aws_sdk_eventbridge::error::DisplayErrorContext(&e).to_string(),
            })?;
        if out.failed_entry_count() > 0 {
            let why = out
                .entries()
                .iter()
                .filter_map(|e| e.error_message())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(NotifyError::Refused {
                list: status.list.clone(),
                why,
            });
        }
        Ok(())
    }
}
