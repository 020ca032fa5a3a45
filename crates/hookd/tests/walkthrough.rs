//! The README's "Five minutes", run as written: every shell block of the section, in order, in
//! one bash — the CLI blocks, or each step's folded curl block instead — against a real
//! `hookd serve` and the real `hookd listen`. Only what cannot run here is changed, and said
//! so below: the release build (the test's own binary is used), and the ports (free ones
//! instead of 8080 and 9000).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;

/// The README's serve command and build line, which the test replaces.
const SERVE: &str = "HOOKD_DELIVERY__ALLOW_NETWORKS=127.0.0.1/32 cargo run --release -- serve";
const BUILD: &str = "cargo build --release && export PATH=$PWD/target/release:$PATH";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Cli,
    Curl,
}

/// One ```sh block of the section: its text, whether it is folded in a `<details>` (a curl
/// alternative), and whether a folded alternative follows it.
#[derive(Debug)]
struct Block {
    text: String,
    folded: bool,
    has_alternative: bool,
}

fn section() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme.find("## Five minutes").expect("a Five minutes section");
    let rest = &readme[start..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    rest[..end].to_owned()
}

fn blocks(section: &str) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    let (mut folded, mut current): (bool, Option<Vec<String>>) = (false, None);
    for line in section.lines() {
        let trimmed = line.trim();
        match (&mut current, trimmed) {
            (None, "<details><summary>curl</summary>") => folded = true,
            (None, "</details>") => folded = false,
            (None, "```sh") => current = Some(Vec::new()),
            (Some(_), "```") => {
                let lines = current.take().unwrap();
                let indent = lines
                    .iter()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| l.len() - l.trim_start().len())
                    .min()
                    .unwrap_or(0);
                let text: Vec<&str> = lines.iter().map(|l| l.get(indent..).unwrap_or("")).collect();
                if folded {
                    if let Some(last) = blocks.last_mut() {
                        last.has_alternative = true;
                    }
                }
                blocks.push(Block {
                    text: text.join("\n"),
                    folded,
                    has_alternative: false,
                });
            }
            (Some(lines), _) => lines.push(line.to_owned()),
            (None, _) => {}
        }
    }
    blocks
}

/// The blocks one path runs: the shared ones, and its own of each step.
fn script(path: Path) -> Vec<String> {
    blocks(&section())
        .into_iter()
        .filter(|b| match path {
            Path::Cli => !b.folded,
            Path::Curl => b.folded || !b.has_alternative,
        })
        .map(|b| b.text)
        .collect()
}

/// A bash fed the blocks one by one; everything it and its background jobs print arrives on
/// `output`, line by line.
struct Shell {
    /// bash, and the id of its process group.
    child: Child,
    group: u32,
    stdin: ChildStdin,
    output: mpsc::UnboundedReceiver<String>,
    /// Every line printed so far.
    seen: Vec<String>,
}

impl Shell {
    fn start(dir: &std::path::Path, server: &str) -> Self {
        let bin = std::path::Path::new(env!("CARGO_BIN_EXE_hookd")).parent().unwrap();
        let mut child = tokio::process::Command::new("bash")
            .args(["--noprofile", "--norc"])
            .current_dir(dir)
            .env("HOOKD_URL", server)
            .env("HOOKD_TEST_BIN", bin)
            .env_remove("HOOKD_KEY")
            .env_remove("HOOKD_WORKSPACE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // A group of its own, so the background jobs (serve, listen) go with it.
            .process_group(0)
            .spawn()
            .expect("bash runs");
        let (tx, output) = mpsc::unbounded_channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let _ = tx.send(line);
                }
            });
        }
        let stdin = child.stdin.take().unwrap();
        let group = child.id().expect("bash is running");
        Self {
            child,
            group,
            stdin,
            output,
            seen: Vec::new(),
        }
    }

    /// Runs `block`; returns the lines printed until it ended (background jobs' lines too).
    async fn run(&mut self, block: &str, n: usize) -> Vec<String> {
        let marker = format!("@@block-{n}-done");
        let input = format!("{block}\necho {marker}\n");
        self.stdin.write_all(input.as_bytes()).await.unwrap();
        let from = self.seen.len();
        self.wait_for(&marker, 1, Duration::from_secs(60)).await;
        self.seen[from..].to_vec()
    }

    /// Waits until `count` lines printed so far contain `text`.
    async fn wait_for(&mut self, text: &str, count: usize, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.seen.iter().filter(|l| l.contains(text)).count() < count {
            match tokio::time::timeout_at(deadline, self.output.recv()).await {
                Ok(Some(line)) => self.seen.push(line),
                _ => panic!(
                    "waited {within:?} for {count} line(s) with `{text}`; the walk-through printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn count(&self, text: &str) -> usize {
        self.seen.iter().filter(|l| l.contains(text)).count()
    }
}

impl Drop for Shell {
    /// Ends bash and every job it started, even when a check failed.
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.group)])
            .status();
        let _ = self.child.start_kill();
    }
}

