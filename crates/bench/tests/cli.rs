//! The stele-bench binary's command line, without starting a server: `--help` lists the flags,
//! and a `--stele` that names no file stops the run before anything starts.

use std::process::Command;

fn stele_bench() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stele-bench"));
    command.env_remove("STELE_BIN");
    command
}

#[test]
fn help_lists_the_flags() {
    let out = stele_bench().arg("--help").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--stele <PATH>",
        "STELE_BIN",
        "--events <EVENTS>",
        "--batch <BATCH>",
        "--ingest-clients",
        "--single-clients",
        "--single-seconds",
        "--queries",
        "--proofs",
        "--checkpoint-every",
        "--scenarios",
        "--seed",
        "--data-dir",
        "--keep",
        "--database-url <URL>",
        "--analyze",
        "--prune-no-archive",
        "--orgs <ORGS>",
        "--orgs-events",
    ] {
        assert!(help.contains(flag), "`{flag}` is missing from:\n{help}");
    }
}

#[test]
fn a_missing_stele_binary_stops_the_run_at_once() {
    let missing = std::env::temp_dir().join("stele-bench-test-no-such-stele");
    let out = stele_bench()
        .arg("--stele")
        .arg(&missing)
        .args(["--events", "1", "--scenarios", "ingest"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("--stele {}: no such file", missing.display())),
        "{stderr}"
    );
}
