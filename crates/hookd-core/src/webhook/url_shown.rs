//! A webhook URL as it may be shown: credentials in it replaced by `***`.

use url::Url;

/// Query parameters whose values are taken for credentials: a name containing one of these.
const SECRET_PARAMS: [&str; 9] = [
    "token",
    "key",
    "secret",
    "pass",
    "pwd",
    "auth",
    "sig",
    "credential",
    "session",
];

/// The URL as it may be shown (API answers, logs): a password in it and the values of query
/// parameters named like credentials (`token`, `api_key`, `sig`, …) replaced by `***`. The
/// stored URL, and the one requests go to, keep them.
pub fn redacted_url(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    let secret = |name: &str| {
        let name = name.to_ascii_lowercase();
        SECRET_PARAMS.iter().any(|s| name.contains(s))
    };
    if url.query_pairs().any(|(name, _)| secret(&name)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if secret(&name) {
                    "***".into()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}
