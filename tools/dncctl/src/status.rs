//! `dncctl status`: what a list's status holds (the last known good run, open failures, the numbers received and not
//! known held), and the operator's two corrections, each recorded with its reason in `status/<list>/operator.jsonl`:
//! removing received numbers (a dead letter CXone will never hold, a number entered by mistake) and clearing an open
//! failure.

use anyhow::{bail, Result};
use dncflow::run::Hold;
use dncflow::steps::RemovalTarget;

use crate::runtime;

#[derive(clap::Subcommand)]
pub(crate) enum StatusCommand {
    /// Print the list's status and the numbers it received that no verified run has shown CXone holding, per reason.
    Show {
        /// The DNC list's name (`status/<list>/` in the output root).
        #[arg(long)]
        list: String,
        /// Where the statuses live: the output root of `dncctl run`, or s3://bucket.
        #[arg(long, default_value = "out")]
        out_dir: String,
        /// Also print the numbers (E.164) with their reasons.
        #[arg(long)]
        numbers: bool,
    },
    /// Remove received numbers from what the check answers `suppressed` on its own (they are then answered as CXone
    /// and the registries say), with a recorded reason.
    Remove {
        /// The DNC list's name (`status/<list>/` in the output root).
        #[arg(long)]
        list: String,
        /// A number to remove (repeatable).
        #[arg(long = "number")]
        numbers: Vec<String>,
        /// Remove every number of this run (with --hold, only those held for that reason).
        #[arg(long)]
        run: Option<String>,
        /// With --run: only numbers held for this reason: pending-propagation, dead-letter, run-failed,
        /// refused-file.
        #[arg(long)]
        hold: Option<String>,
        /// Why (required; recorded with each number).
        #[arg(long)]
        reason: String,
        /// The operator recorded as having done it (default: $USER).
        #[arg(long)]
        by: Option<String>,
        /// Where the statuses live.
        #[arg(long, default_value = "out")]
        out_dir: String,
    },
    /// Clear an open failure, so that it no longer keeps the list FAILED (its numbers stay suppressed), with a
    /// recorded reason.
    Clear {
        /// The DNC list's name (`status/<list>/` in the output root).
        #[arg(long)]
        list: String,
        /// The run id of the failed run (as `status show` lists the open failures).
        #[arg(long)]
        run: String,
        /// Why (required; recorded in `status/<list>/operator.jsonl`).
        #[arg(long)]
        reason: String,
        /// The operator recorded as having done it (default: $USER).
        #[arg(long)]
        by: Option<String>,
        /// Where the statuses live.
        #[arg(long, default_value = "out")]
        out_dir: String,
    },
}

fn operator(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}

pub(crate) fn run(command: StatusCommand) -> Result<()> {
    runtime()?.block_on(async move {
        let now = chrono::Utc::now();
        match command {
            StatusCommand::Show {
                list,
                out_dir,
                numbers,
            } => {
                let store = crate::registry::store_of(&out_dir, None).await?;
                match dncflow::steps::read_list_status(store.as_ref(), &list).await? {
                    Some(s) => println!("{}", serde_json::to_string_pretty(&s)?),
                    None => println!("list {list} has no status"),
                }
                let received = dncflow::run::load_received(store.as_ref(), &list).await?;
                let Some(received) = received else {
                    println!("received, not known held: none");
                    return Ok(());
                };
                let c = received.counts();
                println!(
                    "received, not known held: {} pending propagation, {} dead letters, {} of failed runs, {} of refused files",
                    c.pending_propagation, c.dead_letters, c.run_failed, c.refused_file
                );
                if numbers {
                    for n in received.numbers_of(None, None) {
                        let reason = received
                            .cause(&n, now)
                            .map(|c| c.reason())
                            .unwrap_or_else(|| "expired".into());
                        println!("{n} {reason}");
                    }
                }
                Ok(())
            }
            StatusCommand::Remove {
                list,
                numbers,
                run,
                hold,
                reason,
                by,
                out_dir,
            } => {
                let target = match (numbers.is_empty(), run) {
                    (false, None) => RemovalTarget::Numbers(numbers),
                    (true, Some(run_id)) => RemovalTarget::Run {
                        run_id,
                        hold: hold.as_deref().map(parse_hold).transpose()?,
                    },
                    _ => bail!("name the numbers (--number, repeatable) or a run (--run), not both"),
                };
                let store = crate::registry::store_of(&out_dir, None).await?;
                let records = dncflow::steps::remove_received(
                    store.as_ref(),
                    &list,
                    &target,
                    &reason,
                    &operator(by),
                    now,
                )
                .await?;
                for r in &records {
                    if let dncflow::run::OperatorAction::RemoveNumber { phone_number, was, .. } =
                        &r.action
                    {
                        println!("removed {} (was {was})", dncflow::phone::mask(phone_number));
                    }
                }
                println!(
                    "{} numbers removed from list {list}, recorded in {}",
                    records.len(),
                    dncflow::run::operator_log_key(&list)
                );
                Ok(())
            }
            StatusCommand::Clear {
                list,
                run,
                reason,
                by,
                out_dir,
            } => {
                let store = crate::registry::store_of(&out_dir, None).await?;
                let status = dncflow::steps::clear_failure(
                    store.as_ref(),
                    &list,
                    &run,
                    &reason,
                    &operator(by),
                    now,
                )
                .await?;
                println!(
                    "open failure of run {run} cleared; list {list} is {} ({} open failures), recorded in {}",
                    status.status,
                    status.open_failures.len(),
                    dncflow::run::operator_log_key(&list)
                );
                Ok(())
            }
        }
    })
}

fn parse_hold(s: &str) -> Result<Hold> {
    Ok(match s {
        "pending-propagation" => Hold::PendingPropagation,
        "dead-letter" => Hold::DeadLetter,
        "run-failed" => Hold::RunFailed,
        "refused-file" => Hold::RefusedFile,
        other => {
            bail!("--hold {other}: pending-propagation, dead-letter, run-failed or refused-file")
        }
    })
}
