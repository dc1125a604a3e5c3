//! `ftc-sim`: serve the stand-in for the FTC's registry download service on a local port.

use anyhow::{Context, Result};
use clap::Parser;
use ftc_sim::{FaultRule, SimConfig};

#[derive(Parser)]
#[command(
    name = "ftc-sim",
    version,
    about = "Stand-in for the FTC's National DNC Registry download service (SOAP 1.1, WSDL at /?WSDL) with fault injection"
)]
struct Args {
    /// Port on 127.0.0.1 (0: ephemeral).
    #[arg(long, default_value_t = 8931)]
    port: u16,
    /// JSON file with a full configuration (`SimConfig`, camelCase; flags below override it).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// Seed of the generated registry and changes.
    #[arg(long)]
    seed: Option<u64>,
    /// The subscription's area codes, comma-separated.
    #[arg(long, value_delimiter = ',')]
    area_codes: Vec<u16>,
    /// Polls answered RequestPending before a change list is ready.
    #[arg(long)]
    pending_polls: Option<u32>,
    /// The day the registry is generated for (YYYY-MM-DD; default today, UTC).
    #[arg(long)]
    start_date: Option<chrono::NaiveDate>,
    /// A fault rule as JSON, e.g. '{"op":"GetDNCFileByUrl","type":"corrupt-crc","count":1}' (repeatable).
    #[arg(long = "fault")]
    faults: Vec<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .init();
    let args = Args::parse();
    let mut config: SimConfig = match &args.config {
        Some(path) => serde_json::from_slice(
            &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("parsing {}", path.display()))?,
        None => SimConfig::default(),
    };
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if !args.area_codes.is_empty() {
        config.area_codes = args.area_codes.clone();
    }
    if let Some(p) = args.pending_polls {
        config.pending_polls = p;
    }
    if args.start_date.is_some() {
        config.start_date = args.start_date;
    }
    for f in &args.faults {
        let rule: FaultRule =
            serde_json::from_str(f).with_context(|| format!("parsing fault rule {f}"))?;
        config.faults.push(rule);
    }
    let running = ftc_sim::spawn(config, args.port).await?;
    // The account is the simulator's own (not a secret): printed so a user can write the credentials file.
    println!("{}", running.credentials_document());
    eprintln!(
        "ftc-sim serving SOAP at {} (WSDL: {}/?WSDL); Ctrl-C to stop",
        running.base_url, running.base_url
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
