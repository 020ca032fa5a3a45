//! The outcome table (the README's delivery contract): what a receiver's answer means for a delivery.

use std::time::Duration;

use crate::clock::Millis;

/// Why no HTTP status was received. Stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No answer within the webhook's timeout.
    Timeout,
    /// The connection was refused or could not be made.
    Connect,
    /// The connection was reset or broke mid-request.
    Reset,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake or certificate check failed.
    Tls,
    /// The address is refused by the SSRF policy.
    Blocked,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Reset => "reset",
            ErrorKind::Dns => "dns",
            ErrorKind::Tls => "tls",
            ErrorKind::Blocked => "blocked",
        }
    }
}

/// What the receiver did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Status { code: u16, retry_after: Option<Duration> },
    Error(ErrorKind),
}

/// What hookd does about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Try again; `not_before` is the receiver's `Retry-After`, if it sent one that counts.
    Retry {
        not_before: Option<Duration>,
    },
    /// Never retry. `disable` also disables the webhook (410 Gone).
    Failed {
        disable: bool,
    },
}

pub fn classify(response: &Response) -> Verdict {
    match *response {
        Response::Status { code, retry_after } => match code {
            200..=299 => Verdict::Delivered,
            300..=399 => Verdict::Failed { disable: false },
            410 => Verdict::Failed { disable: true },
            429 | 503 => Verdict::Retry {
                not_before: retry_after,
            },
            408 | 425 | 500..=599 => Verdict::Retry { not_before: None },
            400..=499 => Verdict::Failed { disable: false },
            // 1xx as a final answer, or a code outside HTTP's range: the receiver is broken,
            // which may pass; retry.
            _ => Verdict::Retry { not_before: None },
        },
        Response::Error(ErrorKind::Blocked) => Verdict::Failed { disable: false },
        Response::Error(_) => Verdict::Retry { not_before: None },
    }
}

/// The `Retry-After` header: delay-seconds or an HTTP date, relative to `now`.
pub fn parse_retry_after(value: &str, now: Millis) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at_ms = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as Millis;
    Some(Duration::from_millis(at_ms.saturating_sub(now).max(0) as u64))
}

/// The one-line explanation of an answer, without the consequence (`"answered 503 Service
/// Unavailable"`).
pub fn describe(response: &Response) -> String {
    match response {
        Response::Status { code, .. } => {
            let reason = reason_phrase(*code);
            format!("the receiver answered {code}{}{reason}", if reason.is_empty() { "" } else { " " })
        }
        Response::Error(kind) => match kind {
            ErrorKind::Timeout => "the receiver did not answer within the webhook's timeout".into(),
            ErrorKind::Connect => "the connection to the receiver could not be made".into(),
            ErrorKind::Reset => "the connection broke before the receiver answered".into(),
            ErrorKind::Dns => "the receiver's host name did not resolve".into(),
            ErrorKind::Tls => "the TLS handshake with the receiver failed".into(),
            ErrorKind::Blocked => "the receiver's address is blocked by the SSRF policy (loopback, private or link-local networks are refused unless allowed in delivery.allow_networks)".into(),
        },
    }
}

