//! Running the real `hookd` binary from tests.

#![allow(dead_code, unreachable_pub)] // each test binary uses part of this

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A `hookd serve` process and the lines it printed on start.
pub struct Server {
    pub child: Child,
    pub lines: Vec<String>,
    pub url: String,
}

/// Starts `hookd serve` on port 0 with `dir` as data directory and `env` added, and reads its
/// start-up lines (three, or four when it prints a new admin key).
pub fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Server {
    start_with_stderr(dir, env, Stdio::null())
}

fn start_with_stderr(dir: &std::path::Path, env: &[(&str, &str)], stderr: Stdio) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookd"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env_remove("HOOKD_ADMIN_KEY");
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("hookd starts");
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut lines: Vec<String> = Vec::new();
    while lines.len() < 3 || (lines[2].starts_with("admin key (shown once") && lines.len() < 4) {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "hookd exited early: {lines:?}"
        );
        lines.push(line.trim_end().to_owned());
    }
    let url = lines[0].rsplit(' ').next().unwrap().to_owned();
    Server { child, lines, url }
}

impl Server {
    /// Sends SIGTERM and waits (at most 15s) for the process to exit.
    pub fn terminate(mut self) -> ExitStatus {
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                return exit;
            }
            assert!(Instant::now() < deadline, "hookd did not stop within 15s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no shutdown of any kind.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Like [`start`], with the process's logs (stderr) written to `log`.
pub fn start_logging(dir: &std::path::Path, env: &[(&str, &str)], log: &std::path::Path) -> Server {
    let file = std::fs::File::create(log).unwrap();
    start_with_stderr(dir, env, Stdio::from(file))
}
