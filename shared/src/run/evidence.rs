//! A list's evidence over a period (`dncctl evidence`): one row per run (its file, receipt, verification, business
//! days to honour, outcome, counts) as `evidence.csv` and as `index.html`, a self-contained page with a chart of the
//! days each file took against the ten-business-day deadline and a link to each run's `report.html`.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::html::{escape, STYLE};
use super::{Manifest, RunReport};
use crate::hours::business_days::DEADLINE_BUSINESS_DAYS;

/// One run of the list, as the evidence shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceRow {
    /// The run id (`runs/<runId>/`).
    pub run_id: String,
    /// The file (`s3://bucket/key` or a path).
    pub source: String,
    /// The S3 version, when read from S3.
    pub version_id: Option<String>,
    /// SHA-256 of the file.
    pub sha256: String,
    /// When the file was received (RFC 3339).
    pub received_at: Option<String>,
    /// When the clock started, when earlier (numbers received earlier in another file).
    pub clock_from: Option<String>,
    /// When CXone was verified to hold its numbers.
    pub verified_at: Option<String>,
    /// The end of the tenth business day.
    pub deadline: Option<String>,
    /// Business days to verification (or, not verified, to the run's end).
    pub business_days: Option<u32>,
    /// `honoured`, `late`, `open`, `overdue`, or `in-progress` (no report yet).
    pub outcome: String,
    /// The run's status: `SUCCESS`, `FAILED`, or `RUNNING` (normalized, no report yet).
    pub status: String,
    /// Why the run failed (None unless it did).
    pub reason: Option<String>,
    /// Data rows the file held (the normalize step's `rows`).
    pub rows: u64,
    /// Distinct numbers accepted: what the run must get CXone to hold.
    pub accepted: u64,
    /// Rows whose number was already accepted from the same file.
    pub duplicates: u64,
    /// Rows rejected, each with its reason in the run's `rejects.jsonl`.
    pub rejected: u64,
    /// Numbers CXone refused (dead letters).
    pub dead_letters: u64,
    /// Entries verified on the list at the run's end.
    pub verified_entries: u64,
    /// The run's page, relative to the evidence directory (`runs/<runId>/report.html`), when it has one.
    pub report: Option<String>,
    /// How the file's receipt closed after the run, from the list's received document (`verified:<runId> at …`,
    /// `carried:<runId> at …`: its numbers came again in a later file, measured from this one's receipt), or
    /// `waiting` while its numbers are still not shown held.
    #[serde(default)]
    pub receipt: Option<String>,
}

impl EvidenceRow {
    /// A run with a report.
    pub fn from_report(r: &RunReport, has_page: bool) -> EvidenceRow {
        let src = r.source_identity.clone().unwrap_or_default();
        let d = r.deadline.as_ref();
        EvidenceRow {
            run_id: r.run_id.clone(),
            source: if src.sha256.is_empty() {
                r.source.clone().unwrap_or_default()
            } else {
                src.display_name()
            },
            version_id: src.version_id.clone(),
            sha256: src.sha256.clone(),
            received_at: d.map(|d| d.received_at.clone()).or(src.received_at.clone()),
            clock_from: d.and_then(|d| d.clock_from.clone()),
            verified_at: d.and_then(|d| d.verified_at.clone()),
            deadline: d.map(|d| d.deadline.clone()),
            business_days: d.map(|d| d.business_days),
            outcome: d
                .map(|d| d.state.as_str().to_string())
                .unwrap_or_else(|| "unknown".into()),
            status: r.status.as_str().to_string(),
            reason: r.reason.clone(),
            rows: r.normalize.rows,
            accepted: r.normalize.accepted,
            duplicates: r.normalize.duplicates,
            rejected: r.normalize.rejected,
            dead_letters: r.upload.rejected,
            verified_entries: r.found as u64,
            report: has_page.then(|| format!("runs/{}/report.html", r.run_id)),
            receipt: None,
        }
    }

