//! Keeps the benchmark working: every scenario, tiny and bounded (the figures of such a run
//! mean nothing; BENCHMARKS.md has the real ones). Uses the `hookd` binary built beside this
//! one, as the workspace test run builds it.

use std::process::Command;

#[test]
fn every_scenario_runs_and_writes_its_results() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.json");
    let mut scenarios = vec![
        "ceiling",
        "single",
        "batch",
        "steady",
        "fanout-10",
        "fanout-100",
        "isolation",
        "backlog",
        "idle",
        "condition",
        "ordering",
        "debounce",
    ];
    let broker =
        std::net::TcpStream::connect_timeout(&"127.0.0.1:1883".parse().unwrap(), std::time::Duration::from_secs(1))
            .is_ok();
    if broker {
        scenarios.push("mqtt");
    }
    let postgres = std::env::var("HOOKD_TEST_POSTGRES_URL").ok();
    if postgres.is_some() {
        scenarios.extend(["postgres", "postgres-fanout-10"]);
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookd-bench"));
    command
        .arg("run")
        .args(&scenarios)
        .args([
            "--runs",
            "1",
            "--records",
            "200",
            "--backlog",
            "500",
            "--concurrency",
            "8",
            "--seconds",
            "60",
            "--out",
        ])
        .arg(&out);
    if let Some(url) = &postgres {
        command.args(["--postgres-url", url]);
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("| delivered records/s |"), "{table}");
    let results: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let ran = results["results"].as_array().unwrap();
    assert_eq!(ran.len(), scenarios.len());
    assert!(ran.iter().all(|r| r["complete_runs"] == 1), "{results}");
    assert!(
        results["setting"]["commit"].is_string(),
        "the commit measured: {results}"
    );
    let plot = std::fs::read_to_string(out.with_extension("svg")).unwrap();
    assert!(plot.starts_with("<svg") && plot.contains("fanout-10"), "{plot}");
    let markdown = std::fs::read_to_string(out.with_extension("md")).unwrap();
    assert!(
        markdown.starts_with("machine: ") && markdown.contains("| delivered records/s |"),
        "{markdown}"
    );
}
