//! The ten-business-day deadline as the documents record it: each file a list receives is a [`Receipt`] in the
//! list's received document until every number it brought is verified held (or otherwise settled), then a
//! [`ClosedReceipt`]; a run's report and the list's status show a [`DeadlineOutcome`]. The arithmetic is
//! [`crate::hours::business_days`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::hours::business_days::{BusinessCalendar, DEADLINE_BUSINESS_DAYS};

/// A file a list received whose numbers are not all verified held yet: its deadline is running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// The run the file became.
    pub run_id: String,
    /// The file (`s3://bucket/key`, or a local path).
    pub source: String,
    /// When the file was received (RFC 3339): the S3 event's time or the object's `LastModified`; locally the
    /// file's modification time or `--received-at`. The earliest, when the same content arrived again.
    pub received_at: String,
    /// When the clock of the numbers it carries started (RFC 3339): its own receipt, or an earlier file's whose
    /// numbers, not verified yet, arrived again in this one (the earlier receipt is then closed as carried). The
    /// deadline runs from here.
    pub clock_from: String,
}

/// A receipt whose numbers were all settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClosedReceipt {
    /// The receipt as it was while open: file, when received, when its clock started.
    #[serde(flatten)]
    pub receipt: Receipt,
    /// When its last number was settled (RFC 3339).
    pub closed_at: String,
    /// How: `verified:<runId>` (a verified read-back showed CXone holding them, the refused ones kept as dead
    /// letters), `carried:<runId>` (they arrived again in a later file, whose clock starts at this one's),
    /// `removed` (an operator), `expired`, `resolved` (none left for another reason).
    pub how: String,
}

impl ClosedReceipt {
    /// The run whose verification closed it, when one did.
    pub fn verified_by(&self) -> Option<&str> {
        self.how.strip_prefix("verified:")
    }
}

/// Where a request stands against its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeadlineState {
    /// Verified within the ten business days.
    Honoured,
    /// Verified, after the deadline.
    Late,
    /// Not verified yet, the deadline not passed.
    Open,
    /// Not verified, the deadline passed.
    Overdue,
}

impl DeadlineState {
    /// As written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineState::Honoured => "honoured",
            DeadlineState::Late => "late",
            DeadlineState::Open => "open",
            DeadlineState::Overdue => "overdue",
        }
    }
}

/// One file's deadline, measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadlineOutcome {
    /// When the file was received (RFC 3339).
    pub received_at: String,
    /// When the clock started, when earlier than the receipt (numbers carried from an earlier file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_from: Option<String>,
    /// The first instant after the tenth business day (RFC 3339): verified before it is in time.
    pub deadline: String,
    /// The IANA zone whose dates are counted.
    pub time_zone: String,
    /// When CXone was verified to hold the numbers (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_at: Option<String>,
    /// Business days from the receipt to the verification (or, not verified, to when this was measured).
    pub business_days: u32,
    /// `honoured`, `late`, `open` or `overdue`.
    pub state: DeadlineState,
}

