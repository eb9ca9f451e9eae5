//! Syslog: RFC 5424 messages over TCP with octet-counting framing (RFC 6587, section 3.4.1), one
//! message per entry, the entry's JSON as the message.
//!
//! ```text
//! 312 <110>1 2026-12-07T08:00:00.123Z stele-1 stele - audit - {"organization_id":"org_…","id":…}
//! ```
//!
//! Facility 13 (log audit); severity 6 (informational) for a success, 4 (warning) for a failure.
//! `HOSTNAME` is the server's, `APP-NAME` `stele`, `MSGID` `audit`; no structured data.
//!
//! With `tls` the connection is TLS (RFC 5425; receivers listen on 6514 by convention), the
//! receiver's certificate checked against [`StreamTls`]'s roots and the stream's host.
//!
//! A batch is written on a connection of its own, which Stele then closes and waits for the
//! receiver to close too: TCP has no acknowledgement a sender can read, but a receiver that has
//! closed its side has read everything before the close. The cursor moves only then.

use std::time::Duration;

use stele_core::Outcome as EventOutcome;
use stele_core::time::format_rfc3339;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::Outcome;
use super::target_guard::TargetGuard;
use super::tls::{StreamTls, server_name};

/// Connecting, writing a batch and the receiver's close, each within this.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Facility 13, "log audit".
const FACILITY_LOG_AUDIT: u8 = 13;

/// One entry as an RFC 5424 message, framed: its length in bytes, a space, the message.
pub fn frame(hostname: &str, occurred_at: i64, outcome: EventOutcome, json: &str) -> String {
    let severity = match outcome {
        EventOutcome::Success => 6,
        EventOutcome::Failure => 4,
    };
    let priority = FACILITY_LOG_AUDIT * 8 + severity;
    let message = format!(
        "<{priority}>1 {} {hostname} stele - audit - {json}",
        format_rfc3339(occurred_at)
    );
    format!("{} {message}", message.len())
}

/// The `HOSTNAME` field: this machine's name, as RFC 5424 allows it (printable ASCII, at most 255
/// characters), or `-`.
pub fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if name.is_empty() { "-".into() } else { name }
}

/// Writes framed messages to `host:port` (over TLS when `tls` is given: RFC 5425) and waits for
/// the receiver to close its side.
pub async fn send(
    guard: TargetGuard,
    tls: Option<&StreamTls>,
    host: &str,
    port: u16,
    frames: &str,
) -> Outcome {
    let retry = |error: String| Outcome::Retry { error, after: None };
    let addrs = match guard.resolve(host, port).await {
        Ok(addrs) => addrs,
        Err(refusal) => return retry(refusal.to_string()),
    };
    let stream = match tokio::time::timeout(STEP_TIMEOUT, TcpStream::connect(&addrs[..])).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return retry(format!("could not connect to {host}:{port}: {e}")),
        Err(_) => return retry(format!("connecting to {host}:{port} timed out")),
    };
    let written = match tls {
        None => tokio::time::timeout(STEP_TIMEOUT, write_until_closed(stream, frames)).await,
        Some(tls) => {
            let name = match server_name(host) {
                Ok(name) => name,
                Err(error) => return Outcome::Refused(error),
            };
            let handshake =
                tokio::time::timeout(STEP_TIMEOUT, tls.connector().connect(name, stream)).await;
            match handshake {
                Ok(Ok(stream)) => {
                    tokio::time::timeout(STEP_TIMEOUT, write_until_closed(stream, frames)).await
                }
                Ok(Err(e)) => return retry(format!("TLS with {host}:{port} failed: {e}")),
                Err(_) => return retry(format!("TLS with {host}:{port} timed out")),
            }
        }
    };
    match written {
        Ok(Ok(())) => Outcome::Delivered,
        Ok(Err(e)) => retry(format!("sending to {host}:{port} failed: {e}")),
        Err(_) => retry(format!(
            "{host}:{port} did not take the batch within {} s",
            STEP_TIMEOUT.as_secs()
        )),
    }
}

/// Writes the frames, closes Stele's side (over TLS, with its `close_notify`), and reads until
/// the receiver closes its own.
async fn write_until_closed<S>(mut stream: S, frames: &str) -> std::io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.write_all(frames.as_bytes()).await?;
    stream.shutdown().await?;
    // Whatever the receiver sends back (nothing, for syslog) until it closes.
    let mut sink = [0u8; 512];
    loop {
        match stream.read(&mut sink).await {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            // A TLS receiver may close the connection without a `close_notify` of its own; it has
            // closed all the same.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_counts_the_octets_of_its_message() {
        let framed = frame("host-1", 0, EventOutcome::Failure, r#"{"a":"é"}"#);
        let (length, message) = framed.split_once(' ').unwrap();
        assert_eq!(length.parse::<usize>().unwrap(), message.len());
        assert_eq!(
            message,
            r#"<108>1 1970-01-01T00:00:00.000Z host-1 stele - audit - {"a":"é"}"#
        );
    }
}
