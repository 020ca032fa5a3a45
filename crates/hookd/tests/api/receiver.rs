//! A real HTTP receiver for tests: answers by script, records every request it gets.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// A status with one extra response header.
    WithHeader(u16, &'static str, String),
    /// Never answers.
    Hang,
    /// Answers this status after this long.
    Delay(Duration, u16),
    /// Sends the status line and part of the body, then breaks the connection.
    BreakMidResponse,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    /// The path and query the request was sent to.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Reply>,
    requests: Vec<Received>,
    /// When each request arrived and (once answered) when its answer was made.
    spans: Vec<(Instant, Option<Instant>)>,
}

#[derive(Clone)]
pub struct Receiver {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    default: Arc<Mutex<Reply>>,
}

impl Receiver {
    /// Starts a receiver answering `default` once its script is used up.
    pub async fn start(default: Reply) -> Self {
        Self::start_scripted(default, []).await
    }

    /// Starts a receiver answering with `script` in order, then `default`.
    pub async fn start_scripted(default: Reply, script: impl IntoIterator<Item = Reply>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let receiver = Self {
            addr,
            inner: Arc::new(Mutex::new(Inner {
                script: script.into_iter().collect(),
                ..Default::default()
            })),
            default: Arc::new(Mutex::new(default)),
        };
        let app = axum::Router::new().fallback(answer).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Changes how the receiver answers from now on (once its script is used up).
    pub fn answer_with(&self, reply: Reply) {
        *self.default.lock().unwrap() = reply;
    }

    pub fn requests(&self) -> Vec<Received> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// The `type` of every event the receiver got in batches, in order.
    pub fn event_types(&self) -> Vec<String> {
        self.requests()
            .iter()
            .flat_map(|r| r.json()["result"].as_array().cloned().unwrap_or_default())
            .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The most requests in flight at once (arrived, not yet answered): over all of them, and
    /// the most of any one group `group` puts requests in (e.g. by device).
    pub fn most_in_flight(&self, group: impl Fn(&Received) -> String) -> (usize, usize) {
        let inner = self.inner.lock().unwrap();
        let far = Instant::now() + Duration::from_secs(3600);
        let overlapping = |i: usize, same: &dyn Fn(usize) -> bool| {
            let (start, _) = inner.spans[i];
            (0..inner.spans.len())
                .filter(|&j| same(j))
                .filter(|&j| {
                    let (s, e) = inner.spans[j];
                    s <= start && e.unwrap_or(far) > start
                })
                .count()
        };
        let groups: Vec<String> = inner.requests.iter().map(&group).collect();
        let overall = (0..inner.spans.len()).map(|i| overlapping(i, &|_| true)).max();
        let grouped = (0..inner.spans.len())
            .map(|i| overlapping(i, &|j| groups[j] == groups[i]))
            .max();
        (overall.unwrap_or(0), grouped.unwrap_or(0))
    }

    /// Waits until at least `n` requests arrived (polling, with a deadline).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {n} requests within {within:?}, got {}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn answer(
    State(receiver): State<Receiver>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (index, reply) = {
        let mut inner = receiver.inner.lock().unwrap();
        inner.spans.push((Instant::now(), None));
        inner.requests.push(Received {
            method,
            path: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_owned(), ToString::to_string),
            headers,
            body,
        });
        let reply = inner
            .script
            .pop_front()
            .unwrap_or_else(|| receiver.default.lock().unwrap().clone());
        (inner.requests.len() - 1, reply)
    };
    let response = reply_with(reply).await;
    receiver.inner.lock().unwrap().spans[index].1 = Some(Instant::now());
    response
}

async fn reply_with(reply: Reply) -> Response {
    match reply {
        Reply::Status(code) => Response::builder().status(code).body(Body::from("ok")).unwrap(),
        Reply::WithHeader(code, name, value) => Response::builder()
            .status(code)
            .header(name, value)
            .body(Body::empty())
            .unwrap(),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Response::new(Body::empty())
        }
        Reply::Delay(after, code) => {
            tokio::time::sleep(after).await;
            Response::builder()
                .status(StatusCode::from_u16(code).unwrap())
                .body(Body::from("ok"))
                .unwrap()
        }
        Reply::BreakMidResponse => {
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(Bytes::from_static(b"partial")),
                Err(std::io::Error::other("receiver broke the connection")),
            ];
            Response::builder()
                .status(StatusCode::OK)
                .header("content-length", "1000")
                .body(Body::from_stream(futures::stream::iter(chunks)))
                .unwrap()
        }
    }
}
