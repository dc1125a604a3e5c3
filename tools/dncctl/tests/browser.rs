//! The pages an auditor opens, in a real browser: a run's `report.html` and a list's evidence `index.html`, rendered
//! by headless Chromium (Debian's `chromium`, which `scripts/test.sh` installs; `DNCFLOW_CHROMIUM` names another
//! binary). The DOM Chromium built holds the manifest's counts, one bar per reject reason and the deadline marker; a
//! screenshot is taken; the browser logs no console message and fetches nothing (every request outside the page is
//! refused by a host rule, so a page that needed one would render without it and fail the checks).

use std::path::{Path, PathBuf};
use std::process::Command;

fn dncctl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dncctl"));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    c
}

fn chromium() -> String {
    std::env::var("DNCFLOW_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// Render `page` headless: its DOM as Chromium serialized it, and a screenshot at `png`. Panics naming what failed.
fn render(page: &Path, png: &Path, profile: &Path) -> String {
    let common = |c: &mut Command| {
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1000,2400",
            // Nothing leaves the page: a resource it needed would not load.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
    };
    let url = format!("file://{}", page.display());
    let mut dom = Command::new(chromium());
    common(&mut dom);
    let out = dom
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} not found ({e}): scripts/test.sh installs Debian's chromium",
                chromium()
            )
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Console messages (errors, warnings, logs) are reported as `CONSOLE(…)` lines: there must be none.
    assert!(!stderr.contains("CONSOLE"), "console output: {stderr}");
    let dom = String::from_utf8(out.stdout).unwrap();
    let mut shot = Command::new(chromium());
    common(&mut shot);
    let out = shot
        .arg(format!("--screenshot={}", png.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "{} bytes",
        bytes.len()
    );
    dom
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_run_report_and_an_evidence_index_render_in_chromium_with_their_figures() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let result = dncctl()
        .args([
            "run",
            "examples/sample-dnc.csv",
            "--list",
            "demo",
            "--received-at",
            "2026-12-01T14:05:00-05:00",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let status = json(&out.join("status/demo/latest.json"));
    let run_id = status["runId"].as_str().unwrap().to_string();
    let run_dir: PathBuf = out.join("runs").join(&run_id);
    let manifest = json(&run_dir.join("manifest.json"));
    let profile = dir.path().join("chromium-profile");

    let dom = render(
        &run_dir.join("report.html"),
        &dir.path().join("report.png"),
        &profile,
    );
    for id in [
        "rows",
        "accepted",
        "duplicates",
        "rejected",
        "lines",
        "records",
    ] {
        let n = manifest["counts"][id].as_u64().unwrap();
        assert!(
            dom.contains(&format!("data-count=\"{id}\">{n}<")),
            "{id} = {n} not in the DOM"
        );
    }
    let reasons = manifest["counts"]["rejectReasons"].as_object().unwrap();
    assert!(!reasons.is_empty());
    for (reason, n) in reasons {
        assert_eq!(
            dom.matches(&format!(
                "class=\"bar\" data-name=\"{reason}\" data-count=\"{n}\""
            ))
            .count(),
            1,
            "one bar for {reason}"
        );
    }
    assert!(
        dom.contains("id=\"deadline-marker\""),
        "the deadline is drawn"
    );
    assert!(dom.contains("id=\"timeline\""));
    // The timeline's five moments, each with its time from the report, as a row and as a point on the chart.
    let report = json(&run_dir.join("report.json"));
    for (moment, at) in [
        ("received", &report["deadline"]["receivedAt"]),
        ("normalized", &report["normalizedAt"]),
        ("uploaded", &report["uploadedAt"]),
        ("propagated", &report["propagatedAt"]),
        ("verified", &report["deadline"]["verifiedAt"]),
    ] {
        let at = at
            .as_str()
            .unwrap_or_else(|| panic!("no {moment} in {report}"));
        assert!(
            dom.contains(&format!(
                "<tr data-moment=\"{moment}\"><th>{moment}</th><td class=\"mono\">{at}</td></tr>"
            )),
            "{moment} {at}"
        );
        assert_eq!(
            dom.matches(&format!("class=\"moment\" data-name=\"{moment}\""))
                .count(),
            1,
            "{moment} on the chart"
        );
    }
    assert!(!dom.contains("2025550198"), "numbers masked");

    let evidence = dir.path().join("evidence");
    let result = dncctl()
        .args(["evidence", "--list", "demo", "--runs"])
        .arg(&out)
        .arg("--out")
        .arg(&evidence)
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let dom = render(
        &evidence.join("index.html"),
        &dir.path().join("index.png"),
        &profile,
    );
    assert!(dom.contains("data-count=\"runs\">1<"), "{dom}");
    assert_eq!(dom.matches("class=\"bar\" data-run=").count(), 1);
    assert!(dom.contains("id=\"deadline-marker\""));
    assert!(dom.contains(&format!("href=\"runs/{run_id}/report.html\"")));
    // The linked page is there, beside the index.
    assert!(evidence
        .join("runs")
        .join(&run_id)
        .join("report.html")
        .exists());
}
