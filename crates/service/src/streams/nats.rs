//! NATS JetStream: each entry published to `{prefix}.{organization id}` on the operator's NATS
//! server (`--nats-url`, `--nats-subject-prefix`), with the entry's id as the message id
//! (`Nats-Msg-Id`), so that JetStream drops a resend within its duplicate window, and each
//! publish acknowledgement awaited before the cursor moves.
//!
//! The NATS server is the operator's setting, not a stream's: a stream says `{"type": "nats"}`
//! and nothing else, so an organization's admin can neither point Stele at another server nor
//! publish under another organization's subject. Stele makes the JetStream stream that keeps
//! these subjects (`STELE_AUDIT`, subjects `{prefix}.>`) if the server has none by that name; an
//! operator who keeps them in a stream of their own makes it before.

use std::time::Duration;

use async_nats::jetstream;
use tokio::sync::OnceCell;

use super::Outcome;

/// The JetStream stream Stele makes for its subjects when the server has none by this name.
pub const JETSTREAM_STREAM: &str = "STELE_AUDIT";
/// The subject prefix when the operator names none.
pub const DEFAULT_SUBJECT_PREFIX: &str = "stele.audit";
/// How long a publish acknowledgement may take.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// One entry to publish: its organization's id (the subject's last token), its id (JetStream's
/// de-duplication key) and its record.
pub struct Message<'a> {
    pub org_id: &'a str,
    pub id: String,
    pub record: Vec<u8>,
}

/// The operator's NATS server, as `stele serve` is told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSettings {
    /// `nats://127.0.0.1:4222` (several, comma-separated, for a cluster).
    pub url: String,
    pub subject_prefix: String,
}

impl NatsSettings {
    /// The subject of an organization's entries.
    pub fn subject(&self, org_id: &str) -> String {
        format!("{}.{org_id}", self.subject_prefix)
    }
}

/// Whether `prefix` can start a subject: tokens of letters, digits, `-` and `_`, separated by
/// dots (no wildcard, no space, no empty token).
pub fn is_subject_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.split('.').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// One connection to the operator's NATS server, made at the first delivery and kept (the
/// client reconnects by itself).
pub struct Nats {
    settings: NatsSettings,
    context: OnceCell<jetstream::Context>,
}

impl Nats {
    pub fn new(settings: NatsSettings) -> Nats {
        Nats {
            settings,
            context: OnceCell::new(),
        }
    }

    async fn context(&self) -> Result<&jetstream::Context, String> {
        self.context
            .get_or_try_init(|| async {
                let client = async_nats::ConnectOptions::new()
                    .connection_timeout(Duration::from_secs(10))
                    .connect(self.settings.url.as_str())
                    .await
                    .map_err(|e| format!("could not connect to NATS at {}: {e}", self.settings.url))?;
                let context = jetstream::new(client);
                let config = jetstream::stream::Config {
                    name: JETSTREAM_STREAM.to_string(),
                    subjects: vec![format!("{}.>", self.settings.subject_prefix)],
                    ..Default::default()
                };
                // An operator's own stream for these subjects is fine: publishes go there.
                if let Err(error) = context.get_or_create_stream(config).await {
                    tracing::warn!(%error, "making the JetStream stream {JETSTREAM_STREAM} failed; publishing to whichever stream keeps the subjects");
                }
                Ok(context)
            })
            .await
    }

    /// Publishes each message to its organization's subject, all at once, and waits for every
    /// acknowledgement: delivered only if JetStream stored (or already had) each one.
    pub async fn publish(&self, messages: &[Message<'_>]) -> Outcome {
        let retry = |error: String| Outcome::Retry { error, after: None };
        let context = match self.context().await {
            Ok(context) => context,
            Err(error) => return retry(error),
        };
        let mut acks = Vec::with_capacity(messages.len());
        for message in messages {
            let subject = self.settings.subject(message.org_id);
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, message.id.as_str());
            match context
                .publish_with_headers(subject.clone(), headers, message.record.clone().into())
                .await
            {
                Ok(ack) => acks.push((subject, ack)),
                Err(e) => {
                    return retry(format!("publishing to NATS subject {subject} failed: {e}"));
                }
            }
        }
        for (subject, ack) in acks {
            match tokio::time::timeout(ACK_TIMEOUT, ack.into_future()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return retry(format!(
                        "JetStream did not acknowledge a message on {subject}: {e}"
                    ));
                }
                Err(_) => {
                    return retry(format!(
                        "JetStream did not acknowledge a message on {subject} within {} s",
                        ACK_TIMEOUT.as_secs()
                    ));
                }
            }
        }
        Outcome::Delivered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_prefix_is_dotted_tokens_without_wildcards() {
        for good in ["stele.audit", "audit", "acme-prod.audit_log"] {
            assert!(is_subject_prefix(good), "{good}");
        }
        for bad in [
            "",
            "stele..audit",
            "stele.*",
            "stele.>",
            "a b",
            ".audit",
            "audit.",
        ] {
            assert!(!is_subject_prefix(bad), "{bad}");
        }
        let settings = NatsSettings {
            url: "nats://127.0.0.1:4222".into(),
            subject_prefix: "stele.audit".into(),
        };
        assert_eq!(settings.subject("org_1"), "stele.audit.org_1");
    }
}
