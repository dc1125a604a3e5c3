//! Creating a list or a rule when a create may have happened even though it failed (a 5xx or a reset after CXone
//! applied it): read back by name before trying again, so a retried create never makes a second object.

use std::time::Duration;

use super::{CxoneError, DncApi, DncList, DncRule, NewList};

/// Attempts of a create whose outcome stays ambiguous.
const CREATE_ATTEMPTS: u32 = 4;

/// Whether a failed create may nevertheless have happened (or did, if CXone says the name is taken): a 5xx, a reset,
/// a timeout, or a 409 after an earlier ambiguous attempt.
fn maybe_created(e: &CxoneError) -> bool {
    e.is_transient() || matches!(e, CxoneError::Api { status: 409, .. })
}

/// Run `create`; when it fails ambiguously (it may have happened), look for the object with `find` and take it if
/// it is there, else try again, at most [`CREATE_ATTEMPTS`] times. `what` names the object in logs.
async fn create_if_absent<T, C, CF, F, FF>(what: &str, create: C, find: F) -> Result<T, CxoneError>
where
    C: Fn() -> CF,
    CF: std::future::Future<Output = Result<T, CxoneError>>,
    F: Fn() -> FF,
    FF: std::future::Future<Output = Result<Option<T>, CxoneError>>,
{
    // The same jittered backoff as every other retry (`http::Backoff`), from 400 ms.
    let backoff =
        crate::adapters::http::Backoff::new(Duration::from_millis(400), Duration::from_secs(5));
    let mut attempt = 0;
    loop {
        attempt += 1;
        match create().await {
            Ok(created) => return Ok(created),
            Err(e) if maybe_created(&e) => {
                if let Some(found) = find().await? {
                    tracing::info!(what, "create answered {e}; it exists: continuing");
                    return Ok(found);
                }
                if attempt >= CREATE_ATTEMPTS {
                    return Err(e);
                }
                tracing::warn!(what, attempt, error = %e, "create failed and nothing exists: again");
                tokio::time::sleep(backoff.delay(attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Create the list unless it exists. A create that fails ambiguously (5xx, reset) may or may not have happened: the
/// list is read back by name, and created again only if absent.
pub async fn create_list_if_absent(
    api: &dyn DncApi,
    list: &NewList,
) -> Result<DncList, CxoneError> {
    create_if_absent(
        &format!("list {}", list.name),
        || api.create_list(list),
        || api.find_list(&list.name),
    )
    .await
}

/// Create the rule unless one of the same name exists, with the same read-back on an ambiguous failure.
pub async fn create_rule_if_absent(
    api: &dyn DncApi,
    rule: &DncRule,
) -> Result<DncRule, CxoneError> {
    create_if_absent(
        &format!("rule {}", rule.name),
        || api.create_rule(rule),
        || async { Ok(api.rules().await?.into_iter().find(|r| r.name == rule.name)) },
    )
    .await
}
