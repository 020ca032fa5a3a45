//! Parsing a spec's fields, one function per field, each error naming its field.

use std::collections::BTreeMap;
use std::time::Duration;

use url::Url;

use super::*;
use crate::record::Kind;
use crate::validation::{Fields, ValidationError};

pub(super) fn parse_kind(f: &Fields<'_>) -> Result<Kind, ValidationError> {
    let kind = f.req_str("kind", 16)?;
    Kind::parse(kind).ok_or_else(|| f.invalid("kind", format!("unknown kind `{kind}`; expected \"data\" or \"event\"")))
}

pub(super) fn parse_method(f: &Fields<'_>) -> Result<Method, ValidationError> {
    match f.opt_str("method")?.map(str::to_ascii_uppercase).as_deref() {
        None | Some("POST") => Ok(Method::Post),
        Some("GET") => Ok(Method::Get),
        Some(other) => Err(f.invalid(
            "method",
            format!("unsupported method `{other}`; expected \"POST\" or \"GET\""),
        )),
    }
}

pub(super) fn parse_token(f: &Fields<'_>) -> Result<Option<String>, ValidationError> {
    let Some(token) = f.opt_str("token")? else {
        return Ok(None);
    };
    f.check_len("token", token, MAX_TOKEN_LEN)?;
    if !is_header_value(token) {
        return Err(f.invalid("token", "`token` must be printable ASCII"));
    }
    Ok(Some(token.to_owned()))
}

pub(super) fn parse_headers(f: &Fields<'_>) -> Result<BTreeMap<String, String>, ValidationError> {
    let headers = f.str_map("headers")?;
    if headers.len() > MAX_HEADERS {
        return Err(f.invalid("headers", format!("at most {MAX_HEADERS} headers")));
    }
    for (header, value) in &headers {
        check_header_name(f, &format!("headers.{header}"), header)?;
        if !is_header_value(value) {
            return Err(f.invalid(&format!("headers.{header}"), "header values must be printable ASCII"));
        }
        template::check(value).map_err(|e| f.invalid(&format!("headers.{header}"), e))?;
    }
    Ok(headers)
}

/// Query parameters: names non-empty, values templates; encoded when sent, so any text goes.
pub(super) fn parse_query(f: &Fields<'_>) -> Result<BTreeMap<String, String>, ValidationError> {
    let query = f.str_map("query")?;
    if query.len() > MAX_HEADERS {
        return Err(f.invalid("query", format!("at most {MAX_HEADERS} query parameters")));
    }
    for (name, value) in &query {
        if name.is_empty() || name.len() > MAX_QUERY_NAME_LEN {
            return Err(f.invalid(
                &format!("query.{name}"),
                format!("a query parameter's name is 1 to {MAX_QUERY_NAME_LEN} characters"),
            ));
        }
        f.check_len(&format!("query.{name}"), value, MAX_TOKEN_LEN)?;
        template::check(value).map_err(|e| f.invalid(&format!("query.{name}"), e))?;
    }
    Ok(query)
}

/// The format; `single` by default for GET webhooks, which cannot batch (a GET request carries
/// no body, so a batch would deliver only its first record's header values).
pub(super) fn parse_format(f: &Fields<'_>, method: Option<&Method>) -> Result<Format, ValidationError> {
    let get = method == Some(&Method::Get);
    match f.opt_str("format")? {
        None if get => Ok(Format::Single),
        Some("batch") if get => Err(f.invalid(
            "format",
            "a GET request carries no body, so a GET webhook cannot batch records: set \"format\": \"single\" or leave it out",
        )),
        None | Some("batch") => Ok(Format::Batch),
        Some("single") => Ok(Format::Single),
        Some(other) => Err(f.invalid(
            "format",
            format!("unknown format `{other}`; expected \"batch\" or \"single\""),
        )),
    }
}

pub(super) fn parse_batch_max(f: &Fields<'_>) -> Result<u32, ValidationError> {
    match f.opt_u64("batch_max")? {
        None => Ok(DEFAULT_BATCH_MAX),
        Some(n) if (1..=u64::from(MAX_BATCH_MAX)).contains(&n) => Ok(n as u32),
        Some(n) => Err(f.invalid(
            "batch_max",
            format!("`batch_max` must be between 1 and {MAX_BATCH_MAX}, got {n}"),
        )),
    }
}

pub(super) fn parse_timeout(f: &Fields<'_>, limits: WebhookLimits) -> Result<Duration, ValidationError> {
    let Some(s) = f.opt_str("timeout")? else {
        return Ok(DEFAULT_TIMEOUT.min(limits.max_timeout));
    };
    let t = duration::parse(s).map_err(|m| ValidationError::new("invalid_duration", "timeout", m))?;
    if t < MIN_TIMEOUT || t > limits.max_timeout {
        return Err(f.invalid(
            "timeout",
            format!(
                "`timeout` must be between {} and {}",
                duration::format(MIN_TIMEOUT),
                duration::format(limits.max_timeout)
            ),
        ));
    }
    Ok(t)
}

pub(super) fn parse_url(f: &Fields<'_>) -> Result<Url, ValidationError> {
    let raw = f.req_str("url", MAX_URL_LEN)?;
    let invalid = |message: String| ValidationError::new("invalid_url", f.path("url"), message);
    let url = Url::parse(raw).map_err(|e| invalid(format!("`{raw}` is not a valid URL ({e})")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(invalid(format!(
            "the URL scheme must be http or https, not `{}`",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host".into()));
    }
    // Percent-encoding can make the normalized URL longer than what was sent; the stored form
    // must read back, so the limit holds for it too.
    if url.as_str().len() > MAX_URL_LEN {
        return Err(invalid(format!(
            "the URL is longer than {MAX_URL_LEN} characters once percent-encoded"
        )));
    }
    Ok(url)
}

pub(super) fn parse_schedule(f: &Fields<'_>) -> Result<Vec<Duration>, ValidationError> {
    if f.value("retry_schedule").is_none() {
        return Ok(retry::default_schedule());
    }
    let steps = f.str_list("retry_schedule")?;
    if steps.len() > MAX_RETRY_STEPS {
        return Err(f.invalid("retry_schedule", format!("at most {MAX_RETRY_STEPS} steps")));
    }
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let field = format!("retry_schedule[{i}]");
            let d = duration::parse(step).map_err(|m| ValidationError::new("invalid_duration", field.clone(), m))?;
            if d.is_zero() || d > MAX_RETRY_STEP {
                return Err(ValidationError::new(
                    "invalid_duration",
                    field,
                    format!(
                        "each step must be more than 0 and at most {}",
                        duration::format(MAX_RETRY_STEP)
                    ),
                ));
            }
            Ok(d)
        })
        .collect()
}

pub(crate) fn check_header_name(f: &Fields<'_>, field: &str, name: &str) -> Result<(), ValidationError> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return Err(ValidationError::new(
            "invalid_header",
            f.path(field),
            format!("`{name}` is not a valid header name"),
        ));
    }
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(ValidationError::new(
            "invalid_header",
            f.path(field),
            format!("`{name}` is set by hookd and cannot be changed"),
        ));
    }
    Ok(())
}

pub(super) fn is_header_value(s: &str) -> bool {
    s.len() <= 8192 && s.bytes().all(|b| (0x20..0x7f).contains(&b) || b == b'\t')
}
