//! Running sources' jq programs and webhooks' conditions where they cannot hurt hookd: in
//! worker processes of this binary (`hookd reshape-worker`), each with an address-space limit, each request with a
//! time limit. A program that loops forever is ended with its worker; one that overflows the
//! stack or takes all memory ends its worker itself. Either way the request is kept as
//! `failed` and hookd goes on; a new worker starts for the next request.
//!
//! The protocol is one JSON line each way: `{"spec", "body", "bindings", "limits"}` in,
//! `{"records": […]}` or `{"error": "…"}` out; or, for webhook conditions,
//! `{"condition", "records"}` in, `{"verdicts": [true, false, "why not", …]}` out.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookd_core::source::{Bindings, Limits, Program, Reshape, ReshapeSpec, compile};
use hookd_core::webhook::condition;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;

use crate::config::SourcesSettings;

/// The worker processes. Cheap to clone.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    program: PathBuf,
    timeout: Duration,
    memory_mb: u64,
    idle: Mutex<Vec<Worker>>,
    slots: Semaphore,
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Sandbox {
    pub fn new(settings: &SourcesSettings) -> Self {
        let program = settings
            .worker_program
            .clone()
            .or_else(|| std::env::current_exe().ok())
            .unwrap_or_else(|| PathBuf::from("hookd"));
        Self {
            inner: Arc::new(Inner {
                program,
                timeout: settings.transform_timeout,
                memory_mb: settings.transform_memory_mb,
                idle: Mutex::new(Vec::new()),
                slots: Semaphore::new(settings.transform_workers),
            }),
        }
    }

    /// The records `spec`'s programs make of `body`, or why they make none.
    pub async fn reshape(
        &self,
        spec: &ReshapeSpec,
        body: &Value,
        bindings: &Bindings,
        limits: Limits,
    ) -> Result<Vec<Value>, String> {
        let request = json!({
            "spec": spec.to_json(),
            "body": body,
            "bindings": {"headers": bindings.headers, "query": bindings.query, "method": bindings.method, "source": bindings.source},
            "limits": {"max_records": limits.max_records, "max_bytes": limits.max_bytes},
        });
        let answer = self.ask(request.to_string()).await?;
        match (answer.get("records"), answer.get("error")) {
            (Some(Value::Array(records)), _) => Ok(records.clone()),
            (_, Some(Value::String(error))) => Err(error.clone()),
            _ => Err("the transform worker answered nonsense".into()),
        }
    }

    /// Whether each of `records` (stored JSON objects) matches the webhook condition `code`
    /// (see [`hookd_core::webhook::condition`]): per record, or why it could not be told.
    /// `Err` when the worker could not answer at all (it was stopped, or ended).
    pub async fn conditions(&self, code: &str, records: &[&str]) -> Result<Vec<Result<bool, String>>, String> {
        let mut line = String::with_capacity(code.len() + records.iter().map(|r| r.len() + 1).sum::<usize>() + 32);
        line.push_str("{\"condition\":");
        line.push_str(&Value::String(code.to_owned()).to_string());
        line.push_str(",\"records\":[");
        line.push_str(&records.join(","));
        line.push_str("]}");
        let answer = self.ask(line).await?;
        match answer.get("verdicts") {
            Some(Value::Array(verdicts)) if verdicts.len() == records.len() => Ok(verdicts
                .iter()
                .map(|v| match v {
                    Value::Bool(b) => Ok(*b),
                    other => Err(other.as_str().unwrap_or("no verdict").to_owned()),
                })
                .collect()),
            _ => Err(answer["error"]
                .as_str()
                .unwrap_or("the worker answered nonsense")
                .to_owned()),
        }
    }

    /// One request line to a worker, its answer within the time limit.
    async fn ask(&self, mut line: String) -> Result<Value, String> {
        line.push('\n');
        let _slot = self
            .inner
            .slots
            .acquire()
            .await
            .map_err(|_| "the sandbox is closed".to_owned())?;
        let idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut worker = match idle {
            Some(worker) => worker,
            None => self
                .spawn()
                .map_err(|e| format!("cannot start a transform worker: {e}"))?,
        };
        let answer = tokio::time::timeout(self.inner.timeout, worker.ask(&line)).await;
        match answer {
            Ok(Ok(answer)) => {
                self.inner.idle.lock().unwrap_or_else(|p| p.into_inner()).push(worker);
                Ok(answer)
            }
            Ok(Err(_)) => {
                let status = worker.child.wait().await.map(|s| s.to_string()).unwrap_or_default();
                Err(format!(
                    "the programs ended their worker ({status}): they ran out of memory ({} MiB) or stack",
                    self.inner.memory_mb
                ))
            }
            Err(_) => {
                let _ = worker.child.kill().await;
                Err(format!(
                    "the programs were stopped after {} (sources.transform_timeout)",
                    hookd_core::duration::format(self.inner.timeout)
                ))
            }
        }
    }

    fn spawn(&self) -> std::io::Result<Worker> {
        let mut child = Command::new(&self.inner.program)
            .arg("reshape-worker")
            .arg("--memory-mb")
            .arg(self.inner.memory_mb.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().ok_or_else(|| std::io::Error::other("no stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| std::io::Error::other("no stdout"))?;
        Ok(Worker {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }
}

impl Worker {
    async fn ask(&mut self, line: &str) -> std::io::Result<Value> {
        self.stdin.write_all(line.as_bytes()).await?;
        self.stdin.flush().await?;
        let mut answer = String::new();
        if self.stdout.read_line(&mut answer).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the worker ended",
            ));
        }
        serde_json::from_str(&answer).map_err(std::io::Error::other)
    }
}

/// Compiled reshapes (by their spec) and conditions (by their text) a worker keeps, of each;
/// forgotten all at once past this many.
const KEPT: usize = 64;

/// What `compiled` holds for `key`, compiling it first if need be (forgetting everything
/// kept once [`KEPT`] entries are held).
fn kept<T>(
    compiled: &mut HashMap<String, Result<T, String>>,
    key: String,
    compile: impl FnOnce() -> Result<T, String>,
) -> &mut Result<T, String> {
    if compiled.len() >= KEPT && !compiled.contains_key(&key) {
        compiled.clear();
    }
    compiled.entry(key).or_insert_with(compile)
}

/// What a worker has compiled.
#[derive(Default)]
struct Compiled {
    reshapes: HashMap<String, Result<Reshape, String>>,
    conditions: HashMap<String, Result<Program, String>>,
}

/// `hookd reshape-worker`: limits its own memory, then answers requests on stdin until it
/// closes.
pub fn worker_main(memory_mb: u64) -> std::io::Result<()> {
    let bytes = memory_mb.saturating_mul(1024 * 1024);
    rlimit::setrlimit(rlimit::Resource::AS, bytes, bytes)?;
    let mut compiled = Compiled::default();
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lines() {
        let answer = match serde_json::from_str::<Value>(&line?) {
            Ok(request) => answer(&request, &mut compiled),
            Err(e) => json!({"error": format!("unreadable request: {e}")}),
        };
        writeln!(stdout, "{answer}")?;
        stdout.flush()?;
    }
    Ok(())
}

fn answer(request: &Value, compiled: &mut Compiled) -> Value {
    if let Some(Value::String(code)) = request.get("condition") {
        return judge(code, &request["records"], &mut compiled.conditions);
    }
    let compiled = &mut compiled.reshapes;
    let Some(spec) = ReshapeSpec::from_json(&request["spec"]) else {
        return json!({"error": "unreadable reshape spec"});
    };
    let reshape = kept(compiled, request["spec"].to_string(), || {
        Reshape::compile(spec).map_err(|e| e.message)
    });
    let reshape = match reshape {
        Ok(reshape) => reshape,
        Err(e) => return json!({"error": e}),
    };
    let b = &request["bindings"];
    let bindings = Bindings {
        headers: b["headers"].clone(),
        query: b["query"].clone(),
        method: b["method"].as_str().unwrap_or_default().to_owned(),
        source: b["source"].clone(),
    };
    let number = |key: &str| request["limits"][key].as_u64().unwrap_or(0) as usize;
    let limits = Limits {
        max_records: number("max_records"),
        max_bytes: number("max_bytes"),
    };
    match reshape.records(&request["body"], &bindings, limits) {
        Ok(records) => json!({"records": records}),
        Err(e) => json!({"error": e}),
    }
}

fn judge(code: &str, records: &Value, compiled: &mut HashMap<String, Result<Program, String>>) -> Value {
    let program = match kept(compiled, code.to_owned(), || compile(code).map_err(|e| e.to_string())) {
        Ok(program) => program,
        Err(e) => return json!({"error": e}),
    };
    let verdicts: Vec<Value> = records
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|record| match condition::matches(program, record) {
            Ok(matched) => Value::Bool(matched),
            Err(e) => Value::String(e),
        })
        .collect();
    json!({"verdicts": verdicts})
}
