//! `cxone-sim`: serve the CXone DNC API simulator on a local port.

use anyhow::{Context, Result};
use clap::Parser;
use cxone_sim::{FaultRule, SimConfig, SimDialect};

#[derive(Parser)]
#[command(
    name = "cxone-sim",
    version,
    about = "CXone DNC API simulator (dialect v2, or the Admin API's DNC groups) with fault injection"
)]
struct Args {
    /// Port on 127.0.0.1 (0: ephemeral).
    #[arg(long, default_value_t = 8930)]
    port: u16,
    /// JSON file with a full configuration (flags below override it).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// Seed of every random decision.
    #[arg(long)]
    seed: Option<u64>,
    /// OAuth client as ID:SECRET (repeatable; replaces the default client).
    #[arg(long = "client")]
    clients: Vec<String>,
    /// Token lifetime in simulated seconds.
    #[arg(long)]
    token_ttl: Option<u64>,
    /// Entries requests per second.
    #[arg(long)]
    entries_rate: Option<f64>,
    /// Contacts-check requests per second.
    #[arg(long)]
    check_rate: Option<f64>,
    /// Propagation delay range in simulated seconds, MIN:MAX.
    #[arg(long)]
    propagation: Option<String>,
    /// Simulated seconds per real second.
    #[arg(long)]
    clock_scale: Option<f64>,
    /// The API served: `v2` (the contract's lists, rules, entries, batch check) or `admin` (the CXone Admin API's
    /// DNC groups: password grant, discovery, groups, scrubbed skills, records, search).
    #[arg(long)]
    dialect: Option<String>,
    /// Admin: an access key as ID:SECRET (repeatable; replaces the default key).
    #[arg(long = "access-key")]
    access_keys: Vec<String>,
    /// Admin: records on calling lists (they count against the environment's cap).
    #[arg(long)]
    calling_list_records: Option<u64>,
    /// A fault rule as JSON, e.g. '{"endpoint":"entries-post","type":"server-error","status":503,"count":3}'
    /// (repeatable).
    #[arg(long = "fault")]
    faults: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    // Colour only for a terminal, never with NO_COLOR (no escape codes in a pipe or a CI log).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
    let args = Args::parse();
    let mut config = match &args.config {
        Some(path) => serde_json::from_slice(
            &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("parsing {}", path.display()))?,
        None => SimConfig::default(),
    };
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if !args.clients.is_empty() {
        config.clients = args
            .clients
            .iter()
            .map(|c| {
                c.split_once(':')
                    .map(|(i, s)| (i.to_string(), s.to_string()))
                    .context("--client takes ID:SECRET")
            })
            .collect::<Result<_>>()?;
    }
    match args.dialect.as_deref() {
        None => {}
        Some("v2") => config.dialect = SimDialect::V2,
        Some("admin") => config.dialect = SimDialect::Admin,
        Some(other) => anyhow::bail!("--dialect {other}: v2 or admin"),
    }
    if !args.access_keys.is_empty() {
        config.access_keys = args
            .access_keys
            .iter()
            .map(|c| {
                c.split_once(':')
                    .map(|(i, s)| (i.to_string(), s.to_string()))
                    .context("--access-key takes ID:SECRET")
            })
            .collect::<Result<_>>()?;
    }
    if let Some(v) = args.calling_list_records {
        config.calling_list_records = v;
    }
    if let Some(v) = args.token_ttl {
        config.token_ttl_secs = v;
    }
    if let Some(v) = args.entries_rate {
        config.entries_rate = v;
    }
    if let Some(v) = args.check_rate {
        config.check_rate = v;
    }
    if let Some(v) = args.clock_scale {
        config.clock_scale = v;
    }
    if let Some(p) = &args.propagation {
        let (lo, hi) = p.split_once(':').context("--propagation takes MIN:MAX")?;
        config.propagation_secs = (lo.parse()?, hi.parse()?);
    }
    for f in &args.faults {
        config.faults.push(
            serde_json::from_str::<FaultRule>(f).with_context(|| format!("parsing --fault {f}"))?,
        );
    }
    let config_dialect = config.dialect;
    let running = cxone_sim::spawn(config, args.port).await?;
    println!(
        "cxone-sim ({:?}) listening on {}",
        config_dialect, running.base_url
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
