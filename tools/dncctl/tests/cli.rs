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
