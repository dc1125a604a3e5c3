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
    let result = dncctl()
        .args(["run", "examples/sample-dnc.csv", "--list", "demo", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&result.stderr)
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
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("dialect admin"), "{stderr}");
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
    let (ok, text) = run(&[
        "registry",
        "import",
        ftc.to_str().unwrap(),
        "--registry",
        "national",
        "--as-of",
        &as_of,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert!(
        text.contains("rows       4 = 2 accepted + 1 duplicates + 1 rejected"),
        "{text}"
    );
    let changes = dir.path().join("changes.txt");
    std::fs::write(
        &changes,
        format!("2024561234,{}T12:00:00,D\n", today.format("%Y-%m-%d")),
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