    /// A run normalized and not ended yet (no report).
    pub fn in_progress(m: &Manifest) -> EvidenceRow {
        EvidenceRow {
            run_id: m.run_id.clone(),
            source: m.source.display_name(),
            version_id: m.source.version_id.clone(),
            sha256: m.source.sha256.clone(),
            received_at: m.source.received_at.clone().or(Some(m.created_at.clone())),
            clock_from: None,
            verified_at: None,
            deadline: None,
            business_days: None,
            outcome: "in-progress".into(),
            status: "RUNNING".into(),
            reason: None,
            rows: m.counts.rows,
            accepted: m.counts.accepted,
            duplicates: m.counts.duplicates,
            rejected: m.counts.rejected,
            dead_letters: 0,
            verified_entries: 0,
            report: None,
            receipt: None,
        }
    }
}

/// The columns of `evidence.csv`, in order.
pub const CSV_HEADER: &str =
    "runId,source,versionId,sha256,receivedAt,clockFrom,verifiedAt,deadline,businessDays,\
outcome,status,reason,rows,accepted,duplicates,rejected,deadLetters,verifiedEntries,report,receipt";

/// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break, quotes doubled. A field starting
/// with `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet shows it rather than evaluating it.
fn csv_field(v: &str) -> String {
    let v = if v.starts_with(['=', '+', '-', '@']) {
        format!("'{v}")
    } else {
        v.to_string()
    };
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

/// `evidence.csv`: the header and one line per row.
pub fn to_csv(rows: &[EvidenceRow]) -> String {
    let mut s = String::from(CSV_HEADER);
    s.push('\n');
    for r in rows {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let fields = [
            r.run_id.clone(),
            r.source.clone(),
            opt(&r.version_id),
            r.sha256.clone(),
            opt(&r.received_at),
            opt(&r.clock_from),
            opt(&r.verified_at),
            opt(&r.deadline),
            r.business_days.map(|d| d.to_string()).unwrap_or_default(),
            r.outcome.clone(),
            r.status.clone(),
            opt(&r.reason),
            r.rows.to_string(),
            r.accepted.to_string(),
            r.duplicates.to_string(),
            r.rejected.to_string(),
            r.dead_letters.to_string(),
            r.verified_entries.to_string(),
            opt(&r.report),
            opt(&r.receipt),
        ];
        s += &fields
            .iter()
            .map(|f| csv_field(f))
            .collect::<Vec<_>>()
            .join(",");
        s.push('\n');
    }
    s
}

/// Counts of the rows' outcomes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Runs (files) in the period.
    pub runs: usize,
    /// Verified within ten business days.
    pub honoured: usize,
    /// Verified after the deadline.
    pub late: usize,
    /// Not verified, within the deadline (or in progress).
    pub open: usize,
    /// Not verified, the deadline passed.
    pub overdue: usize,
    /// The most business days a verified file took.
    pub max_business_days: Option<u32>,
}

/// The summary of `rows`.
pub fn summarize(rows: &[EvidenceRow]) -> Summary {
    let mut s = Summary {
        runs: rows.len(),
        ..Summary::default()
    };
    for r in rows {
        match r.outcome.as_str() {
            "honoured" => s.honoured += 1,
            "late" => s.late += 1,
            "overdue" => s.overdue += 1,
            _ => s.open += 1,
        }
        if r.verified_at.is_some() {
            s.max_business_days = s.max_business_days.max(r.business_days);
        }
    }
    s
}

