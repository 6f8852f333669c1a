//! OpenLineage over HTTP (`[openlineage] url`): events are POSTed, as the
//! OpenLineage HTTP transport does, to `{url}/{endpoint}` with `Content-Type:
//! application/json` and an optional bearer key — from a bounded queue by
//! one background task, so a slow or dead receiver never slows a run:
//! past `queue_size` waiting events, new ones are dropped and counted.
//! Each POST gets `timeout_seconds` and up to `retries` retries with
//! exponential backoff; once an event has failed every retry, the receiver
//! is taken for down and the next events get one try each until one gets
//! through (a dead receiver costs a run one timeout per event at most, not
//! the whole backoff). At the run's end [`HttpDelivery::close`] waits a
//! bounded time for the queue to drain and tells what was delivered and
//! dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Where and how events are POSTed.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `{url}/{endpoint}`.
    pub endpoint_url: String,
    /// The bearer key, read from its variable.
    pub api_key: Option<String>,
    /// One POST at most.
    pub timeout: Duration,
    /// Retries of a failed POST.
    pub retries: u32,
    /// Events waiting at most.
    pub queue_size: usize,
}

/// What a delivery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// Events the receiver accepted (2xx).
    pub delivered: u64,
    /// Events not delivered: the queue was full, every retry failed, or
    /// the run ended before they could be sent.
    pub dropped: u64,
    /// The last failure, for the message.
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    dropped: AtomicU64,
    /// Queued, not yet delivered or dropped.
    waiting: AtomicU64,
    last_error: std::sync::Mutex<Option<String>>,
}

/// The events of one run on their way to the receiver.
pub struct HttpDelivery {
    queue: mpsc::Sender<String>,
    worker: JoinHandle<()>,
    counters: Arc<Counters>,
    settings: HttpSettings,
}

/// First wait before a retry; doubled each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

impl HttpDelivery {
    /// Starts the background sender (needs a tokio runtime).
    pub fn start(settings: HttpSettings) -> HttpDelivery {
        let (queue, mut events) = mpsc::channel::<String>(settings.queue_size.max(1));
        let counters = Arc::new(Counters::default());
        let worker = {
            let counters = Arc::clone(&counters);
            let settings = settings.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(settings.timeout)
                    .connect_timeout(settings.timeout)
                    .build();
                let mut receiver_down = false;
                while let Some(body) = events.recv().await {
                    let outcome = match &client {
                        Ok(client) => {
                            let tries = if receiver_down {
                                1
                            } else {
                                settings.retries + 1
                            };
                            post_with_retries(client, &settings, &body, tries).await
                        }
                        Err(e) => Err(format!("HTTP client: {e}")),
                    };
                    match outcome {
                        Ok(()) => {
                            receiver_down = false;
                            counters.delivered.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            receiver_down = true;
                            counters.dropped.fetch_add(1, Ordering::Relaxed);
                            *counters
                                .last_error
                                .lock()
                                .unwrap_or_else(|p| p.into_inner()) = Some(e);
                        }
                    }
                    counters.waiting.fetch_sub(1, Ordering::Relaxed);
                }
            })
        };
        HttpDelivery {
            queue,
            worker,
            counters,
            settings,
        }
    }

    /// Queues one event (its JSON); never waits: a full queue drops it.
    pub fn send(&self, json: String) {
        self.counters.waiting.fetch_add(1, Ordering::Relaxed);
        if self.queue.try_send(json).is_err() {
            self.counters.waiting.fetch_sub(1, Ordering::Relaxed);
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            let mut last = self
                .counters
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.is_none() {
                *last = Some(format!(
                    "more than {} events waiting (queue_size)",
                    self.settings.queue_size
                ));
            }
        }
    }

    /// Where events go.
    pub fn endpoint_url(&self) -> &str {
        &self.settings.endpoint_url
    }

    /// Lets the queue drain for at most `wait`, then stops; what was still
    /// waiting counts as dropped.
    pub async fn close(self, wait: Duration) -> DeliveryCounts {
        let HttpDelivery {
            queue,
            mut worker,
            counters,
            ..
        } = self;
        drop(queue);
        if tokio::time::timeout(wait, &mut worker).await.is_err() {
            worker.abort();
            let _ = worker.await;
            let left = counters.waiting.swap(0, Ordering::Relaxed);
            counters.dropped.fetch_add(left, Ordering::Relaxed);
            let mut last = counters
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.is_none() {
                *last = Some(format!(
                    "{left} events still waiting when the run ended ({} s later)",
                    wait.as_secs()
                ));
            }
        }
        let last_error = counters
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        DeliveryCounts {
            delivered: counters.delivered.load(Ordering::Relaxed),
            dropped: counters.dropped.load(Ordering::Relaxed),
            last_error,
        }
    }
}

/// POSTs one event, `tries` times at most.
async fn post_with_retries(
    client: &reqwest::Client,
    settings: &HttpSettings,
    body: &str,
    tries: u32,
) -> Result<(), String> {
    let mut backoff = FIRST_BACKOFF;
    let mut last = String::new();
    for attempt in 1..=tries.max(1) {
        let mut request = client
            .post(&settings.endpoint_url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_owned());
        if let Some(key) = &settings.api_key {
            request = request.bearer_auth(key);
        }
        match request.send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            // The receiver refused the event itself: retrying sends the
            // same refused event.
            Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                return Err(format!(
                    "{} answered {status}: {}",
                    settings.endpoint_url,
                    text.chars().take(200).collect::<String>()
                ));
            }
            Ok(r) => last = format!("{} answered {}", settings.endpoint_url, r.status()),
            Err(e) => last = format!("{}: {}", settings.endpoint_url, error_chain(&e)),
        }
        if attempt < tries {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    Err(last)
}

/// An error with its causes ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn a_full_queue_drops_without_waiting_and_everything_is_counted() {
        let delivery = HttpDelivery::start(HttpSettings {
            endpoint_url: format!("http://127.0.0.1:{}/api/v1/lineage", dead_port()),
            api_key: None,
            timeout: Duration::from_secs(1),
            retries: 3,
            queue_size: 2,
        });
        let started = std::time::Instant::now();
        for i in 0..50 {
            delivery.send(format!("{{\"n\": {i}}}"));
        }
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "sending waited {:?}",
            started.elapsed()
        );
        let counts = delivery.close(Duration::from_secs(10)).await;
        assert_eq!(counts.delivered, 0);
        assert_eq!(counts.dropped, 50, "{counts:?}");
        assert!(counts.last_error.is_some());
    }
}
