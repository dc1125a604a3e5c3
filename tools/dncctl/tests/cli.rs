//! The README's main command and the CLI's exit statuses, run as a user would.

use std::process::Command;

fn dncctl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dncctl"));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    c
}

#[test]
fn the_main_command_runs_the_whole_job_on_the_sample() {
    let out = tempfile::tempdir().unwrap();
    let began = chrono::Utc::now();
    let result = dncctl()
        .args(["run", "examples/sample-dnc.csv", "--list", "demo", "--out"])
        .arg(out.path())
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let ended = chrono::Utc::now();
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stdout}\n{stderr}");
    // Logs into a pipe: plain text, never an ANSI escape code.
    assert!(
        stderr.contains("INFO") && !stderr.contains('\x1b'),
        "{stderr}"
    );
    assert!(
        stdout.contains("check: rows 11 = accepted 6 + duplicates 1 + rejected 4"),
        "{stdout}"
    );
    assert!(stdout.contains("status     SUCCESS"), "{stdout}");
    assert!(
        stdout.contains("verified   6 of 6 expected entries"),
        "{stdout}"
    );
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("status/demo/latest.json")).unwrap())
            .unwrap();
    assert_eq!(status["status"], "SUCCESS");
    // The report's times are the wall clock's (the run took seconds), and the simulated time (the cooldown's 180 s
    // at least, on the simulator's fast clock) is said as such.
    let run_dir = std::fs::read_dir(out.path().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("report.json").exists())
        .expect("a run directory with its report");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("report.json")).unwrap()).unwrap();
    let time = |field: &str| {
        chrono::DateTime::parse_from_rfc3339(report[field].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let slack = chrono::Duration::seconds(1);
    let (started, finished) = (time("startedAt"), time("finishedAt"));
    assert!(
        began - slack <= started && started <= finished && finished <= ended + slack,
        "report times {started} .. {finished} outside the command's {began} .. {ended}"
    );
    assert!(
        report["simulatedClock"]["scale"].as_f64().unwrap() > 1.0,
        "{report}"
    );
    assert!(
        report["simulatedClock"]["simulatedSeconds"]
            .as_f64()
            .unwrap()
            >= 180.0,
        "{report}"
    );
    let markdown = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(markdown.contains("of simulated time"), "{markdown}");
    // No raw number of the sample reaches the terminal: only counts are printed.
    assert!(
        !stdout.contains("2025550198")
            && !String::from_utf8_lossy(&result.stderr).contains("2025550198")
    );
}

/// The same command against the embedded simulator serving the Admin API's DNC groups: the group is created,
/// activated and scrubbed, every North American number verified on it, the UK number a dead letter (the dialect
/// holds ten-digit numbers only), never dropped.
#[test]
fn the_main_command_runs_against_the_admin_api_simulator() {
    let out = tempfile::tempdir().unwrap();
    let result = dncctl()
        .args([
            "run",
            "examples/sample-dnc.csv",
            "--list",
            "demo",
            "--dialect",
            "admin",
            "--log-format",
            "json",
            "--out",
        ])
        .arg(out.path())
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("dialect admin"), "{stderr}");
    // A pipe gets no escape codes; `--log-format json` gives one JSON object a log line.
    assert!(!stderr.contains('\x1b'), "{stderr}");
    let logged: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(logged.iter().any(|l| l["level"] == "INFO"), "{stderr}");
    assert!(stdout.contains("status     SUCCESS"), "{stdout}");
    assert!(
        stdout.contains("verified   5 of 5 expected entries"),
        "{stdout}"
    );
    assert!(stdout.contains("1 rejected (dead letters)"), "{stdout}");
    let run = std::fs::read_dir(out.path().join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let dead = std::fs::read_to_string(run.join("dead-letters.jsonl")).unwrap();
    assert!(dead.contains("NOT_NANP") && dead.contains("+44"), "{dead}");
    let bad = dncctl()
        .args([
            "run",
            "examples/sample-dnc.csv",
            "--list",
            "demo",
            "--dialect",
            "v3",
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("v2 or admin"));
}

#[test]
fn an_unreadable_input_exits_non_zero_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("photo.png");
    std::fs::write(&bin, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0").unwrap();
    let result = dncctl()
        .args(["normalize"])
        .arg(&bin)
        .args(["--list", "x", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains("photo.png") && stderr.contains("binary"),
        "{stderr}"
    );
}

#[test]
fn registry_import_apply_status_and_a_registry_only_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let ftc = dir.path().join("2026-11-1_202_x.txt");
    std::fs::write(&ftc, "202,4561234\n202,4561235\n202,4561235\n202,456123\n").unwrap();
    let today = chrono::Utc::now().date_naive();
    let run = |args: &[&str]| {
        let r = dncctl().args(args).output().unwrap();
        (
            r.status.success(),
            String::from_utf8_lossy(&r.stdout).to_string() + &String::from_utf8_lossy(&r.stderr),
        )
    };
    let as_of = today.format("%Y-%m-%d").to_string();
    let import = |extra: &[&str]| {
        let mut args = vec![
            "registry",
            "import",
            ftc.to_str().unwrap(),
            "--registry",
            "national",
            "--as-of",
            &as_of,
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    // Nothing declared: a national registry answers for every US area code, and one file of 202 is not that.
    let (ok, text) = import(&[]);
    assert!(
        !ok && text.contains("declared area code") && text.contains("206"),
        "{text}"
    );
    // The subscription declared in a file: 202 only.
    let codes = dir.path().join("subscription.txt");
    std::fs::write(&codes, "# our subscription\n202\n").unwrap();
    let (ok, text) = import(&["--area-codes", codes.to_str().unwrap()]);
    assert!(ok, "{text}");
    assert!(
        text.contains("rows       4 = 2 accepted + 1 duplicates + 1 rejected"),
        "{text}"
    );
    let changes = dir.path().join("changes.txt");
    std::fs::write(
        &changes,
        format!("2024561234,{}T00:00:00,D\n", today.format("%Y-%m-%d")),
    )
    .unwrap();
    let apply = [
        "registry",
        "apply",
        changes.to_str().unwrap(),
        "--registry",
        "national",
        "--out",
        out.to_str().unwrap(),
    ];
    let (ok, text) = run(&apply);
    assert!(ok, "{text}");
    assert!(text.contains("1 deletes (0 not registered)"), "{text}");
    let (ok, text) = run(&apply);
    assert!(ok && text.contains("already applied"), "{text}");
    let (ok, text) = run(&[
        "registry",
        "status",
        "--registry",
        "national",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        ok && text.contains("CURRENT") && text.contains("1 in 1 area codes"),
        "{text}"
    );
    assert!(
        text.contains("scope      national: 1 area codes covered (202)"),
        "{text}"
    );
    let numbers = dir.path().join("outbound.csv");
    std::fs::write(&numbers, "phone\n2024561235\n2024561234\n").unwrap();
    let csv = dir.path().join("verdicts.csv");
    let (ok, text) = run(&[
        "check",
        numbers.to_str().unwrap(),
        "--registry",
        "national",
        "--out-dir",
        out.to_str().unwrap(),
        "--out",
        csv.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let verdicts = std::fs::read_to_string(&csv).unwrap();
    assert!(
        verdicts.contains(",+12024561235,suppressed,\"registry:national\""),
        "{verdicts}"
    );
    assert!(verdicts.contains(",+12024561234,allowed,"), "{verdicts}");
    // The campaign's `state` column: a DC number with a California address is judged in Pacific time as well
    // (08:30 Eastern is 05:30 Pacific: not callable until 08:00 Pacific); without an address, federal hours alone.
    std::fs::write(
        &numbers,
        "phone,first_name,state\n2024561236,Ann,CA\n2024561237,Bob,\n",
    )
    .unwrap();
    let (ok, text) = run(&[
        "check",
        numbers.to_str().unwrap(),
        "--registry",
        "national",
        "--out-dir",
        out.to_str().unwrap(),
        "--out",
        csv.to_str().unwrap(),
        "--at",
        "2026-12-09T13:30:00Z",
    ]);
    assert!(ok, "{text}");
    let verdicts = std::fs::read_to_string(&csv).unwrap();
    let row = |n: &str| verdicts.lines().find(|l| l.contains(n)).unwrap_or_default();
    assert!(
        row("+12024561236")
            .ends_with(",false,2026-12-09T16:00:00Z,\"America/New_York America/Los_Angeles\""),
        "{verdicts}"
    );
    assert!(
        row("+12024561237").ends_with(",true,2026-12-09T13:30:00Z,\"America/New_York\""),
        "{verdicts}"
    );
    // A US number outside the subscription is never allowed by a registry-only check.
    let uncovered = dir.path().join("uncovered.csv");
    std::fs::write(&uncovered, "phone\n2065550100\n").unwrap();
    let (ok, text) = run(&[
        "check",
        uncovered.to_str().unwrap(),
        "--registry",
        "national",
        "--out-dir",
        out.to_str().unwrap(),
        "--out",
        csv.to_str().unwrap(),
    ]);
    let verdicts = std::fs::read_to_string(&csv).unwrap();
    assert!(
        verdicts.contains(",+12065550100,error,\"registry-not-covering:206\""),
        "{ok} {text}\n{verdicts}"
    );
    // An operator's closure of Washington over that instant: the number without an address is no longer callable,
    // and the next call is at the closure's end; removed, it is callable again.
    let closure = |args: &[&str]| {
        let mut all = vec!["hours", "closure"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--out-dir", out.to_str().unwrap()]);
        run(&all)
    };
    let (ok, text) = closure(&[
        "add",
        "--jurisdiction",
        "US-DC",
        "--start",
        "2026-12-09T13:00:00Z",
        "--end",
        "2026-12-09T18:00:00Z",
        "--reason",
        "a day of mourning",
        "--source",
        "https://www.whitehouse.gov/presidential-actions/",
    ]);
    assert!(
        ok && text.contains("closure us-dc-2026-12-09 added"),
        "{text}"
    );
    // A closure naming no place, or without a source URL, is refused.
    let (ok, text) = closure(&[
        "add",
        "--jurisdiction",
        "US-XX",
        "--start",
        "2026-12-09T13:00:00Z",
        "--end",
        "2026-12-09T18:00:00Z",
        "--reason",
        "x",
        "--source",
        "https://example.org/",
    ]);
    assert!(!ok && text.contains("US-XX"), "{text}");
    let (ok, text) = closure(&["list"]);
    assert!(ok && text.contains("us-dc-2026-12-09  US-DC"), "{text}");
    let check_at = || {
        let (ok, text) = run(&[
            "check",
            numbers.to_str().unwrap(),
            "--registry",
            "national",
            "--out-dir",
            out.to_str().unwrap(),
            "--out",
            csv.to_str().unwrap(),
            "--at",
            "2026-12-09T13:30:00Z",
        ]);
        assert!(ok, "{text}");
        std::fs::read_to_string(&csv).unwrap()
    };
    let verdicts = check_at();
    let row = |n: &str| {
        verdicts
            .lines()
            .find(|l| l.contains(n))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        row("+12024561237").ends_with(",false,2026-12-09T18:00:00Z,\"America/New_York\""),
        "{verdicts}"
    );
    let (ok, text) = closure(&["remove", "us-dc-2026-12-09"]);
    assert!(ok, "{text}");
    let verdicts = check_at();
    assert!(
        verdicts.contains(",true,2026-12-09T13:30:00Z,\"America/New_York\""),
        "{verdicts}"
    );
    // A directory with nothing valid in it is not an import of no numbers.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("junk.txt"), "not a number\n").unwrap();
    let (ok, text) = run(&[
        "registry",
        "import",
        empty.to_str().unwrap(),
        "--registry",
        "other",
        "--as-of",
        &as_of,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("no valid number was read"), "{text}");
    // A registry that was never imported: an error naming it, not an empty check.
    let (ok, text) = run(&[
        "check",
        numbers.to_str().unwrap(),
        "--registry",
        "texas",
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("texas"), "{text}");
}

/// The real-tenant path of the README against an Admin API tenant (the simulator, in this process): `provision`
/// creates and binds the group from the credentials alone (the API endpoint discovered), `run` verifies the file on
/// it, and `check` (no batch check in this dialect) answers from that verified run: a listed number suppressed, an
/// unlisted one allowed; without naming the list it answers `error` and exits non-zero, never `allowed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_run_and_check_against_an_admin_api_tenant() {
    let sim = cxone_sim::spawn(
        cxone_sim::SimConfig {
            dialect: cxone_sim::SimDialect::Admin,
            propagation_secs: (0, 1),
            entries_rate: 200.0,
            check_rate: 200.0,
            ..cxone_sim::SimConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds.json");
    std::fs::write(&creds, sim.credentials_document()).unwrap();
    let spec = dir.path().join("provision.json");
    std::fs::write(
        &spec,
        r#"{"lists": [{"name": "demo"}], "rule": {"name": "R", "lists": ["demo"]},
            "scrubbedSkills": ["Outbound Sales"]}"#,
    )
    .unwrap();
    let out = dir.path().join("out");
    let run = move |args: Vec<std::ffi::OsString>| {
        tokio::task::spawn_blocking(move || dncctl().args(args).output().unwrap())
    };
    let os = |v: &[&dyn AsRef<std::ffi::OsStr>]| -> Vec<std::ffi::OsString> {
        v.iter().map(|a| a.as_ref().to_os_string()).collect()
    };
    let provisioned = run(os(&[&"provision", &spec, &"--credentials", &creds]))
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&provisioned.stdout);
    assert!(
        provisioned.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&provisioned.stderr)
    );
    assert!(
        said.contains("scrubbed by outbound skill Outbound Sales"),
        "{said}"
    );
    // The first thing to run with real credentials: read-only, healthy, the list suppressing.
    let doctor = run(os(&[
        &"doctor",
        &"--credentials",
        &creds,
        &"--list",
        &"demo",
    ]))
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(doctor.status.success(), "{said}");
    assert!(
        said.contains("list demo: suppresses outbound calls") && said.contains("healthy"),
        "{said}"
    );
    let absent = run(os(&[
        &"doctor",
        &"--credentials",
        &creds,
        &"--list",
        &"absent",
    ]))
    .await
    .unwrap();
    assert!(!absent.status.success());
    assert!(String::from_utf8_lossy(&absent.stdout).contains("list absent: NOT FOUND"));
    let verified = run(os(&[
        &"run",
        &"examples/sample-dnc.csv",
        &"--list",
        &"demo",
        &"--credentials",
        &creds,
        &"--cooldown-secs",
        &"1",
        &"--out",
        &out,
    ]))
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(
        said.contains("status     SUCCESS") && said.contains("verified   5 of 5"),
        "{said}"
    );

    let numbers = dir.path().join("numbers.csv");
    std::fs::write(&numbers, "phone\n(202) 555-0198\n(303) 555-0142\n").unwrap();
    let annotated = dir.path().join("annotated.csv");
    let checked = run(os(&[
        &"check",
        &numbers,
        &"--credentials",
        &creds,
        &"--list-id",
        &"demo",
        &"--out-dir",
        &out,
        &"--out",
        &annotated,
    ]))
    .await
    .unwrap();
    let csv = std::fs::read_to_string(&annotated).unwrap_or_default();
    assert!(
        checked.status.success(),
        "{csv}{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert!(
        rows[0].contains(",suppressed,") && rows[0].contains("local-snapshot"),
        "{csv}"
    );
    assert!(
        rows[1].contains(",allowed,") && rows[1].contains("last verified"),
        "{csv}"
    );

    // Unnamed, the lists are every list OUT_DIR holds; with none there, nothing is verified and nothing allowed.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let unnamed = run(os(&[
        &"check",
        &numbers,
        &"--credentials",
        &creds,
        &"--out-dir",
        &empty,
        &"--out",
        &annotated,
    ]))
    .await
    .unwrap();
    let csv = std::fs::read_to_string(&annotated).unwrap();
    assert!(!unnamed.status.success(), "{csv}");
    assert!(
        !csv.contains(",allowed,"),
        "nothing allowed without a verified list: {csv}"
    );
}

/// `dncctl registry download` against the FTC stand-in (in this process) as a user runs it: a full download of the
/// subscription imported, the day's change list applied, a second run the same day re-using the saved answer, the
/// raw answers in the output directory, and a refused login exiting non-zero naming the code without the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_download_from_the_ftc_stand_in() {
    let today = chrono::Utc::now().date_naive();
    let sim = ftc_sim::spawn(
        ftc_sim::SimConfig {
            // Yesterday's changes are due in today's list; the full list is the registry as of yesterday's end.
            start_date: Some(today - chrono::Days::new(2)),
            pending_polls: 2,
            ..ftc_sim::SimConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    sim.sim.advance_days(2);
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("ftc.json");
    std::fs::write(&creds, sim.credentials_document()).unwrap();
    let out = dir.path().join("out");
    let run = move |args: Vec<std::ffi::OsString>| {
        tokio::task::spawn_blocking(move || dncctl().args(args).output().unwrap())
    };
    let os = |v: &[&dyn AsRef<std::ffi::OsStr>]| -> Vec<std::ffi::OsString> {
        v.iter().map(|a| a.as_ref().to_os_string()).collect()
    };
    let full = run(os(&[
        &"registry",
        &"download",
        &"--credentials",
        &creds,
        &"--full",
        &"all",
        &"--registry",
        &"national",
        &"--out",
        &out,
    ]))
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&full.stdout);
    assert!(
        full.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&full.stderr)
    );
    let total: usize = [202, 415, 818]
        .iter()
        .map(|npa| sim.sim.registered(*npa, today - chrono::Days::new(1)).len())
        .sum();
    assert!(
        said.contains(&format!("rows       {total} = {total} accepted")),
        "{said}"
    );
    assert!(
        said.contains("scope      national: 3 area codes covered (202,415,818)"),
        "{said}"
    );
    let raw = out.join(format!("registry/national/downloads/{today}/raw"));
    for npa in ["202", "415", "818"] {
        assert!(raw.join(format!("full-{npa}.xml")).is_file(), "{npa}");
    }
    let changes = run(os(&[
        &"registry",
        &"download",
        &"--credentials",
        &creds,
        &"--changes",
        &"--poll-interval",
        &"0",
        &"--registry",
        &"national",
        &"--out",
        &out,
    ]))
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&changes.stdout);
    assert!(
        changes.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&changes.stderr)
    );
    assert!(
        said.contains("42 lines after 2 RequestPending polls"),
        "{said}"
    );
    // Its changes (yesterday's, dated before today's full download) are already in the import.
    assert!(said.contains("42 superseded"), "{said}");
    assert!(raw.join("changes.xml").is_file());
    let again = run(os(&[
        &"registry",
        &"download",
        &"--credentials",
        &creds,
        &"--poll-interval",
        &"0",
        &"--registry",
        &"national",
        &"--out",
        &out,
    ]))
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(
        again.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(
        said.contains("the answer saved today re-used") && said.contains("already applied"),
        "{said}"
    );
    assert_eq!(
        sim.sim.count("GetDNCFileByUrl"),
        4,
        "three area codes and one change list, once each"
    );
    // The subscription, declared and watched: an area code paid for and not held, the renewal within 30 days, the
    // last downloads; the status exits non-zero while an area code is not covered.
    let renews_on = (today + chrono::Days::new(20)).to_string();
    let declared = run(os(&[
        &"registry",
        &"subscription",
        &"--registry",
        &"national",
        &"--san",
        &"SAN0026",
        &"--area-codes",
        &"202,415,818,206",
        &"--renews-on",
        &renews_on,
        &"--out",
        &out,
    ]))
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&declared.stdout);
    assert!(declared.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "subscription SAN SAN0026, renews on {renews_on}: 4 area codes (202,206,415,818)"
        )),
        "{said}"
    );
    let status = run(os(&[
        &"registry",
        &"status",
        &"--registry",
        &"national",
        &"--out",
        &out,
    ]))
    .await
    .unwrap();
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(
        !status.status.success(),
        "206 is paid for and not held: {said}"
    );
    for line in [
        "NOT COVERED 1 area codes subscribed and not in the registry (a full download imports them): 206".to_string(),
        format!("renews on {renews_on} (19 days): renew it soon"),
        "area codes (202,415,818)".to_string(),
        "change list downloaded".to_string(),
        ": applied, 42 lines".to_string(),
        "days to the 31-day limit".to_string(),
    ] {
        assert!(said.contains(&line), "{line:?} in {said}");
    }
    // A wrong password: LoginFailed, one login, non-zero exit, the password nowhere.
    let mut bad: serde_json::Value = serde_json::from_str(&sim.credentials_document()).unwrap();
    bad["password"] = "not-the-password-42".into();
    let bad_creds = dir.path().join("bad.json");
    std::fs::write(&bad_creds, bad.to_string()).unwrap();
    let logins = sim.sim.count("Login");
    let refused = run(os(&[
        &"registry",
        &"download",
        &"--credentials",
        &bad_creds,
        &"--registry",
        &"national",
        &"--out",
        &out,
    ]))
    .await
    .unwrap();
    let (said, err) = (
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr),
    );
    assert!(!refused.status.success());
    assert!(
        err.contains("LoginFailed") && err.contains("not retried"),
        "{err}"
    );
    assert!(!err.contains("not-the-password-42") && !said.contains("not-the-password-42"));
    assert_eq!(sim.sim.count("Login"), logins + 1);
}