/// The first delivery id on a line of `text` that says `dead`.
fn dead_delivery(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.contains("dead") && l.contains("dlv_"))?;
    let start = line.find("dlv_")?;
    let id: String = line[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    Some(id)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn walk(path: Path) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("examples")).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/readings.ndjson"),
        dir.path().join("examples/readings.ndjson"),
    )
    .unwrap();
    let (api, receiver) = (free_port(), free_port());
    let server = format!("http://127.0.0.1:{api}");
    let mut shell = Shell::start(dir.path(), &server);
    let blocks = script(path);
    assert!(blocks.len() >= 10, "the section has its blocks: {blocks:#?}");
    // Background jobs write to the shell's output too; no job control in a script.
    shell.run("exec 2>&1", 0).await;

    for (n, block) in blocks.iter().enumerate() {
        let n = n + 1;
        let mut runnable = block
            .replace(":9000", &format!(":{receiver}"))
            .replace("--port 9000", &format!("--port {receiver}"));
        runnable = runnable.replace(":8080", &format!(":{api}"));
        if block == SERVE {
            // The test's debug build stands in for `cargo run --release --`, in the background.
            runnable = format!(
                "{} --listen 127.0.0.1:{api} >serve.log 2>&1 &",
                SERVE.replace("cargo run --release --", "hookd")
            );
            runnable = format!("export PATH=$HOOKD_TEST_BIN:$PATH\n{runnable}");
        } else if block.starts_with(BUILD) {
            // Already built: the test's binary is on the PATH.
            runnable = runnable.replacen(BUILD, ":", 1);
        }
        let listening = shell.count("listening on");
        let printed = shell.run(&runnable, n).await;
        let text = printed.join("\n");
        if block == SERVE {
            let log = dir.path().join("serve.log");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while !std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("listening on")
            {
                assert!(tokio::time::Instant::now() < deadline, "hookd serve did not start");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if block.contains("hookd listen") {
            shell
                .wait_for("listening on", listening + 1, Duration::from_secs(10))
                .await;
        }
        if block.contains("send data --file") || block.contains("/data -H") && !block.contains("dev-128") {
            let batches = if path == Path::Cli { 2 } else { 1 };
            shell
                .wait_for("✓ signature valid", batches, Duration::from_secs(10))
                .await;
            shell.wait_for("x-auth-token: t0k3n", 1, Duration::from_secs(1)).await;
        }
        if block.contains("deliveries show") {
            assert!(
                text.contains("request body:") && text.contains("response headers:"),
                "{text}"
            );
        }
        if block.contains("--respond 503") {
            assert!(text.contains("retrying in"), "the 503 is retried:\n{text}");
        }
        if block.contains("sleep 7") {
            assert!(text.contains("delivered"), "the retry reached the receiver:\n{text}");
        }
        if block.contains("closed port") {
            let dead = dead_delivery(&text).unwrap_or_else(|| panic!("the closed port's delivery died:\n{text}"));
            assert!(text.contains("replayed"), "{text}");
            let arrived = format!("webhook-id: {dead}  ✓ signature valid");
            shell.wait_for(&arrived, 1, Duration::from_secs(10)).await;
        }
        if block.contains("rotate") {
            assert!(text.contains("delivered"), "the test send was delivered:\n{text}");
            assert!(text.contains("\"TEST\"") || text.contains("previous"), "{text}");
        }
    }
    let everything = shell.seen.join("\n");
    assert!(!everything.contains('✗'), "every signature verified:\n{everything}");
    assert!(!everything.contains("error:"), "no command failed:\n{everything}");
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(!log.contains("ERROR"), "{log}");
}

#[test]
fn the_section_has_a_cli_block_and_a_curl_alternative_for_each_request() {
    let blocks = blocks(&section());
    assert_eq!(blocks.first().map(|b| b.text.as_str()), Some(SERVE));
    assert!(blocks[1].text.starts_with(BUILD));
    let folded = blocks.iter().filter(|b| b.folded).count();
    let with_alternative = blocks.iter().filter(|b| b.has_alternative).count();
    assert_eq!(
        folded, with_alternative,
        "each curl block follows the CLI block it replaces"
    );
    assert!(folded >= 6, "{blocks:#?}");
}

#[tokio::test]
async fn the_readme_walkthrough_runs_as_written_with_the_cli() {
    walk(Path::Cli).await;
}

#[tokio::test]
async fn the_readme_walkthrough_runs_as_written_with_curl() {
    walk(Path::Curl).await;
}
