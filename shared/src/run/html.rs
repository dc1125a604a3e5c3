//! `report.html`: a run's report as a page a person reads or prints. Self-contained: no script, no font, no image
//! fetched from anywhere (charts are inline SVG), so the file alone is the evidence, opened years later offline.
//! Numbers appear masked only ([`crate::phone::mask`]), as in logs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::deadline::DeadlineState;
use super::RunReport;

/// HTML-escape text for an element's content or a quoted attribute. Hand-written on purpose: it is a match over the
/// five characters HTML gives meaning to, smaller than the dependency that would provide it.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What the page shows beyond the report: a few masked examples of each reject reason and of the dead letters.
#[derive(Debug, Clone, Default)]
pub struct ReportExamples {
    /// Reject reason → masked raw values (a few).
    pub rejects: BTreeMap<String, Vec<String>>,
    /// Dead letters: masked number, CXone's code, CXone's message (a few).
    pub dead_letters: Vec<(String, String, String)>,
}

/// The page's stylesheet: readable on screen and on paper (no backgrounds needed to read it).
pub const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#111;max-width:60rem;\
margin:1.5rem auto;padding:0 1rem}h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:1.6rem;\
border-bottom:1px solid #bbb}table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;\
padding:.2rem .5rem;text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.ok{color:#0a6b2d}.bad{color:#a40000}.badge{font-weight:700;padding:.1rem .4rem;border:2px solid currentColor}\
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.92em;word-break:break-all}\
svg text{font:12px system-ui,sans-serif}@media print{body{margin:0;max-width:none}h2{break-after:avoid}\
table,svg{break-inside:avoid}a{color:inherit;text-decoration:none}}";

fn parse(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// A horizontal bar chart: one `<rect class="bar">` per item, labelled with its name and count.
pub fn bar_chart(id: &str, items: &[(String, u64)]) -> String {
    let max = items.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let row = 22;
    let (label_w, bar_w) = (190.0, 360.0);
    let height = row * items.len().max(1) + 4;
    let mut s = format!(
        "<svg id=\"{}\" role=\"img\" width=\"640\" height=\"{height}\" viewBox=\"0 0 640 {height}\" \
         xmlns=\"http://www.w3.org/2000/svg\">",
        escape(id)
    );
    for (i, (name, n)) in items.iter().enumerate() {
        let y = i * row + 2;
        let w = (*n as f64 / max as f64 * bar_w).max(1.0);
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{ty}\">{name}</text><rect class=\"bar\" data-name=\"{name}\" data-count=\"{n}\" \
             x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"16\" fill=\"#4a6fa5\"/><text x=\"{tx:.1}\" \
             y=\"{ty}\">{n}</text>",
            ty = y + 13,
            name = escape(name),
            tx = label_w + w + 6.0,
        );
    }
    s.push_str("</svg>");
    s
}

/// The timeline: each known moment on a line from the first to the last (the deadline included), the deadline a
/// red marker.
pub fn timeline(points: &[(&str, Option<&str>)], deadline: Option<&str>) -> String {
    let known: Vec<(&str, DateTime<Utc>)> = points
        .iter()
        .filter_map(|(name, t)| Some((*name, parse((*t)?)?)))
        .collect();
    let deadline_t = deadline.and_then(parse);
    let mut all: Vec<DateTime<Utc>> = known.iter().map(|(_, t)| *t).collect();
    all.extend(deadline_t);
    let (Some(first), Some(last)) = (all.iter().min().copied(), all.iter().max().copied()) else {
        return String::new();
    };
    let span = (last - first).num_seconds().max(1) as f64;
    let (left, width) = (20.0, 600.0);
    let x = |t: DateTime<Utc>| left + (t - first).num_seconds() as f64 / span * width;
    let height = 40 + 18 * known.len();
    let mut s = format!(
        "<svg id=\"timeline\" role=\"img\" width=\"660\" height=\"{height}\" viewBox=\"0 0 660 {height}\" \
         xmlns=\"http://www.w3.org/2000/svg\"><line x1=\"{left}\" y1=\"20\" x2=\"{}\" y2=\"20\" stroke=\"#555\"/>",
        left + width
    );
    for (i, (name, t)) in known.iter().enumerate() {
        let px = x(*t);
        let _ = write!(
            s,
            "<circle class=\"moment\" data-name=\"{name}\" cx=\"{px:.1}\" cy=\"20\" r=\"5\" fill=\"#4a6fa5\"/>\
             <line x1=\"{px:.1}\" y1=\"25\" x2=\"{px:.1}\" y2=\"{ly}\" stroke=\"#bbb\"/><text x=\"{tx:.1}\" y=\"{ty}\">\
             {name} {when}</text>",
            name = escape(name),
            ly = 30 + 18 * i,
            tx = (px + 4.0).min(660.0 - 250.0),
            ty = 34 + 18 * i,
            when = t.format("%Y-%m-%d %H:%M UTC"),
        );
    }
    if let Some(d) = deadline_t {
        let px = x(d);
        let _ = write!(
            s,
            "<line id=\"deadline-marker\" x1=\"{px:.1}\" y1=\"4\" x2=\"{px:.1}\" y2=\"{h}\" stroke=\"#c00\" \
             stroke-width=\"2\" stroke-dasharray=\"4 3\"/><text x=\"{tx:.1}\" y=\"12\" fill=\"#c00\">deadline</text>",
            h = height - 2,
            tx = (px - 56.0).max(0.0),
        );
    }
    s.push_str("</svg>");
    s
}