fn parse(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

impl DeadlineOutcome {
    /// Measure a file received at `received_at` whose clock started at `clock_from` (the same, or earlier), verified
    /// at `verified_at` or not yet at `now`.
    pub fn measure(
        calendar: &BusinessCalendar,
        received_at: DateTime<Utc>,
        clock_from: DateTime<Utc>,
        verified_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> DeadlineOutcome {
        let start = clock_from.min(received_at);
        let deadline = calendar.deadline(start);
        let until = verified_at.unwrap_or(now);
        let business_days = calendar.elapsed(start, until);
        let state = match verified_at {
            Some(v) if v < deadline => DeadlineState::Honoured,
            Some(_) => DeadlineState::Late,
            None if now < deadline => DeadlineState::Open,
            None => DeadlineState::Overdue,
        };
        DeadlineOutcome {
            received_at: received_at.to_rfc3339(),
            clock_from: (start < received_at).then(|| start.to_rfc3339()),
            deadline: deadline.to_rfc3339(),
            time_zone: calendar.time_zone().name().to_string(),
            verified_at: verified_at.map(|v| v.to_rfc3339()),
            business_days,
            state,
        }
    }

    /// The outcome of an open receipt at `now`; `None` when its times do not parse.
    pub fn of_open(
        calendar: &BusinessCalendar,
        r: &Receipt,
        now: DateTime<Utc>,
    ) -> Option<DeadlineOutcome> {
        Some(Self::measure(
            calendar,
            parse(&r.received_at)?,
            parse(&r.clock_from)?,
            None,
            now,
        ))
    }

    /// The outcome of a closed receipt: verified at its closing when a verification closed it, else still measured
    /// (as open or overdue) at its closing.
    pub fn of_closed(calendar: &BusinessCalendar, c: &ClosedReceipt) -> Option<DeadlineOutcome> {
        let closed = parse(&c.closed_at)?;
        Some(Self::measure(
            calendar,
            parse(&c.receipt.received_at)?,
            parse(&c.receipt.clock_from)?,
            c.verified_by().is_some().then_some(closed),
            closed,
        ))
    }

    /// "honoured in 3 business days", "not verified: 4 business days so far, deadline …".
    pub fn sentence(&self) -> String {
        let days = |n: u32| format!("{n} business day{}", if n == 1 { "" } else { "s" });
        match self.state {
            DeadlineState::Honoured => format!(
                "honoured in {} (deadline {} business days)",
                days(self.business_days),
                DEADLINE_BUSINESS_DAYS
            ),
            DeadlineState::Late => format!(
                "LATE: verified {}, past the {}-business-day deadline {} ({} counted)",
                self.verified_at.as_deref().unwrap_or("-"),
                DEADLINE_BUSINESS_DAYS,
                self.deadline,
                days(self.business_days)
            ),
            DeadlineState::Open => format!(
                "not verified yet: {} of {} used, deadline {}",
                days(self.business_days),
                DEADLINE_BUSINESS_DAYS,
                self.deadline
            ),
            DeadlineState::Overdue => format!(
                "OVERDUE: not verified after {}, deadline {} passed",
                days(self.business_days),
                self.deadline
            ),
        }
    }
}

/// A received file not yet verified, as the list's status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptDeadline {
    /// The run the file became.
    pub run_id: String,
    /// The file (`s3://bucket/key` or a path).
    pub source: String,
    /// Its deadline, measured when the status was written.
    #[serde(flatten)]
    pub outcome: DeadlineOutcome,
}

/// Every open receipt measured at `now`, oldest clock first.
pub fn open_deadlines(
    calendar: &BusinessCalendar,
    receipts: &[Receipt],
    now: DateTime<Utc>,
) -> Vec<ReceiptDeadline> {
    let mut out: Vec<ReceiptDeadline> = receipts
        .iter()
        .filter_map(|r| {
            Some(ReceiptDeadline {
                run_id: r.run_id.clone(),
                source: r.source.clone(),
                outcome: DeadlineOutcome::of_open(calendar, r, now)?,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        (b.outcome.business_days, &a.outcome.deadline)
            .cmp(&(a.outcome.business_days, &b.outcome.deadline))
    });
    out
}

/// The oldest open receipt's age in business days at `now` (0 when every received file is verified): the metric
/// the deadline alarms watch.
pub fn oldest_open_business_days(
    calendar: &BusinessCalendar,
    receipts: &[Receipt],
    now: DateTime<Utc>,
) -> u32 {
    receipts
        .iter()
        .filter_map(|r| DeadlineOutcome::of_open(calendar, r, now))
        .map(|o| o.business_days)
        .max()
        .unwrap_or(0)
}

/// The EMF line of a list's oldest unverified receipt (metric `OldestUnverifiedReceiptBusinessDays`, namespace
/// `dncflow`, by list and over every list): the alarms fire at the warning threshold and at the deadline.
pub fn deadline_emf(list: &str, business_days: u32, timestamp_ms: i64) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "dncflow",
                // Two sets: per list, and one without dimensions that the alarms watch (every list at once).
                "Dimensions": [["List"], []],
                "Metrics": [{"Name": "OldestUnverifiedReceiptBusinessDays", "Unit": "Count"}],
            }],
        },
        "List": list,
        "OldestUnverifiedReceiptBusinessDays": business_days,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn outcomes_on_both_sides_of_the_deadline() {
        let cal = BusinessCalendar::federal();
        // Received Monday 2 November 2026 10:00 New York; Veterans Day on the 11th: the tenth is Tuesday 17.
        let received = at("2026-11-02T15:00:00Z");
        let o = DeadlineOutcome::measure(
            cal,
            received,
            received,
            Some(at("2026-11-04T20:00:00Z")),
            at("2026-11-04T20:00:00Z"),
        );
        assert_eq!((o.state, o.business_days), (DeadlineState::Honoured, 2));
        assert_eq!(o.deadline, "2026-11-18T05:00:00+00:00");
        assert_eq!(
            o.sentence(),
            "honoured in 2 business days (deadline 10 business days)"
        );
        let late = DeadlineOutcome::measure(
            cal,
            received,
            received,
            Some(at("2026-11-18T14:00:00Z")),
            at("2026-11-18T14:00:00Z"),
        );
        assert_eq!((late.state, late.business_days), (DeadlineState::Late, 11));
        let open =
            DeadlineOutcome::measure(cal, received, received, None, at("2026-11-10T12:00:00Z"));
        assert_eq!((open.state, open.business_days), (DeadlineState::Open, 6));
        let overdue =
            DeadlineOutcome::measure(cal, received, received, None, at("2026-11-18T05:00:00Z"));
        assert_eq!(
            (overdue.state, overdue.business_days),
            (DeadlineState::Overdue, 11)
        );
        // Verified on the weekend after the tenth business day: late, though the count is still ten (the deadline
        // ends with the tenth business day; found by the property test).
        let weekend = DeadlineOutcome::measure(
            cal,
            at("2031-04-19T05:43:46Z"),
            at("2031-04-19T05:43:46Z"),
            Some(at("2031-05-03T04:00:00Z")),
            at("2031-05-03T04:00:00Z"),
        );
        assert_eq!(
            (weekend.state, weekend.business_days),
            (DeadlineState::Late, 10)
        );
        // A clock carried from an earlier file: measured from there.
        let carried = DeadlineOutcome::measure(
            cal,
            at("2026-11-09T15:00:00Z"),
            received,
            Some(at("2026-11-10T15:00:00Z")),
            at("2026-11-10T15:00:00Z"),
        );
        assert_eq!(carried.business_days, 6);
        assert_eq!(
            carried.clock_from.as_deref(),
            Some("2026-11-02T15:00:00+00:00")
        );
    }

    #[test]
    fn open_receipts_oldest_first_and_the_metric() {
        let cal = BusinessCalendar::federal();
        let r = |id: &str, t: &str| Receipt {
            run_id: id.into(),
            source: format!("s3://b/incoming/l/{id}.csv"),
            received_at: t.into(),
            clock_from: t.into(),
        };
        let receipts = [
            r("new", "2026-12-03T12:00:00Z"),
            r("old", "2026-11-30T12:00:00Z"),
        ];
        let now = at("2026-12-07T12:00:00Z");
        let open = open_deadlines(cal, &receipts, now);
        assert_eq!(open[0].run_id, "old");
        assert_eq!(open[0].outcome.business_days, 5);
        assert_eq!(oldest_open_business_days(cal, &receipts, now), 5);
        assert_eq!(oldest_open_business_days(cal, &[], now), 0);
        let line: serde_json::Value = serde_json::from_str(&deadline_emf("l", 5, 1)).unwrap();
        assert_eq!(line["OldestUnverifiedReceiptBusinessDays"], 5);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"][1],
            serde_json::json!([])
        );
    }
}
