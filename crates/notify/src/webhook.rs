//! Posting to the webhook: bounded retries with backoff for transient failures, and errors that never carry the
//! URL (it is a bearer secret).

use crate::SlackMessage;
use std::time::Duration;

/// How hard to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// The wait after the first failure; it doubles after each further one.
    pub first_delay: Duration,
    /// The limit for one attempt, connect to last byte.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy { attempts: 4, first_delay: Duration::from_millis(500), timeout: Duration::from_secs(10) }
    }
}

/// Why a message was not delivered. The text never includes the webhook URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// The URL is not an https URL (or http on the loopback interface, for tests and local relays).
    #[error("the webhook URL is not an https URL")]
    InvalidUrl,
    /// The webhook answered with a status that retrying won't change.
    #[error("the webhook refused the message with HTTP {status}")]
    Refused {
        /// The HTTP status.
        status: u16,
    },
    /// Every attempt failed transiently.
    #[error("the webhook was not reached after {attempts} attempt(s); last: {last}")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last failure, without the URL.
        last: String,
    },
}

fn is_allowed_url(url: &str) -> bool {
    let loopback = ["http://127.0.0.1:", "http://127.0.0.1/", "http://localhost:", "http://localhost/"];
    (url.starts_with("https://") && url.len() > "https://".len()) || loopback.iter().any(|p| url.starts_with(p))
}

/// A transport failure, described without the URL (ureq's own messages may include it).
fn describe(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Timeout(_) => "timed out".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::Io(io) => format!("I/O error ({:?})", io.kind()),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => "TLS error".into(),
        _ => "transport error".into(),
    }
}

/// Posts `message` as JSON to `url`. Retries connection failures, timeouts, 429 and 5xx with exponential backoff;
/// returns how many attempts it took.
pub fn post(url: &str, message: &SlackMessage, retry: &RetryPolicy) -> Result<u32, PostError> {
    if !is_allowed_url(url) {
        return Err(PostError::InvalidUrl);
    }
    let body = serde_json::to_string(message).unwrap_or_default();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(retry.timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let attempts = retry.attempts.max(1);
    let mut delay = retry.first_delay;
    let mut last = String::new();
    for attempt in 1..=attempts {
        match agent.post(url).header("content-type", "application/json").send(&body) {
            Ok(response) => {
                let status = response.status().as_u16();
                if (200..300).contains(&status) {
                    return Ok(attempt);
                }
                if status != 429 && status < 500 {
                    return Err(PostError::Refused { status });
                }
                last = format!("HTTP {status}");
            }
            Err(e) => last = describe(&e),
        }
        if attempt < attempts {
            std::thread::sleep(delay);
            delay = delay.saturating_mul(2);
        }
    }
    Err(PostError::GaveUp { attempts, last })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;

    fn message() -> SlackMessage {
        SlackMessage {
            branch: "main".into(),
            status: "apply succeeded".into(),
            url: "https://ci/run/1".into(),
            repo: "acme/live".into(),
            actor: "octocat".into(),
            account: None,
            run_id: Some("run-1".into()),
            summary: None,
        }
    }

    /// A real HTTP server on 127.0.0.1 that answers each request with the next status and reports each body.
    fn server(statuses: Vec<u16>) -> (String, mpsc::Receiver<(String, String)>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url =
            format!("http://127.0.0.1:{}/hooks/CANARY-webhook-secret", listener.local_addr().expect("addr").port());
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for status in statuses {
                let Ok((stream, _)) = listener.accept() else { return };
                let mut reader = BufReader::new(stream);
                let mut request_line = String::new();
                reader.read_line(&mut request_line).expect("request line");
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).expect("header");
                    if line.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().expect("length");
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).expect("body");
                let _ = sender.send((request_line, String::from_utf8(body).expect("utf-8")));
                let mut stream = reader.into_inner();
                let _ = write!(stream, "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            }
        });
        (url, receiver)
    }

    fn quick() -> RetryPolicy {
        RetryPolicy { attempts: 3, first_delay: Duration::from_millis(10), timeout: Duration::from_secs(5) }
    }

    #[test]
    fn posts_the_message_as_json() {
        let (url, requests) = server(vec![200]);
        assert_eq!(post(&url, &message(), &quick()), Ok(1));
        let (line, body) = requests.recv().expect("a request");
        assert!(line.starts_with("POST /hooks/CANARY-webhook-secret "), "{line}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(json, serde_json::to_value(message()).expect("json"));
    }

    #[test]
    fn retries_transient_failures_then_gives_up_without_naming_the_url() {
        let (url, requests) = server(vec![500, 429, 200]);
        assert_eq!(post(&url, &message(), &quick()), Ok(3));
        assert_eq!(requests.try_iter().count(), 3);
        let (url, _) = server(vec![503, 503, 503]);
        let error = post(&url, &message(), &quick()).expect_err("gives up");
        assert_eq!(error, PostError::GaveUp { attempts: 3, last: "HTTP 503".into() });
        let (url, requests) = server(vec![404]);
        assert_eq!(post(&url, &message(), &quick()), Err(PostError::Refused { status: 404 }));
        assert_eq!(requests.try_iter().count(), 1, "a 4xx is not retried");
        // Nobody listens: connection failures are retried and described without the URL.
        let closed = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let url = format!("http://127.0.0.1:{closed}/hooks/CANARY-webhook-secret");
        let error = post(&url, &message(), &quick()).expect_err("unreachable").to_string();
        assert!(!error.contains("CANARY"), "{error}");
        assert!(error.contains("3 attempt(s)"), "{error}");
        for bad in ["http://hooks.slack.com/x", "ftp://x", "https://", "", "file:///etc/passwd"] {
            assert_eq!(post(bad, &message(), &quick()), Err(PostError::InvalidUrl), "{bad}");
        }
    }
}