/// `dncctl run` on the sample with its stderr on a pseudo-terminal (as a person's shell gives it), with `extra_args`
/// and `extra_env`; what the terminal showed.
fn run_on_a_terminal(extra_args: &[&str], extra_env: &[(&str, &str)]) -> String {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    use std::io::Read;
    let master =
        openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("a pseudo-terminal (/dev/ptmx)");
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut command = dncctl();
    command
        .args(["run", "examples/sample-dnc.csv", "--list", "demo", "--out"])
        .arg(out.path())
        .args(extra_args)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .envs(extra_env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(terminal);
    let child = command.spawn().unwrap();
    // The command holds this side's copy of the terminal: once it and the child are gone, reading the master ends.
    drop(command);
    let mut master = std::fs::File::from(master);
    let screen = std::thread::spawn(move || {
        let mut shown = Vec::new();
        let mut chunk = [0u8; 8192];
        // Linux answers EIO, not 0, once the last descriptor of the terminal's side is closed.
        while let Ok(n @ 1..) = master.read(&mut chunk) {
            shown.extend_from_slice(&chunk[..n]);
        }
        shown
    });
    let result = child.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&screen.join().unwrap()).into_owned();
    assert!(
        result.status.success(),
        "{}\n{shown}",
        String::from_utf8_lossy(&result.stdout)
    );
    shown
}

