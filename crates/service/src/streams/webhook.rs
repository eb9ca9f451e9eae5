//! HTTPS webhooks signed per the Standard Webhooks specification (standardwebhooks.com): each
//! POST carries `webhook-id` (the same on every retry of a batch), `webhook-timestamp` (Unix
//! seconds) and `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of
//! `{id}.{timestamp}.{body}` under the stream's secret; during a rotation's overlap, a second
//! signature under the previous secret, space-separated). Secrets have the specification's form,
//! `whsec_` and the key's base64.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit as _, Mac as _};

use super::Outcome;
use super::envelope::{self, Format, Payload};
use super::target_guard::{GuardedResolver, TargetGuard};
use super::tls::StreamTls;

type HmacSha256 = hmac::Hmac<hmac_sha2::Sha256>;

/// How long one POST may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a refusing receiver's answer is kept as the stream's error.
const ERROR_BODY_CHARS: usize = 200;

/// A stream's signing secret as the receiver configures it: `whsec_` and the key in base64.
pub fn secret_text(key: &[u8; 32]) -> String {
    format!("whsec_{}", STANDARD.encode(key))
}

/// The `webhook-signature` value of one message under each of `keys` (current first).
pub fn signature(keys: &[[u8; 32]], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|key| {
            let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The HTTP client every webhook delivery of a server uses: no redirects (a redirect could point
/// anywhere, private addresses included), host names resolved through the guard, and the
/// operator's certificate authorities trusted beside the Mozilla roots.
pub fn client(guard: TargetGuard, tls: &StreamTls) -> reqwest::Client {
    let mut builder = reqwest::Client::builder();
    for root in tls.extra_roots() {
        match reqwest::Certificate::from_der(root) {
            Ok(root) => builder = builder.add_root_certificate(root),
            // `StreamTls` parsed it already; reqwest's parser is the same library's.
            Err(error) => {
                tracing::warn!(%error, "a --streams-ca-file certificate is not usable for webhooks")
            }
        }
    }
    builder
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(GuardedResolver::shared(guard))
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!(
            "Stele/",
            env!("CARGO_PKG_VERSION"),
            " (log stream)"
        ))
        .build()
        .expect("the webhook client's settings are valid")
}

/// One signed POST of a batch.
pub struct Message<'a> {
    pub url: &'a str,
    pub id: &'a str,
    pub timestamp: i64,
    /// The batch in the stream's format (`envelope::payload`).
    pub payload: Payload,
    /// How a `2xx` answer is read: Elasticsearch's `_bulk` says per item what it took.
    pub format: Format,
    /// The stream's own headers, opened (a SIEM's token).
    pub headers: &'a [(String, String)],
    /// The current secret first, then the previous one during a rotation's overlap.
    pub keys: &'a [[u8; 32]],
}

/// Posts one message and says how it went: 2xx delivered; 408, 429, 5xx and network errors
/// retried (after the answer's `Retry-After`, in seconds or as a date, if it has one); any other answer
/// refused, which pauses the stream, because sending the same batch again cannot change it. So
/// is a URL whose literal address the guard does not allow (the operator turned private targets
/// off since the stream was made): nothing but a change of the stream or of the server helps.
pub async fn post(client: &reqwest::Client, guard: TargetGuard, message: Message<'_>) -> Outcome {
    // A literal address in the URL is not resolved, so the resolver's guard does not see it.
    if let Some(refusal) = literal_refusal(guard, message.url) {
        return Outcome::Refused(refusal);
    }
    let Payload { content_type, body } = message.payload;
    let signature = signature(message.keys, message.id, message.timestamp, &body);
    let mut request = client.post(message.url);
    // The stream's own first: the names Stele sets below were refused for them.
    for (name, value) in message.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let sent = request
        .header("content-type", content_type)
        .header("webhook-id", message.id)
        .header("webhook-timestamp", message.timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(e) => {
            return Outcome::Retry {
                error: describe(&e),
                after: None,
            };
        }
    };
    let status = response.status();
    if status.is_success() {
        return match message.format {
            Format::ElasticBulk => match response.bytes().await {
                Ok(answer) => envelope::elastic_outcome(&answer),
                Err(e) => Outcome::Retry {
                    error: format!("reading the receiver's answer failed: {}", describe(&e)),
                    after: None,
                },
            },
            _ => Outcome::Delivered,
        };
    }
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = response.text().await.unwrap_or_default();
    let excerpt: String = body.chars().take(ERROR_BODY_CHARS).collect();
    let error = if excerpt.trim().is_empty() {
        format!("the receiver answered {status}")
    } else {
        format!("the receiver answered {status}: {}", excerpt.trim())
    };
    match status.as_u16() {
        408 | 429 | 500..=599 => Outcome::Retry {
            error,
            after: retry_after,
        },
        300..=399 => Outcome::Refused(format!(
            "{error} (a redirect; redirects are not followed: set the stream's URL to where it \
             points)"
        )),
        _ => Outcome::Refused(error),
    }
}

/// The guard's refusal of a URL whose host is a literal address it does not allow.
fn literal_refusal(guard: TargetGuard, url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    let ip: std::net::IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    guard.check(host, ip).err().map(|r| r.to_string())
}

/// A network error in a sentence, with its causes (reqwest's own text stops at the first).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "the receiver did not answer in time".to_string()
    } else if e.is_connect() {
        "could not connect to the receiver".to_string()
    } else {
        "the request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `Retry-After` in seconds, or as an HTTP date (the wait until then; none if it has passed).
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    match value.parse::<u64>() {
        Ok(seconds) => Some(Duration::from_secs(seconds)),
        Err(_) => httpdate::parse_http_date(value).ok().map(|at| {
            at.duration_since(std::time::SystemTime::now())
                .unwrap_or_default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries: this secret,
    /// id, timestamp and payload sign to this value.
    #[test]
    fn signatures_match_the_specification_example() {
        let key: [u8; 24] = STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap()
            .try_into()
            .unwrap();
        let mut mac = HmacSha256::new_from_slice(&key).unwrap();
        mac.update(b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{\"test\": 2432232314}");
        assert_eq!(
            STANDARD.encode(mac.finalize().into_bytes()),
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn retry_after_is_read_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        let later = std::time::SystemTime::now() + Duration::from_secs(90);
        let waited = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(
            waited > Duration::from_secs(85) && waited <= Duration::from_secs(90),
            "{waited:?}"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn an_overlap_signs_with_both_secrets() {
        let signed = signature(&[[1; 32], [2; 32]], "m", 5, b"{}");
        let parts: Vec<&str> = signed.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.starts_with("v1,")));
        assert_eq!(parts[0], signature(&[[1; 32]], "m", 5, b"{}"));
    }
}