fn reason_phrase(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        425 => "Too Early",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Verdict {
        classify(&Response::Status {
            code,
            retry_after: None,
        })
    }

    #[test]
    fn every_row_of_the_outcome_table() {
        assert_eq!(status(200), Verdict::Delivered);
        assert_eq!(status(204), Verdict::Delivered);
        assert_eq!(status(301), Verdict::Failed { disable: false });
        assert_eq!(status(410), Verdict::Failed { disable: true });
        for code in [400, 401, 404, 422, 499] {
            assert_eq!(status(code), Verdict::Failed { disable: false }, "{code}");
        }
        for code in [408, 425, 429, 500, 502, 503, 599] {
            assert!(matches!(status(code), Verdict::Retry { .. }), "{code}");
        }
        let after = Some(Duration::from_secs(9));
        assert_eq!(
            classify(&Response::Status {
                code: 429,
                retry_after: after
            }),
            Verdict::Retry { not_before: after }
        );
        assert_eq!(
            classify(&Response::Status {
                code: 500,
                retry_after: after
            }),
            Verdict::Retry { not_before: None }
        );
        assert_eq!(
            classify(&Response::Error(ErrorKind::Blocked)),
            Verdict::Failed { disable: false }
        );
        for kind in [
            ErrorKind::Timeout,
            ErrorKind::Connect,
            ErrorKind::Reset,
            ErrorKind::Dns,
            ErrorKind::Tls,
        ] {
            assert_eq!(classify(&Response::Error(kind)), Verdict::Retry { not_before: None });
        }
    }

    #[test]
    fn every_answer_is_described_with_its_code_and_reason() {
        let said = |code: u16| {
            describe(&Response::Status {
                code,
                retry_after: None,
            })
        };
        for (code, reason) in [
            (200, "OK"),
            (201, "Created"),
            (202, "Accepted"),
            (204, "No Content"),
            (301, "Moved Permanently"),
            (302, "Found"),
            (307, "Temporary Redirect"),
            (308, "Permanent Redirect"),
            (400, "Bad Request"),
            (401, "Unauthorized"),
            (403, "Forbidden"),
            (404, "Not Found"),
            (408, "Request Timeout"),
            (410, "Gone"),
            (413, "Payload Too Large"),
            (422, "Unprocessable Entity"),
            (425, "Too Early"),
            (429, "Too Many Requests"),
            (500, "Internal Server Error"),
            (502, "Bad Gateway"),
            (503, "Service Unavailable"),
            (504, "Gateway Timeout"),
        ] {
            assert_eq!(said(code), format!("the receiver answered {code} {reason}"));
        }
        assert_eq!(said(299), "the receiver answered 299", "no reason known: none made up");
        let kinds = [
            (ErrorKind::Timeout, "timeout", "did not answer within"),
            (ErrorKind::Connect, "connect", "could not be made"),
            (ErrorKind::Reset, "reset", "broke before"),
            (ErrorKind::Dns, "dns", "did not resolve"),
            (ErrorKind::Tls, "tls", "TLS handshake"),
            (ErrorKind::Blocked, "blocked", "SSRF policy"),
        ];
        for (kind, name, words) in kinds {
            assert_eq!(kind.as_str(), name);
            assert!(describe(&Response::Error(kind)).contains(words), "{name}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("120", 0), Some(Duration::from_secs(120)));
        let now = 1_700_000_000_000;
        let date = httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_millis(now as u64 + 30_000));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub state: crate::store::DeliveryState,
    /// Failures counted toward the retry schedule.
    pub failures: u32,
    /// Delay before the next attempt, when one is scheduled.
    pub retry_in: Option<Duration>,
    /// Whether the webhook is to be disabled (410 Gone).
    pub disable_webhook: bool,
    /// The one-line explanation: what the receiver did and what hookd does about it.
    pub explanation: String,
    /// What hookd does about it: the explanation's second half.
    pub consequence: String,
}

impl Decision {
    /// The same decision, its explanation saying more of what went wrong than the error kind
    /// does (`connection refused`, `the certificate has expired`).
    pub fn with_detail(mut self, response: &Response, detail: &str) -> Self {
        self.explanation = format!("{} ({detail}); {}", describe(response), self.consequence);
        self
    }
}

/// Applies the outcome table and the retry schedule to one answer. `failures` counts the
/// failed attempts before this one; `jitter` is in [0, 1).
pub fn decide(response: &Response, failures: u32, schedule: &[Duration], jitter: f64) -> Decision {
    use crate::store::DeliveryState;
    let what = describe(response);
    let verdict = classify(response);
    let attempts_allowed = schedule.len() + 1;
    let (state, failures, retry_in, consequence) = match verdict {
        Verdict::Delivered => (DeliveryState::Delivered, 0, None, "delivered".to_owned()),
        Verdict::Failed { disable } => {
            let why = match response {
                _ if disable => {
                    "not retried, and the webhook is disabled: 410 Gone means the receiver is gone for good"
                }
                Response::Status { code: 300..=399, .. } => "not retried: redirects are not followed",
                Response::Status { .. } => "not retried: the receiver refused the request",
                Response::Error(_) => "not retried",
            };
            (DeliveryState::Failed, failures + 1, None, why.to_owned())
        }
        Verdict::Retry { not_before } => {
            let failures = failures + 1;
            match crate::retry::next_delay(schedule, failures, jitter, not_before) {
                Some(delay) => {
                    let honoured = if not_before.is_some() {
                        ", as its Retry-After asked"
                    } else {
                        ""
                    };
                    let text = format!(
                        "retrying in {}{honoured} (attempt {} of {attempts_allowed})",
                        crate::duration::format(Duration::from_millis(delay.as_millis() as u64)),
                        failures + 1
                    );
                    (DeliveryState::Pending, failures, Some(delay), text)
                }
                None => {
                    let text = format!(
                        "no retries left after {failures} attempts: the delivery is dead (replay it once the receiver is fixed)"
                    );
                    (DeliveryState::Dead, failures, None, text)
                }
            }
        }
    };
    Decision {
        state,
        failures,
        retry_in,
        disable_webhook: matches!(verdict, Verdict::Failed { disable: true }),
        explanation: format!("{what}; {consequence}"),
        consequence,
    }
}

/// The decision for a one-off attempt (a test send): delivered, or failed and never retried,
/// whatever the answer. A 410 still disables the webhook: the receiver said it is gone.
pub fn decide_once(response: &Response, failures: u32) -> Decision {
    use crate::store::DeliveryState;
    let what = describe(response);
    let verdict = classify(response);
    let (state, failures, consequence) = match verdict {
        Verdict::Delivered => (DeliveryState::Delivered, 0, "delivered"),
        Verdict::Failed { disable: true } => (
            DeliveryState::Failed,
            failures + 1,
            "the webhook is disabled: 410 Gone means the receiver is gone for good; a test send is never retried",
        ),
        _ => (
            DeliveryState::Failed,
            failures + 1,
            "a test send is made once and never retried",
        ),
    };
    Decision {
        state,
        failures,
        retry_in: None,
        disable_webhook: matches!(verdict, Verdict::Failed { disable: true }),
        explanation: format!("{what}; {consequence}"),
        consequence: consequence.to_owned(),
    }
}

#[cfg(test)]
mod decide_tests {
    use super::*;
    use crate::store::DeliveryState;

    const SCHEDULE: [Duration; 2] = [Duration::from_secs(5), Duration::from_secs(60)];

    #[test]
    fn a_retryable_failure_walks_the_schedule_then_dies() {
        let busy = Response::Status {
            code: 503,
            retry_after: None,
        };
        let first = decide(&busy, 0, &SCHEDULE, 0.5);
        assert_eq!(
            (first.state, first.failures, first.retry_in),
            (DeliveryState::Pending, 1, Some(Duration::from_secs(5)))
        );
        assert!(
            first.explanation.contains("503 Service Unavailable"),
            "{}",
            first.explanation
        );
        assert!(first.explanation.contains("attempt 2 of 3"), "{}", first.explanation);
        let last = decide(&busy, 2, &SCHEDULE, 0.5);
        assert_eq!(last.state, DeliveryState::Dead);
        assert!(
            last.explanation.contains("no retries left after 3 attempts"),
            "{}",
            last.explanation
        );
    }

    #[test]
    fn a_one_off_attempt_is_delivered_or_failed_never_retried() {
        let busy = Response::Status {
            code: 503,
            retry_after: Some(Duration::from_secs(5)),
        };
        let once = decide_once(&busy, 0);
        assert_eq!(
            (once.state, once.failures, once.retry_in),
            (DeliveryState::Failed, 1, None)
        );
        assert!(once.explanation.contains("never retried"), "{}", once.explanation);
        let timeout = decide_once(&Response::Error(ErrorKind::Timeout), 0);
        assert_eq!((timeout.state, timeout.retry_in), (DeliveryState::Failed, None));
        let ok = decide_once(
            &Response::Status {
                code: 204,
                retry_after: None,
            },
            2,
        );
        assert_eq!((ok.state, ok.failures), (DeliveryState::Delivered, 0));
        let gone = decide_once(
            &Response::Status {
                code: 410,
                retry_after: None,
            },
            0,
        );
        assert!(gone.disable_webhook && gone.state == DeliveryState::Failed);
    }

    #[test]
    fn each_refusal_says_why_it_is_not_retried_and_counts_one_failure() {
        let decided = |code: u16| {
            decide(
                &Response::Status {
                    code,
                    retry_after: None,
                },
                2,
                &SCHEDULE,
                0.5,
            )
        };
        let redirect = decided(302);
        assert!(
            redirect
                .explanation
                .ends_with("not retried: redirects are not followed"),
            "{}",
            redirect.explanation
        );
        assert!(!redirect.disable_webhook);
        let refused = decided(404);
        assert!(
            refused
                .explanation
                .ends_with("not retried: the receiver refused the request"),
            "{}",
            refused.explanation
        );
        assert_eq!(
            (refused.state, refused.failures, refused.retry_in),
            (DeliveryState::Failed, 3, None)
        );
        let gone = decided(410);
        assert!(
            gone.explanation.contains("the webhook is disabled"),
            "{}",
            gone.explanation
        );
        let blocked = decide(&Response::Error(ErrorKind::Blocked), 2, &SCHEDULE, 0.5);
        assert!(
            blocked.explanation.ends_with("; not retried"),
            "{}",
            blocked.explanation
        );
        assert_eq!(blocked.failures, 3);
        let busy = decide(
            &Response::Status {
                code: 503,
                retry_after: None,
            },
            1,
            &SCHEDULE,
            0.5,
        );
        assert_eq!(busy.failures, 2, "one more failure, not a product");
        assert!(busy.explanation.ends_with("(attempt 3 of 3)"), "{}", busy.explanation);
        let asked = decide(
            &Response::Status {
                code: 429,
                retry_after: Some(Duration::from_secs(90)),
            },
            0,
            &SCHEDULE,
            0.5,
        );
        assert_eq!(asked.retry_in, Some(Duration::from_secs(90)));
        assert!(
            asked
                .explanation
                .contains("retrying in 1m 30s, as its Retry-After asked"),
            "{}",
            asked.explanation
        );
        let once = decide_once(
            &Response::Status {
                code: 410,
                retry_after: None,
            },
            4,
        );
        assert_eq!(once.failures, 5);
        assert!(
            once.explanation.contains("the webhook is disabled"),
            "{}",
            once.explanation
        );
        let once = decide_once(&Response::Error(ErrorKind::Reset), 4);
        assert!(!once.explanation.contains("disabled") && !once.disable_webhook);
    }

    #[test]
    fn gone_disables_and_success_resets() {
        let gone = decide(
            &Response::Status {
                code: 410,
                retry_after: None,
            },
            0,
            &SCHEDULE,
            0.5,
        );
        assert!(gone.disable_webhook);
        assert_eq!(gone.state, DeliveryState::Failed);
        let ok = decide(
            &Response::Status {
                code: 200,
                retry_after: None,
            },
            3,
            &SCHEDULE,
            0.5,
        );
        assert_eq!((ok.state, ok.failures), (DeliveryState::Delivered, 0));
    }
}