/// An ANSI colour (SGR) sequence: `ESC [` digits and `;` then `m`. A progress bar's cursor moves are not colour.
fn has_colour(line: &str) -> bool {
    line.split("\x1b[").skip(1).any(|rest| {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == ';'));
        end.is_some_and(|i| rest[i..].starts_with('m'))
    })
}

/// On a terminal the log lines are coloured, unless `NO_COLOR` is set (<https://no-color.org>); in a pipe they never
/// are (the tests above). `--log-format json` gives JSON on a terminal too.
#[test]
fn log_lines_are_coloured_on_a_terminal_only_without_no_color() {
    // Log lines name their target (`dncflow::…`); a progress bar never does.
    let log_lines = |shown: &str| -> Vec<String> {
        shown
            .lines()
            .filter(|l| l.contains("dncflow::"))
            .map(str::to_string)
            .collect()
    };
    let coloured = run_on_a_terminal(&[], &[]);
    let lines = log_lines(&coloured);
    assert!(!lines.is_empty(), "{coloured}");
    assert!(lines.iter().all(|l| has_colour(l)), "{lines:#?}");

    let plain = run_on_a_terminal(&[], &[("NO_COLOR", "1")]);
    let lines = log_lines(&plain);
    assert!(lines.iter().any(|l| l.contains(" INFO ")), "{plain}");
    assert!(!lines.iter().any(|l| has_colour(l)), "{lines:#?}");

    let json = run_on_a_terminal(&["--log-format", "json"], &[]);
    let lines = log_lines(&json);
    assert!(!lines.is_empty(), "{json}");
    for line in &lines {
        // A line starts at its `{` (a cleared progress bar may precede it on the terminal).
        let start = line.find('{').unwrap_or(0);
        let record: serde_json::Value = serde_json::from_str(line[start..].trim_end_matches('\r'))
            .unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert!(record["level"].is_string(), "{record}");
        assert!(!has_colour(line), "{line:?}");
    }

    assert!(has_colour("\x1b[2m2026\x1b[0m") && !has_colour("\r\x1b[2K") && !has_colour("plain"));
}
