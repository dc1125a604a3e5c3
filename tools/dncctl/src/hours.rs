//! `dncctl hours closure add|list|remove`: the operator's calling-hours closures (a declared emergency, a holiday
//! the Governor or the President appoints), kept in the document every check reads (`run::HOURS_CLOSURES` under
//! `--out-dir`: a local output root or s3://bucket). Each change is checked against the calling-hours policy and
//! written only if the document did not change meanwhile.

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use dncflow::adapters::store::ObjectStore;
use dncflow::hours::closures::{Closure, ClosuresFile};
use dncflow::hours::Policy;
use dncflow::run::HOURS_CLOSURES;

use crate::runtime;

#[derive(clap::Subcommand)]
pub(crate) enum HoursCommand {
    /// Dated closures: periods in which a jurisdiction allows no call, applied by every check from the next request.
    #[command(subcommand)]
    Closure(ClosureCommand),
}

#[derive(clap::Subcommand)]
pub(crate) enum ClosureCommand {
    /// Add a closure: no call to the jurisdiction's numbers from --start until --end, recorded with its reason and
    /// source.
    Add {
        /// A jurisdiction of the policy (US-LA, US, CA), or * for every one.
        #[arg(long)]
        jurisdiction: String,
        /// From, RFC 3339 (e.g. 2026-08-27T00:00:00-05:00).
        #[arg(long)]
        start: DateTime<Utc>,
        /// Until (exclusive: calls may resume then), RFC 3339.
        #[arg(long)]
        end: DateTime<Utc>,
        /// Why (the proclamation, the declared emergency).
        #[arg(long)]
        reason: String,
        /// The URL where it is published.
        #[arg(long)]
        source: String,
        /// Its id (default: the jurisdiction and start date).
        #[arg(long)]
        id: Option<String>,
        /// Where the check reads: a `dncctl run` output root, or s3://bucket.
        #[arg(long, default_value = "out")]
        out_dir: String,
    },
    /// List the closures (in force, ahead, past).
    List {
        /// Where the check reads: a `dncctl run` output root, or s3://bucket.
        #[arg(long, default_value = "out")]
        out_dir: String,
    },
    /// Remove a closure by id.
    Remove {
        /// The closure's id, as `dncctl hours closure list` shows it.
        id: String,
        /// Where the check reads: a `dncctl run` output root, or s3://bucket.
        #[arg(long, default_value = "out")]
        out_dir: String,
    },
}

/// The document and its version tag (`None`: no document yet).
async fn read(store: &dyn ObjectStore) -> Result<(ClosuresFile, Option<String>)> {
    match store
        .get_tagged(HOURS_CLOSURES)
        .await
        .with_context(|| format!("cannot read {HOURS_CLOSURES}"))?
    {
        Some((bytes, tag)) => Ok((
            ClosuresFile::from_json(&bytes, Policy::embedded())
                .with_context(|| format!("{HOURS_CLOSURES} is unusable: fix or remove it"))?,
            Some(tag),
        )),
        None => Ok((ClosuresFile::default(), None)),
    }
}

/// Apply `change` to the document and write it back unless someone else wrote it meanwhile (then try again).
async fn update(
    store: &dyn ObjectStore,
    change: impl Fn(&mut ClosuresFile) -> Result<String>,
) -> Result<String> {
    for _ in 0..5 {
        let (mut file, tag) = read(store).await?;
        let done = change(&mut file)?;
        file.validate(Policy::embedded())?;
        let written = match tag {
            Some(tag) => {
                store
                    .put_if_match(HOURS_CLOSURES, file.to_json(), &tag)
                    .await
            }
            None => store.put_if_absent(HOURS_CLOSURES, file.to_json()).await,
        }
        .with_context(|| format!("cannot write {HOURS_CLOSURES}"))?;
        if written {
            return Ok(done);
        }
    }
    bail!("{HOURS_CLOSURES} kept changing while it was being updated: try again")
}

pub(crate) fn run(command: HoursCommand) -> Result<()> {
    let HoursCommand::Closure(command) = command;
    runtime()?.block_on(async {
        match command {
            ClosureCommand::Add {
                jurisdiction,
                start,
                end,
                reason,
                source,
                id,
                out_dir,
            } => {
                let store = crate::registry::store_of(&out_dir, None).await?;
                let now = Utc::now();
                let id = update(store.as_ref(), |file| {
                    let base = id.clone().unwrap_or_else(|| {
                        format!(
                            "{}-{}",
                            jurisdiction.to_ascii_lowercase().replace('*', "all"),
                            start.format("%Y-%m-%d")
                        )
                    });
                    let taken = |c: &str| file.closures.iter().any(|x| x.id == c);
                    let id = match (&id, taken(&base)) {
                        (Some(_), true) => bail!("a closure {base:?} exists already"),
                        (_, false) => base,
                        (None, true) => (2..)
                            .map(|n| format!("{base}-{n}"))
                            .find(|c| !taken(c))
                            .unwrap_or_default(),
                    };
                    file.closures.push(Closure {
                        id: id.clone(),
                        jurisdiction: jurisdiction.clone(),
                        start,
                        end,
                        reason: reason.clone(),
                        source: source.clone(),
                        added_at: Some(now),
                    });
                    Ok(id)
                })
                .await?;
                println!(
                    "closure {id} added: no calls under {jurisdiction} from {start} until {end}"
                );
            }
            ClosureCommand::List { out_dir } => {
                let store = crate::registry::store_of(&out_dir, None).await?;
                let (file, _) = read(store.as_ref()).await?;
                if file.closures.is_empty() {
                    println!("no closures");
                }
                let now = Utc::now();
                for c in &file.closures {
                    let state = match (c.start <= now, now < c.end) {
                        (true, true) => "in force",
                        (false, _) => "ahead",
                        (true, false) => "past",
                    };
                    println!(
                        "{}  {}  {} .. {}  {state}  {}  ({})",
                        c.id,
                        c.jurisdiction,
                        c.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        c.end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        c.reason,
                        c.source
                    );
                }
            }
            ClosureCommand::Remove { id, out_dir } => {
                let store = crate::registry::store_of(&out_dir, None).await?;
                update(store.as_ref(), |file| {
                    let before = file.closures.len();
                    file.closures.retain(|c| c.id != id);
                    if file.closures.len() == before {
                        bail!("no closure {id:?}");
                    }
                    Ok(id.clone())
                })
                .await?;
                println!("closure {id} removed");
            }
        }
        Ok(())
    })
}