/// The chart: one bar per run (business days to honour, or so far), the deadline a red line at ten.
fn days_chart(rows: &[EvidenceRow]) -> String {
    let scale_max = rows
        .iter()
        .filter_map(|r| r.business_days)
        .max()
        .unwrap_or(0)
        .max(DEADLINE_BUSINESS_DAYS + 2);
    let (left, width, row) = (220.0, 380.0, 22usize);
    let height = row * rows.len().max(1) + 24;
    let x = |d: u32| left + f64::from(d) / f64::from(scale_max) * width;
    let mut s = format!(
        "<svg id=\"days-chart\" role=\"img\" width=\"660\" height=\"{height}\" viewBox=\"0 0 660 {height}\" \
         xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for (i, r) in rows.iter().enumerate() {
        let y = i * row + 18;
        let days = r.business_days.unwrap_or(0);
        let colour = match r.outcome.as_str() {
            "honoured" => "#2e7d4f",
            "late" | "overdue" => "#b00020",
            _ => "#8a8a8a",
        };
        let label: String = r
            .received_at
            .as_deref()
            .map(|t| t.chars().take(10).collect())
            .unwrap_or_default();
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{ty}\">{label} {run}</text><rect class=\"bar\" data-run=\"{run}\" data-days=\"{days}\" \
             data-outcome=\"{outcome}\" x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"16\" fill=\"{colour}\"/>\
             <text x=\"{tx:.1}\" y=\"{ty}\">{days}</text>",
            ty = y + 13,
            label = escape(&label),
            run = escape(&short(&r.run_id)),
            outcome = escape(&r.outcome),
            w = (x(days) - left).max(1.0),
            tx = x(days) + 6.0,
        );
    }
    let dx = x(DEADLINE_BUSINESS_DAYS);
    let _ = write!(
        s,
        "<line id=\"deadline-marker\" x1=\"{dx:.1}\" y1=\"10\" x2=\"{dx:.1}\" y2=\"{h}\" stroke=\"#c00\" stroke-width=\"2\" \
         stroke-dasharray=\"4 3\"/><text x=\"{tx:.1}\" y=\"10\" fill=\"#c00\">{DEADLINE_BUSINESS_DAYS} business days</text></svg>",
        h = height,
        tx = dx - 50.0,
    );
    s
}

/// The run id's hash part, enough to tell runs apart on a chart.
fn short(run_id: &str) -> String {
    run_id
        .rsplit('-')
        .next()
        .unwrap_or(run_id)
        .chars()
        .take(8)
        .collect()
}

