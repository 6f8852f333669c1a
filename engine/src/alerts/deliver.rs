//! Delivering queued alerts: claim what is due, POST each body, record
//! every attempt; a failure is tried again after an exponential backoff
//! until [`DeliveryPolicy::max_attempts`], then the delivery is
//! `undelivered` with its last error.
//!
//! The HTTP client is `reqwest` 0.12 — the same reqwest and TLS (rustls,
//! the system's root certificates) object_store 0.13 uses for S3, so no
//! second copy is built; `http://` and `https://` webhooks alike.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use futures::future::join_all;

use cairn_catalog::{AlertAttempt, AlertDelivery, Catalog};

use crate::error::EngineError;

/// How deliveries are attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Attempts before a delivery is given up as undelivered.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; it doubles after each
    /// further one.
    pub first_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// How long one POST may take.
    pub timeout: Duration,
}

impl Default for DeliveryPolicy {
    /// 5 attempts, 1 s apart doubling (1, 2, 4, 8 s: given up ~15 s after
    /// the first), 5 s per request.
    fn default() -> Self {
        DeliveryPolicy {
            max_attempts: 5,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            timeout: Duration::from_secs(5),
        }
    }
}

impl DeliveryPolicy {
    /// The wait after the `failed`-th failed attempt (1 for the first).
    pub fn backoff(&self, failed: u32) -> Duration {
        let doublings = failed.saturating_sub(1).min(30);
        self.first_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

/// What a delivery pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Deliveries the receiver accepted.
    pub delivered: u32,
    /// Attempts that failed (each is recorded).
    pub failed_attempts: u32,
    /// Deliveries given up after their last attempt.
    pub undelivered: u32,
    /// Deliveries still pending when the pass ended (for a later pass).
    pub pending: u64,
    /// The last failure's error.
    pub last_error: Option<String>,
}

/// The most deliveries claimed at once.
const CLAIM_BATCH: usize = 64;

/// How long a claim outlives a request's timeout (then another process
/// may take the delivery over).
const LEASE_MARGIN: Duration = Duration::from_secs(10);

/// Attempts the deliveries due now, and those falling due within `budget`
/// (sleeping until they do), then returns; what is still pending stays
/// for a later pass. A request never runs past the budget by more than
/// [`DeliveryPolicy::timeout`].
pub(crate) async fn deliver(
    catalog: &dyn Catalog,
    policy: &DeliveryPolicy,
    budget: Duration,
) -> Result<DeliveryReport, EngineError> {
    let deadline = Instant::now() + budget;
    let mut report = DeliveryReport::default();
    let mut client: Option<reqwest::Client> = None;
    loop {
        let now = Utc::now();
        let lease = now + delta(policy.timeout + LEASE_MARGIN);
        let due = catalog.claim_alert_deliveries(now, lease, CLAIM_BATCH)?;
        if !due.is_empty() {
            let client = match &client {
                Some(c) => c,
                None => client.insert(
                    reqwest::Client::builder()
                        .timeout(policy.timeout)
                        .build()
                        .map_err(|e| {
                            EngineError::Internal(format!("alert HTTP client: {}", chain(&e)))
                        })?,
                ),
            };
            let results = join_all(due.iter().map(|d| post(client, d))).await;
            for (d, result) in due.iter().zip(results) {
                let at = Utc::now();
                let attempt = match result {
                    Ok(()) => {
                        report.delivered += 1;
                        AlertAttempt {
                            delivery: d.id,
                            at,
                            error: None,
                            retry_at: None,
                        }
                    }
                    Err(error) => {
                        report.failed_attempts += 1;
                        let made = d.attempts + 1;
                        let retry_at =
                            (made < policy.max_attempts).then(|| at + delta(policy.backoff(made)));
                        if retry_at.is_none() {
                            report.undelivered += 1;
                        }
                        tracing::warn!(
                            url = %d.url,
                            event = %d.event,
                            attempt = made,
                            "alert not delivered: {error}"
                        );
                        report.last_error = Some(error.clone());
                        AlertAttempt {
                            delivery: d.id,
                            at,
                            error: Some(error),
                            retry_at,
                        }
                    }
                };
                catalog.record_alert_attempt(&attempt)?;
            }
            continue;
        }
        let Some(next) = catalog.next_alert_delivery_at()? else {
            break;
        };
        // Never spin: another process may hold what is due.
        let wait = until(next).max(Duration::from_millis(20));
        if Instant::now() + wait > deadline {
            break;
        }
        tokio::time::sleep(wait).await;
    }
    report.pending = catalog.alert_delivery_counts(Utc::now())?.pending;
    Ok(report)
}

/// POSTs one delivery: `Ok` on a 2xx answer, else what went wrong.
async fn post(client: &reqwest::Client, d: &AlertDelivery) -> Result<(), String> {
    let response = client
        .post(&d.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(d.body.clone())
        .send()
        .await
        .map_err(|e| chain(&e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response.text().await.unwrap_or_default();
    let text: String = text.chars().take(200).collect();
    Err(match text.trim() {
        "" => format!("HTTP {status}"),
        t => format!("HTTP {status}: {t}"),
    })
}

/// An error and its causes, `: `-joined ("error sending request for url
/// (...): client error (Connect): tcp connect error: Connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

fn until(at: DateTime<Utc>) -> Duration {
    (at - Utc::now()).to_std().unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use cairn_catalog::{
        Catalog, DeliveryStatus, IncidentChange, IncidentKind, NewAlertDelivery, SqlCatalog,
    };

    use super::{DeliveryPolicy, deliver};

    fn quick(max_attempts: u32) -> DeliveryPolicy {
        DeliveryPolicy {
            max_attempts,
            first_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
            timeout: Duration::from_secs(2),
        }
    }

    /// A receiver on 127.0.0.1 answering each request with the next of
    /// `statuses`; the bodies it received.
    fn receiver(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&bodies);
        std::thread::spawn(move || {
            for status in statuses {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                let body = loop {
                    let n = stream.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        break String::new();
                    }
                    data.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&data).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            break body.to_owned();
                        }
                    }
                };
                seen.lock().unwrap().push(body);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno"
                );
            }
        });
        (url, bodies)
    }

    fn queue_one(c: &SqlCatalog, url: &str) {
        c.apply_incident_changes(&[IncidentChange::Open {
            kind: IncidentKind::RunFailed,
            asset: "orders".to_owned(),
            partition: String::new(),
            at: chrono::Utc::now(),
            detail: "boom".to_owned(),
            run_id: None,
            deliveries: vec![NewAlertDelivery {
                event: "run_failed".to_owned(),
                url: url.to_owned(),
                format: "json".to_owned(),
                body: r#"{"event":"run_failed"}"#.to_owned(),
            }],
        }])
        .unwrap();
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let p = DeliveryPolicy::default();
        let waits: Vec<u64> = (1..=4).map(|n| p.backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8]);
        assert_eq!(p.backoff(40), p.max_backoff);
    }

    #[test]
    fn a_refused_attempt_is_retried_until_delivered() {
        let c = SqlCatalog::open_in_memory().unwrap();
        let (url, bodies) = receiver(vec![500, 200]);
        queue_one(&c, &url);
        let report = runtime()
            .block_on(deliver(&c, &quick(5), Duration::from_secs(5)))
            .unwrap();
        assert_eq!((report.delivered, report.failed_attempts), (1, 1));
        assert_eq!(report.pending, 0);
        assert_eq!(
            report.last_error.as_deref(),
            Some("HTTP 500 Internal Server Error: no")
        );
        assert_eq!(
            *bodies.lock().unwrap(),
            vec![r#"{"event":"run_failed"}"#; 2]
        );
        let (_, deliveries) = c.alert_log(1).unwrap().remove(0);
        assert_eq!(deliveries[0].status, DeliveryStatus::Delivered);
        assert_eq!(deliveries[0].attempts, 2);
    }

    /// A loopback port nobody listens on any more.
    fn nobody_listening() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn an_absent_receiver_leaves_the_alert_undelivered() {
        let c = SqlCatalog::open_in_memory().unwrap();
        let port = nobody_listening();
        queue_one(&c, &format!("http://127.0.0.1:{port}/hook"));
        let report = runtime()
            .block_on(deliver(&c, &quick(3), Duration::from_secs(5)))
            .unwrap();
        assert_eq!((report.delivered, report.undelivered), (0, 1));
        assert_eq!(report.failed_attempts, 3);
        let (_, deliveries) = c.alert_log(1).unwrap().remove(0);
        let d = &deliveries[0];
        assert_eq!((d.status, d.attempts), (DeliveryStatus::Undelivered, 3));
        let error = d.last_error.as_deref().unwrap();
        assert!(error.contains("onnect"), "{error}");
        assert_eq!(c.alert_attempts(d.id).unwrap().len(), 3);
    }

    #[test]
    fn a_short_budget_leaves_retries_pending() {
        let c = SqlCatalog::open_in_memory().unwrap();
        let port = nobody_listening();
        queue_one(&c, &format!("http://127.0.0.1:{port}/hook"));
        let slow = DeliveryPolicy {
            first_backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(60),
            ..quick(5)
        };
        let report = runtime()
            .block_on(deliver(&c, &slow, Duration::from_millis(100)))
            .unwrap();
        assert_eq!((report.failed_attempts, report.pending), (1, 1));
        let (_, deliveries) = c.alert_log(1).unwrap().remove(0);
        assert_eq!(deliveries[0].status, DeliveryStatus::Pending);
    }
}