fn row(s: &mut String, key: &str, value: &str) {
    let _ = write!(
        s,
        "<tr><th>{}</th><td class=\"mono\">{}</td></tr>",
        escape(key),
        escape(value)
    );
}

fn count_row(s: &mut String, name: &str, id: &str, n: u64) {
    let _ = write!(
        s,
        "<tr><th>{}</th><td class=\"n\" data-count=\"{}\">{n}</td></tr>",
        escape(name),
        escape(id)
    );
}

impl RunReport {
    /// `report.html` (see the module's documentation).
    pub fn html(&self, examples: &ReportExamples) -> String {
        let n = &self.normalize;
        let u = &self.upload;
        let ok = self.success();
        let mut s = String::with_capacity(16 * 1024);
        let _ = write!(
            s,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
             content=\"width=device-width,initial-scale=1\"><title>DNC run {id}</title><style>{STYLE}</style></head>\
             <body><h1>DNC run <span class=\"mono\">{id}</span></h1><p>List <b>{list}</b> ({list_id}) · \
             <span id=\"status\" class=\"badge {class}\">{status}</span>{reason}</p><p>Started {started} · finished \
             {finished}</p>",
            id = escape(&self.run_id),
            list = escape(&self.list),
            list_id = escape(self.list_id.as_deref().unwrap_or("-")),
            class = if ok { "ok" } else { "bad" },
            status = self.status,
            reason = self
                .reason
                .as_deref()
                .map(|r| format!(": {}", escape(r)))
                .unwrap_or_default(),
            started = escape(&self.started_at),
            finished = escape(&self.finished_at),
        );
        if let Some(c) = &self.simulated_clock {
            let _ = write!(s, "<p id=\"clock\">{}</p>", escape(&c.sentence()));
        }

        s.push_str("<h2>Deadline: ten business days (47 CFR 64.1200(d)(3))</h2>");
        match &self.deadline {
            Some(d) => {
                let good = matches!(d.state, DeadlineState::Honoured | DeadlineState::Open);
                let _ = write!(
                    s,
                    "<p id=\"deadline\" data-state=\"{}\" data-business-days=\"{}\" class=\"{}\"><b>{}</b></p><table>",
                    d.state.as_str(),
                    d.business_days,
                    if good { "ok" } else { "bad" },
                    escape(&d.sentence())
                );
                row(&mut s, "received", &d.received_at);
                if let Some(c) = &d.clock_from {
                    row(&mut s, "clock from (numbers first received earlier)", c);
                }
                row(
                    &mut s,
                    "verified",
                    d.verified_at.as_deref().unwrap_or("not verified"),
                );
                row(
                    &mut s,
                    "deadline",
                    &format!(
                        "{} (end of the tenth business day, {})",
                        d.deadline, d.time_zone
                    ),
                );
                row(&mut s, "business days", &d.business_days.to_string());
                s.push_str("</table>");
            }
            None => s.push_str("<p>No receipt time is recorded for this run.</p>"),
        }

        // The timeline: received → normalized → uploaded → propagated → verified, from the run's records, the
        // deadline drawn on it.
        s.push_str("<h2>Timeline</h2><table id=\"moments\"><tr><th>moment</th><th>time</th></tr>");
        let mut points: Vec<(&str, Option<&str>)> = Vec::new();
        if let Some(c) = self.deadline.as_ref().and_then(|d| d.clock_from.as_deref()) {
            if Some(c) != self.deadline.as_ref().map(|d| d.received_at.as_str()) {
                points.push(("numbers first received", Some(c)));
            }
        }
        points.extend(self.timeline());
        for (moment, at) in &points {
            let _ = write!(
                s,
                "<tr data-moment=\"{m}\"><th>{m}</th><td class=\"mono\">{t}</td></tr>",
                m = escape(moment),
                t = escape(at.unwrap_or("-")),
            );
        }
        let deadline = self.deadline.as_ref().map(|d| d.deadline.as_str());
        if let Some(d) = deadline {
            row(&mut s, "deadline", d);
        }
        s.push_str("</table>");
        s += &timeline(&points, deadline);

        if let Some(src) = &self.source_identity {
            s.push_str("<h2>Source</h2><table id=\"source\">");
            for (k, v) in [
                ("path", src.path.clone()),
                ("bucket", src.bucket.clone()),
                ("key", src.key.clone()),
                ("version", src.version_id.clone()),
                ("ETag", src.etag.clone()),
                ("SHA-256", Some(src.sha256.clone())),
                ("bytes", Some(src.bytes.to_string())),
                ("received", src.received_at.clone()),
                ("normalized", self.normalized_at.clone()),
            ] {
                if let Some(v) = v {
                    row(&mut s, k, &v);
                }
            }
            s.push_str("</table>");
        }

        let _ = write!(
            s,
            "<h2>Accounting</h2><p id=\"identity-rows\" data-balanced=\"{b}\"><code>rows = accepted + duplicates + \
             rejected</code>: {} = {} + {} + {} ({bal})</p><p id=\"identity-lines\"><code>lines = header + blank + \
             records + continuation lines</code>: {} = {} + {} + {} + {}</p><table id=\"counts\">",
            n.rows,
            n.accepted,
            n.duplicates,
            n.rejected,
            n.lines,
            n.header_lines,
            n.blank_lines,
            n.records,
            n.continuation_lines,
            b = n.balanced(),
            bal = if n.balanced() { "balanced" } else { "NOT BALANCED" },
        );
        for (name, id, v) in [
            ("lines", "lines", n.lines),
            ("header lines", "headerLines", n.header_lines),
            ("blank lines", "blankLines", n.blank_lines),
            ("records", "records", n.records),
            (
                "continuation lines",
                "continuationLines",
                n.continuation_lines,
            ),
            ("rows", "rows", n.rows),
            ("accepted", "accepted", n.accepted),
            ("duplicates", "duplicates", n.duplicates),
            ("rejected", "rejected", n.rejected),
        ] {
            count_row(&mut s, name, id, v);
        }
        if n.rejects_not_written > 0 {
            count_row(
                &mut s,
                "rejects counted, not written (beyond each reason's samples)",
                "rejectsNotWritten",
                n.rejects_not_written,
            );
        }
        s.push_str("</table>");

        s.push_str("<h2>Rejected rows by reason</h2>");
        if n.reject_reasons.is_empty() {
            s.push_str("<p>None.</p>");
        } else {
            let mut reasons: Vec<(String, u64)> = n
                .reject_reasons
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            s += &bar_chart("rejects", &reasons);
            s.push_str("<table><tr><th>reason</th><th>rows</th><th>examples (masked)</th></tr>");
            for (reason, count) in &reasons {
                let shown = examples
                    .rejects
                    .get(reason)
                    .map(|v| v.iter().map(|e| escape(e)).collect::<Vec<_>>().join(" · "))
                    .unwrap_or_default();
                let _ = write!(
                    s,
                    "<tr><td>{}</td><td class=\"n\">{count}</td><td class=\"mono\">{shown}</td></tr>",
                    escape(reason)
                );
            }
            s.push_str("</table>");
        }

        s.push_str("<h2>Accepted numbers by jurisdiction</h2>");
        if self.jurisdictions.is_empty() {
            s.push_str("<p>Not recorded (the run did not reach reconciliation).</p>");
        } else {
            let mut top: Vec<(String, u64)> = self
                .jurisdictions
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let rest: u64 = top.iter().skip(12).map(|(_, n)| n).sum();
            top.truncate(12);
            if rest > 0 {
                top.push(("others".into(), rest));
            }
            s += &bar_chart("jurisdictions", &top);
        }

        if !n.flagged.is_empty() {
            s.push_str("<h2>Flags</h2><table>");
            for (flag, count) in &n.flagged {
                count_row(&mut s, flag, &format!("flag-{flag}"), *count);
            }
            s.push_str("</table>");
        }

        s.push_str("<h2>CXone</h2><table id=\"upload\">");
        for (name, id, v) in [
            ("created", "created", u.created),
            ("already there", "exists", u.exists),
            ("rejected (dead letters)", "deadLetters", u.rejected),
            ("unconfirmed", "unconfirmed", u.unconfirmed),
            ("re-uploaded", "reuploaded", u.reuploaded),
        ] {
            count_row(&mut s, name, id, v);
        }
        s.push_str("</table>");
        if !self.dead_letter_reasons.is_empty() || !examples.dead_letters.is_empty() {
            s.push_str("<h3>Dead letters by CXone's reason</h3><table>");
            for (code, count) in &self.dead_letter_reasons {
                count_row(&mut s, code, &format!("dead-{code}"), *count);
            }
            s.push_str("</table><table><tr><th>number (masked)</th><th>code</th><th>CXone's message</th></tr>");
            for (number, code, message) in &examples.dead_letters {
                let _ = write!(
                    s,
                    "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>",
                    escape(number),
                    escape(code),
                    escape(message)
                );
            }
            s.push_str("</table>");
        }

        let _ = write!(
            s,
            "<h2>Reconciliation ({} round{})</h2><table id=\"reconcile\">",
            self.reconcile_rounds,
            if self.reconcile_rounds == 1 { "" } else { "s" }
        );
        for (name, id, v) in [
            ("expected", "expected", self.expected as u64),
            ("found", "found", self.found as u64),
            ("missing", "missing", self.missing as u64),
            (
                "wrong expiration",
                "wrongExpiration",
                self.wrong_expiration as u64,
            ),
            (
                "wrong jurisdiction",
                "wrongJurisdiction",
                self.wrong_jurisdiction as u64,
            ),
        ] {
            count_row(&mut s, name, id, v);
        }
        s.push_str("</table><h2>Canary</h2>");
        match &self.canary {
            Some(c) => {
                let _ = write!(
                    s,
                    "<p id=\"canary\">{} of {} probed numbers answered suppressed{}</p>",
                    c.suppressed,
                    c.probed,
                    if c.pending.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; not yet: {}",
                            c.pending
                                .iter()
                                .map(|p| escape(p))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                );
            }
            None => s.push_str("<p>No canary probe recorded.</p>"),
        }
        s.push_str("</body></html>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::deadline::DeadlineOutcome;
    use crate::run::{Counts, RunStatus, SourceIdentity, UploadCounts};

    fn report() -> RunReport {
        let mut counts = Counts {
            rows: 11,
            accepted: 6,
            duplicates: 1,
            rejected: 4,
            header_lines: 1,
            blank_lines: 1,
            lines: 13,
            records: 11,
            ..Counts::default()
        };
        for r in [
            "TOO_SHORT",
            "EXPIRED",
            "PRECISION_LOST",
            "INVALID_AREA_CODE",
        ] {
            counts.reject_reasons.insert(r.into(), 1);
        }
        let cal = crate::hours::business_days::BusinessCalendar::federal();
        let received: DateTime<Utc> = "2026-12-01T19:05:00Z".parse().unwrap();
        let verified: DateTime<Utc> = "2026-12-04T15:00:00Z".parse().unwrap();
        RunReport {
            run_id: "demo-1".into(),
            list: "demo <list>".into(),
            list_id: Some("list-1".into()),
            status: RunStatus::Success,
            reason: None,
            started_at: "2026-12-04T14:00:00Z".into(),
            finished_at: "2026-12-04T15:00:00Z".into(),
            normalize: counts,
            upload: UploadCounts {
                created: 6,
                ..Default::default()
            },
            canary: None,
            reconcile_rounds: 1,
            expected: 6,
            found: 6,
            missing: 0,
            wrong_expiration: 0,
            wrong_jurisdiction: 0,
            source: Some("incoming/demo/a&b.csv".into()),
            source_identity: Some(SourceIdentity {
                bucket: Some("bucket".into()),
                key: Some("incoming/demo/a&b.csv".into()),
                sha256: "ab".repeat(32),
                bytes: 388,
                received_at: Some(received.to_rfc3339()),
                ..Default::default()
            }),
            normalized_at: Some("2026-12-04T13:59:00Z".into()),
            uploaded_at: Some("2026-12-04T14:10:00Z".into()),
            propagated_at: Some("2026-12-04T14:13:30Z".into()),
            deadline: Some(DeadlineOutcome::measure(
                cal,
                received,
                received,
                Some(verified),
                verified,
            )),
            jurisdictions: [("US-DC".to_string(), 4u64), ("GB".to_string(), 2)].into(),
            dead_letter_reasons: BTreeMap::new(),
            simulated_clock: None,
        }
    }

    #[test]
    fn the_page_shows_every_count_one_bar_per_reason_and_the_deadline_with_nothing_fetched_or_run()
    {
        let mut examples = ReportExamples::default();
        examples.rejects.insert(
            "TOO_SHORT".into(),
            vec![crate::phone::mask("555-0198<script>")],
        );
        let html = report().html(&examples);
        assert_eq!(
            html.matches("<rect class=\"bar\"").count(),
            4 + 2,
            "4 reasons, 2 jurisdictions"
        );
        for reason in [
            "TOO_SHORT",
            "EXPIRED",
            "PRECISION_LOST",
            "INVALID_AREA_CODE",
        ] {
            assert!(
                html.contains(&format!("data-name=\"{reason}\" data-count=\"1\"")),
                "{reason}"
            );
        }
        for (id, n) in [
            ("rows", 11),
            ("accepted", 6),
            ("duplicates", 1),
            ("rejected", 4),
            ("lines", 13),
        ] {
            assert!(html.contains(&format!("data-count=\"{id}\">{n}<")), "{id}");
        }
        assert!(html.contains("id=\"deadline-marker\""));
        // The five moments, in order, on the timeline and in its table.
        let mut at = 0;
        for (moment, time) in [
            ("received", "2026-12-01T19:05:00+00:00"),
            ("normalized", "2026-12-04T13:59:00Z"),
            ("uploaded", "2026-12-04T14:10:00Z"),
            ("propagated", "2026-12-04T14:13:30Z"),
            ("verified", "2026-12-04T15:00:00+00:00"),
        ] {
            let row = format!(
                "<tr data-moment=\"{moment}\"><th>{moment}</th><td class=\"mono\">{time}</td>"
            );
            let found = html[at..]
                .find(&row)
                .unwrap_or_else(|| panic!("{row} not after byte {at}"));
            at += found;
            assert!(html.contains(&format!("class=\"moment\" data-name=\"{moment}\"")));
        }
        let md = report().markdown();
        assert!(
            md.contains("| normalized | 2026-12-04T13:59:00Z |\n| uploaded | 2026-12-04T14:10:00Z |\n| propagated | 2026-12-04T14:13:30Z |\n| verified | 2026-12-04T15:00:00+00:00 |\n"),
            "{md}"
        );
        assert!(html.contains("data-state=\"honoured\" data-business-days=\"3\""));
        assert!(html.contains("honoured in 3 business days"));
        // Escaped, never markup; nothing executable or fetched.
        assert!(html.contains("demo &lt;list&gt;") && html.contains("a&amp;b.csv"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script"));
        for fetch in ["src=", "href=", "@import", "url("] {
            assert!(!html.contains(fetch), "{fetch}");
        }
    }

    #[test]
    fn escape_covers_the_five_characters() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