/// `index.html` for `list` over `period` (as the user gave it), business days counted in `time_zone`.
pub fn index_html(
    list: &str,
    period: &str,
    generated_at: &str,
    time_zone: &str,
    rows: &[EvidenceRow],
) -> String {
    let sum = summarize(rows);
    let mut s = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width,initial-scale=1\"><title>DNC evidence: {list}</title><style>{STYLE}</style>\
         </head><body><h1>Do-not-call evidence: list <b>{list}</b></h1><p>Period {period} · generated {generated} · \
         rule: every request honoured within {DEADLINE_BUSINESS_DAYS} business days of its receipt (47 CFR \
         64.1200(d)(3)); business days exclude weekends and federal holidays (5 U.S.C. 6103), observed days \
         included, dates taken in <span id=\"time-zone\">{zone}</span>.</p><table id=\"summary\"><tr><th>runs</th><td class=\"n\" data-count=\"runs\">{runs}</td></tr><tr>\
         <th>honoured in time</th><td class=\"n\" data-count=\"honoured\">{honoured}</td></tr><tr><th>verified late</th>\
         <td class=\"n\" data-count=\"late\">{late}</td></tr><tr><th>not verified, deadline running</th><td class=\"n\" \
         data-count=\"open\">{open}</td></tr><tr><th>not verified, deadline passed</th><td class=\"n\" \
         data-count=\"overdue\">{overdue}</td></tr><tr><th>most business days taken</th><td class=\"n\">{max}</td></tr>\
         </table><h2>Business days to honour, run by run</h2>",
        list = escape(list),
        period = escape(period),
        generated = escape(generated_at),
        zone = escape(time_zone),
        runs = sum.runs,
        honoured = sum.honoured,
        late = sum.late,
        open = sum.open,
        overdue = sum.overdue,
        max = sum
            .max_business_days
            .map(|d| d.to_string())
            .unwrap_or_else(|| "-".into()),
    );
    s += &days_chart(rows);
    s.push_str(
        "<h2>Runs</h2><table id=\"runs\"><tr><th>received</th><th>source</th><th>verified</th><th>business days</th>\
         <th>outcome</th><th>status</th><th>rows / accepted / rejected</th><th>report</th><th>receipt</th></tr>",
    );
    for r in rows {
        let link = match &r.report {
            Some(href) => format!("<a href=\"{}\">{}</a>", escape(href), escape(&r.run_id)),
            None => escape(&r.run_id),
        };
        let _ = write!(
            s,
            "<tr class=\"run\" data-run=\"{run}\" data-outcome=\"{outcome}\"><td class=\"mono\">{received}{clock}</td>\
             <td class=\"mono\">{source}<br>sha256 {sha}{version}</td><td class=\"mono\">{verified}</td>\
             <td class=\"n\">{days}</td><td>{outcome}</td><td>{status}{reason}</td><td class=\"n\">{rows} / \
             {accepted} / {rejected}</td><td class=\"mono\">{link}</td><td class=\"mono\">{receipt}</td></tr>",
            run = escape(&r.run_id),
            outcome = escape(&r.outcome),
            received = escape(r.received_at.as_deref().unwrap_or("-")),
            clock = r
                .clock_from
                .as_deref()
                .map(|c| format!("<br>(clock from {})", escape(c)))
                .unwrap_or_default(),
            source = escape(&r.source),
            sha = escape(&r.sha256),
            version = r
                .version_id
                .as_deref()
                .map(|v| format!("<br>version {}", escape(v)))
                .unwrap_or_default(),
            verified = escape(r.verified_at.as_deref().unwrap_or("not verified")),
            days = r.business_days.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
            status = escape(&r.status),
            reason = r
                .reason
                .as_deref()
                .map(|x| format!(": {}", escape(x)))
                .unwrap_or_default(),
            rows = r.rows,
            accepted = r.accepted,
            rejected = r.rejected,
            receipt = escape(r.receipt.as_deref().unwrap_or("")),
        );
    }
    s.push_str(
        "</table><p>The same rows: <a href=\"evidence.csv\">evidence.csv</a>.</p></body></html>\n",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, outcome: &str, days: Option<u32>, verified: bool) -> EvidenceRow {
        EvidenceRow {
            run_id: format!("demo-{id}"),
            source: "incoming/demo/a,\"b\".csv".into(),
            version_id: None,
            sha256: "ab".repeat(32),
            received_at: Some("2026-12-01T19:05:00+00:00".into()),
            clock_from: None,
            verified_at: verified.then(|| "2026-12-04T15:00:00+00:00".into()),
            deadline: Some("2026-12-16T05:00:00+00:00".into()),
            business_days: days,
            outcome: outcome.into(),
            status: if verified { "SUCCESS" } else { "FAILED" }.into(),
            reason: (!verified).then(|| "=HYPERLINK(\"x\")".into()),
            rows: 11,
            accepted: 6,
            duplicates: 1,
            rejected: 4,
            dead_letters: 0,
            verified_entries: 6,
            report: Some(format!("runs/demo-{id}/report.html")),
            receipt: None,
        }
    }

    #[test]
    fn csv_quotes_what_needs_it_and_defuses_formulas() {
        let csv = to_csv(&[
            row("1", "honoured", Some(3), true),
            row("2", "overdue", Some(12), false),
        ]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(lines.len(), 3);
        assert!(
            lines[1].starts_with("demo-1,\"incoming/demo/a,\"\"b\"\".csv\",,abab"),
            "{}",
            lines[1]
        );
        assert!(
            lines[1].contains(",3,honoured,SUCCESS,,11,6,1,4,0,6,runs/demo-1/report.html"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].contains(",\"'=HYPERLINK(\"\"x\"\")\","),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn the_index_counts_outcomes_and_draws_one_bar_per_run_and_the_deadline() {
        let rows = [
            row("1", "honoured", Some(3), true),
            row("2", "late", Some(11), true),
            row("3", "overdue", Some(12), false),
        ];
        let sum = summarize(&rows);
        assert_eq!(
            (sum.runs, sum.honoured, sum.late, sum.overdue, sum.open),
            (3, 1, 1, 1, 0)
        );
        assert_eq!(sum.max_business_days, Some(11));
        let html = index_html(
            "demo",
            "2026-11-01 to 2026-12-31",
            "2026-12-06T00:00:00Z",
            "America/Chicago",
            &rows,
        );
        assert_eq!(html.matches("<rect class=\"bar\"").count(), 3);
        assert!(html.contains("data-run=\"1\" data-days=\"3\" data-outcome=\"honoured\""));
        assert!(html.contains("id=\"deadline-marker\""));
        assert!(html.contains("<span id=\"time-zone\">America/Chicago</span>"));
        assert!(html.contains("data-count=\"honoured\">1<"));
        assert!(html.contains("<a href=\"runs/demo-1/report.html\">demo-1</a>"));
        assert!(html.contains("a,&quot;b&quot;.csv"));
        assert!(!html.contains("<script"));
    }
}
