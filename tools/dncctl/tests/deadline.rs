//! The ten-business-day deadline (47 CFR 64.1200(d)(3)) measured by local runs as a user runs them: a run records its
//! file's receipt and the business days to verification, a failed run's file keeps waiting in the list's status
//! (its clock is not stopped), and a later file bringing the same numbers is measured from the first receipt.

use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Utc};
use dncflow::hours::business_days::BusinessCalendar;
use serde_json::Value;

fn dncctl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dncctl"));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    c
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

fn at(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap()
        .with_timezone(&Utc)
}

/// `dncctl run FILE --list demo --received-at T --out OUT [extra]`; answers whether it succeeded and the run id.
fn run(out: &Path, file: &str, received_at: &str, extra: &[&str]) -> (bool, String) {
    let result = dncctl()
        .args([
            "run",
            file,
            "--list",
            "demo",
            "--received-at",
            received_at,
            "--out",
        ])
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    let run_id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("run        "))
        .unwrap_or_else(|| {
            panic!(
                "no run id in {stdout}\n{}",
                String::from_utf8_lossy(&result.stderr)
            )
        })
        .trim()
        .to_string();
    (result.status.success(), run_id)
}

#[test]
fn receipt_verification_and_business_days_run_by_run_and_a_failure_does_not_stop_the_clock() {
    let cal = BusinessCalendar::federal();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");

    // 1. The sample, received Tuesday 1 December 2026 at 14:05 in New York: verified by the run.
    let (ok, sample) = run(
        &out,
        "examples/sample-dnc.csv",
        "2026-12-01T14:05:00-05:00",
        &[],
    );
    assert!(ok);
    let report = json(&out.join(format!("runs/{sample}/report.json")));
    let d = &report["deadline"];
    assert_eq!(d["receivedAt"], "2026-12-01T19:05:00+00:00");
    // Ten business days after Tuesday 1 December: the 2nd-4th, 7th-11th, 14th and 15th; ends at midnight EST.
    assert_eq!(d["deadline"], "2026-12-16T05:00:00+00:00");
    assert_eq!(d["timeZone"], "America/New_York");
    let verified = at(&d["verifiedAt"]);
    let received = at(&d["receivedAt"]);
    assert_eq!(
        d["businessDays"].as_u64().unwrap(),
        u64::from(cal.elapsed(received, verified))
    );
    let expected_state = if verified < at(&d["deadline"]) {
        "honoured"
    } else {
        "late"
    };
    assert_eq!(d["state"], expected_state);
    assert_eq!(
        report["sourceIdentity"]["receivedAt"],
        "2026-12-01T19:05:00+00:00"
    );
    let sha = report["sourceIdentity"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sha.len(), 64);
    let md = std::fs::read_to_string(out.join(format!("runs/{sample}/report.md"))).unwrap();
    for needle in [
        "## Deadline (47 CFR 64.1200(d)(3): ten business days)",
        "| received | 2026-12-01T19:05:00+00:00 |",
        "| deadline | 2026-12-16T05:00:00+00:00 (end of the tenth business day, America/New_York) |",
        &format!("| SHA-256 | {sha} |"),
        "`rows = accepted + duplicates + rejected`: 11 = 6 + 1 + 4 (balanced)",
        "| INVALID_AREA_CODE | 1 |",
        "| PRECISION_LOST | 1 |",
    ] {
        assert!(md.contains(needle), "{needle} not in\n{md}");
    }
    let status = json(&out.join("status/demo/latest.json"));
    assert_eq!(status["unverified"], serde_json::json!([]));
    assert_eq!(status["oldestUnverifiedBusinessDays"], 0);

    // 2. Three numbers received Monday 2 November 2026, whose every write fails: FAILED, the file still waiting.
    let failing = dir.path().join("failing.csv");
    std::fs::write(
        &failing,
        "phone\n+13035550001\n+13035550002\n+13035550003\n",
    )
    .unwrap();
    let (ok, failed) = run(
        &out,
        failing.to_str().unwrap(),
        "2026-11-02T10:00:00-05:00",
        &[
            "--sim-fault",
            r#"{"endpoint":"entries-post","type":"server-error","status":503,"probability":1.0}"#,
        ],
    );
    assert!(!ok, "every write failed: the run fails");
    let status = json(&out.join("status/demo/latest.json"));
    let waiting = status["unverified"].as_array().unwrap();
    assert_eq!(waiting.len(), 1, "{status}");
    assert_eq!(waiting[0]["runId"], failed.as_str());
    assert_eq!(waiting[0]["receivedAt"], "2026-11-02T15:00:00+00:00");
    // Veterans Day (Wednesday 11 November) is not a business day: the tenth is Tuesday 17 November.
    assert_eq!(waiting[0]["deadline"], "2026-11-18T05:00:00+00:00");
    assert_eq!(waiting[0]["state"], "overdue");
    let days = u64::from(cal.elapsed(at(&waiting[0]["receivedAt"]), at(&status["updatedAt"])));
    assert!(
        days >= 22,
        "2 November to 6 December 2026 is 22 business days: {days}"
    );
    assert_eq!(waiting[0]["businessDays"].as_u64().unwrap(), days);
    assert_eq!(
        status["oldestUnverifiedBusinessDays"].as_u64().unwrap(),
        days
    );
    let report = json(&out.join(format!("runs/{failed}/report.json")));
    assert_eq!(report["deadline"]["state"], "overdue");
    assert!(report["deadline"].get("verifiedAt").is_none(), "{report}");

    // 3. The same numbers and one more, from another file received Thursday 3 December: verified, measured from the
    // first receipt (the numbers waited since 2 November), so late; nothing waits any more.
    let again = dir.path().join("again.csv");
    std::fs::write(
        &again,
        "phone,name\n+13035550001,a\n+13035550002,b\n+13035550003,c\n+13035550004,d\n",
    )
    .unwrap();
    let (_, later) = run(
        &out,
        again.to_str().unwrap(),
        "2026-12-03T10:00:00-05:00",
        &[],
    );
    let report = json(&out.join(format!("runs/{later}/report.json")));
    assert_eq!(report["status"], "SUCCESS");
    let d = &report["deadline"];
    assert_eq!(d["receivedAt"], "2026-12-03T15:00:00+00:00");
    assert_eq!(d["clockFrom"], "2026-11-02T15:00:00+00:00");
    assert_eq!(d["deadline"], "2026-11-18T05:00:00+00:00");
    assert_eq!(d["state"], "late");
    let status = json(&out.join("status/demo/latest.json"));
    assert_eq!(status["unverified"], serde_json::json!([]), "{status}");
    assert_eq!(status["oldestUnverifiedBusinessDays"], 0);
    // The failed file closed as carried by the later one, which closed verified.
    let received = std::fs::read_to_string(out.join("status/demo/received.txt")).unwrap();
    let header: Value = serde_json::from_str(received.lines().next().unwrap()).unwrap();
    let how = |run: &str| {
        header["closed"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["runId"] == run)
            .map(|c| c["how"].as_str().unwrap().to_string())
    };
    assert_eq!(how(&failed), Some(format!("carried:{later}")));
    assert_eq!(how(&later), Some(format!("verified:{later}")));
    assert_eq!(how(&sample), Some(format!("verified:{sample}")));

    // Every run wrote its page: the counts are the manifest's, one bar per reject reason, the deadline drawn.
    let page = std::fs::read_to_string(out.join(format!("runs/{sample}/report.html"))).unwrap();
    let manifest = json(&out.join(format!("runs/{sample}/manifest.json")));
    for id in ["rows", "accepted", "duplicates", "rejected", "lines"] {
        let n = manifest["counts"][id].as_u64().unwrap();
        assert!(
            page.contains(&format!("data-count=\"{id}\">{n}<")),
            "{id} {n}"
        );
    }
    let reasons = manifest["counts"]["rejectReasons"].as_object().unwrap();
    let report = json(&out.join(format!("runs/{sample}/report.json")));
    let jurisdictions = report["jurisdictions"].as_object().unwrap();
    assert_eq!(jurisdictions["US-DC"], 1, "{jurisdictions:?}");
    assert_eq!(
        page.matches("<rect class=\"bar\" data-name=").count(),
        reasons.len() + jurisdictions.len(),
        "one bar per reject reason and per jurisdiction"
    );
    for (reason, n) in reasons {
        assert!(
            page.contains(&format!("data-name=\"{reason}\" data-count=\"{n}\"")),
            "{reason}"
        );
    }
    assert!(page.contains("id=\"deadline-marker\""));
    assert!(
        !page.contains("<script") && !page.contains("2025550198"),
        "no script, numbers masked"
    );
    assert!(page.contains(&sha));

    // 4. The evidence of the period: three runs, one honoured (or late, if this runs after 16 December 2026), one
    // overdue, one late, in the CSV and the page.
    let evidence = dir.path().join("evidence");
    let result = dncctl()
        .args([
            "evidence",
            "--list",
            "demo",
            "--from",
            "2026-11-01",
            "--to",
            "2026-12-31",
            "--runs",
        ])
        .arg(&out)
        .arg("--out")
        .arg(&evidence)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(
        stdout.contains("list demo, 2026-11-01 to 2026-12-31: 3 runs"),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(evidence.join("evidence.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    // Oldest receipt first: the failed file, the sample, the later file.
    assert!(lines[1].starts_with(&format!("{failed},")), "{csv}");
    assert!(
        lines[1].contains(",2026-11-02T15:00:00+00:00,,,2026-11-18T05:00:00+00:00,"),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains(",overdue,FAILED,"), "{}", lines[1]);
    assert!(
        lines[1].ends_with(&format!(
            ",carried:{later} at {}",
            header["closed"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["runId"] == failed.as_str())
                .unwrap()["closedAt"]
                .as_str()
                .unwrap()
        )),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with(&format!(
            "{sample},examples/sample-dnc.csv,,{sha},2026-12-01T19:05:00+00:00,"
        )),
        "{}",
        lines[2]
    );
    assert!(lines[2].contains(&format!(",{expected_state},SUCCESS,,11,6,1,4,0,6,runs/{sample}/report.html,verified:{sample} at ")), "{}", lines[2]);
    assert!(lines[3].starts_with(&format!("{later},")), "{csv}");
    assert!(
        lines[3].contains(",2026-12-03T15:00:00+00:00,2026-11-02T15:00:00+00:00,"),
        "{}",
        lines[3]
    );
    assert!(lines[3].contains(",late,SUCCESS,"), "{}", lines[3]);
    let index = std::fs::read_to_string(evidence.join("index.html")).unwrap();
    assert_eq!(index.matches("<rect class=\"bar\"").count(), 3);
    assert!(
        index.contains("data-count=\"overdue\">1<") && index.contains("data-count=\"runs\">3<")
    );
    assert!(index.contains(&format!("<a href=\"runs/{sample}/report.html\">")));
    assert!(evidence.join(format!("runs/{sample}/report.html")).exists());
    // A period without receipts: no runs.
    let result = dncctl()
        .args([
            "evidence",
            "--list",
            "demo",
            "--from",
            "2027-01-01",
            "--runs",
        ])
        .arg(&out)
        .arg("--out")
        .arg(dir.path().join("empty"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&result.stdout).contains(": 0 runs"));

    // 5. One number: received by the failed run and by the later one, verified by the later one, held now.
    let result = dncctl()
        .args([
            "evidence",
            "lookup",
            "(303) 555-0002",
            "--list",
            "demo",
            "--runs",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(result.status.success(), "{stdout}");
    assert!(!stdout.contains("3035550002"), "masked: {stdout}");
    assert!(
        stdout.contains(&format!("received in run {failed} from")),
        "{stdout}"
    );
    assert!(stdout.contains("at 2026-11-02T15:00:00+00:00"), "{stdout}");
    assert!(
        stdout.contains(&format!("received in run {later} from")),
        "{stdout}"
    );
    assert!(stdout.contains("run FAILED at"), "{stdout}");
    assert!(stdout.contains("verified held by CXone at"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "now: suppressed: on the list as the last verified run ({later}"
        )),
        "{stdout}"
    );
    let result = dncctl()
        .args([
            "evidence",
            "lookup",
            "+1 202 555 0111",
            "--list",
            "demo",
            "--runs",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(stdout.contains("never received"), "{stdout}");
}
