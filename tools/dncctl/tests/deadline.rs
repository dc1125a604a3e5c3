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
    run_in(dncctl(), out, file, received_at, extra)
}

/// The same with `command` (a `dncctl` given its environment).
fn run_in(
    mut command: Command,
    out: &Path,
    file: &str,
    received_at: &str,
    extra: &[&str],
) -> (bool, String) {
    let result = command
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
    // The timeline from the run's own records (the manifest, the cooldown's canary record, the read-back), in
    // order: received → normalized → uploaded → propagated → verified; in report.md and report.html.
    let moments = [
        ("received", d["receivedAt"].clone()),
        ("normalized", report["normalizedAt"].clone()),
        ("uploaded", report["uploadedAt"].clone()),
        ("propagated", report["propagatedAt"].clone()),
        ("verified", d["verifiedAt"].clone()),
    ];
    for pair in moments.windows(2) {
        assert!(
            at(&pair[0].1) <= at(&pair[1].1),
            "{} {} after {} {}",
            pair[0].0,
            pair[0].1,
            pair[1].0,
            pair[1].1
        );
    }
    let canary = json(&out.join(format!("runs/{sample}/canary/0.json")));
    assert_eq!(report["uploadedAt"], canary["lastWriteAt"]);
    assert_eq!(report["propagatedAt"], canary["probedAt"]);
    let md = std::fs::read_to_string(out.join(format!("runs/{sample}/report.md"))).unwrap();
    let page = std::fs::read_to_string(out.join(format!("runs/{sample}/report.html"))).unwrap();
    for (moment, t) in &moments {
        let t = t.as_str().unwrap();
        assert!(
            md.contains(&format!("| {moment} | {t} |")),
            "{moment}\n{md}"
        );
        assert!(
            page.contains(&format!(
                "<tr data-moment=\"{moment}\"><th>{moment}</th><td class=\"mono\">{t}</td>"
            )),
            "{moment}"
        );
        assert!(page.contains(&format!("class=\"moment\" data-name=\"{moment}\"")));
    }
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

#[test]
fn the_business_day_time_zone_is_a_setting_and_moves_the_deadline() {
    // Friday 4 December 2026 at 20:00 in New York is Saturday morning in Tokyo: counted in New York the tenth
    // business day after the receipt is Friday 18 December, ending at midnight New York time; counted in Tokyo it is
    // also Friday the 18th (the Saturday receipt day is not a business day), ending 14 hours earlier.
    let received_at = "2026-12-04T20:00:00-05:00";
    let dir = tempfile::tempdir().unwrap();
    let mut outcomes = Vec::new();
    for (zone, deadline) in [
        (None, "2026-12-19T05:00:00+00:00"),
        (Some("Asia/Tokyo"), "2026-12-18T15:00:00+00:00"),
    ] {
        let out = dir.path().join(zone.unwrap_or("default").replace('/', "-"));
        let mut command = dncctl();
        if let Some(z) = zone {
            command.env("DNCFLOW_BUSINESS_TIME_ZONE", z);
        }
        let (ok, run_id) = run_in(command, &out, "examples/sample-dnc.csv", received_at, &[]);
        assert!(ok);
        let report = json(&out.join(format!("runs/{run_id}/report.json")));
        let d = &report["deadline"];
        let zone_name = zone.unwrap_or("America/New_York");
        assert_eq!(d["receivedAt"], "2026-12-05T01:00:00+00:00");
        assert_eq!(d["timeZone"], zone_name);
        assert_eq!(d["deadline"], deadline, "{zone_name}");
        let cal = BusinessCalendar::for_zone(zone_name).unwrap();
        assert_eq!(
            d["businessDays"].as_u64().unwrap(),
            u64::from(cal.elapsed(at(&d["receivedAt"]), at(&d["verifiedAt"]))),
            "{zone_name}"
        );
        let md = std::fs::read_to_string(out.join(format!("runs/{run_id}/report.md"))).unwrap();
        assert!(
            md.contains(&format!(
                "| deadline | {deadline} (end of the tenth business day, {zone_name}) |"
            )),
            "{md}"
        );
        // The evidence counts in the same zone and says which.
        let mut evidence = dncctl();
        if let Some(z) = zone {
            evidence.env("DNCFLOW_BUSINESS_TIME_ZONE", z);
        }
        let result = evidence
            .args(["evidence", "--list", "demo", "--runs"])
            .arg(&out)
            .arg("--out")
            .arg(out.join("evidence"))
            .output()
            .unwrap();
        assert!(result.status.success());
        let index = std::fs::read_to_string(out.join("evidence/index.html")).unwrap();
        assert!(index.contains(&format!("<span id=\"time-zone\">{zone_name}</span>")));
        let csv = std::fs::read_to_string(out.join("evidence/evidence.csv")).unwrap();
        assert!(csv.contains(&format!(",{deadline},")), "{csv}");
        outcomes.push(d["deadline"].clone());
    }
    assert_ne!(outcomes[0], outcomes[1]);

    // A zone that does not exist is refused, named, before anything is written.
    let out = dir.path().join("mars");
    let result = dncctl()
        .env("DNCFLOW_BUSINESS_TIME_ZONE", "Mars/Olympus_Mons")
        .args(["run", "examples/sample-dnc.csv", "--list", "demo", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("DNCFLOW_BUSINESS_TIME_ZONE") && stderr.contains("Mars/Olympus_Mons"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing written");
}
