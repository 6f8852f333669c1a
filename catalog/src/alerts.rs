//! Plain values of alerting stored in and read from the catalog: incidents
//! (one open per `(kind, asset, partition)` while the trouble lasts), the
//! deliveries queued when one opens or closes, and each delivery attempt.
//! The engine decides what opens, closes and is sent; the catalog stores
//! it and answers.

use chrono::{DateTime, Utc};

use crate::RunId;

/// An incident's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IncidentId(pub i64);

impl std::fmt::Display for IncidentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A delivery's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeliveryId(pub i64);

impl std::fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What kind of trouble an incident is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IncidentKind {
    /// A unit's build failed (its final outcome, after any retries).
    RunFailed,
    /// An `error` check failed on a unit.
    CheckFailed,
    /// A unit missed its freshness SLA (`fail_after`).
    FreshnessMissed,
}

impl IncidentKind {
    /// Every kind.
    pub const ALL: [IncidentKind; 3] = [
        IncidentKind::RunFailed,
        IncidentKind::CheckFailed,
        IncidentKind::FreshnessMissed,
    ];

    /// The stored name (also the alert event that opens it).
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::RunFailed => "run_failed",
            IncidentKind::CheckFailed => "check_failed",
            IncidentKind::FreshnessMissed => "freshness_missed",
        }
    }

    /// The kind stored as `text`.
    pub fn parse(text: &str) -> Option<IncidentKind> {
        IncidentKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// An incident as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertIncident {
    /// Its id.
    pub id: IncidentId,
    /// What kind of trouble.
    pub kind: IncidentKind,
    /// The asset.
    pub asset: String,
    /// The partition key (`""` when unpartitioned).
    pub partition: String,
    /// When it was first seen.
    pub opened_at: DateTime<Utc>,
    /// When it cleared; `None` while open.
    pub closed_at: Option<DateTime<Utc>>,
    /// What was seen when it opened (the error, the failing checks, the SLA).
    pub detail: String,
    /// The run that opened it, if a run did (a tick's SLA miss has none).
    pub run_id: Option<RunId>,
    /// The run that closed it, if a run did.
    pub closed_run_id: Option<RunId>,
}

/// A delivery to queue: one alert body for one receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlertDelivery {
    /// `run_failed`, `check_failed`, `freshness_missed` or `recovered`.
    pub event: String,
    /// Where it is POSTed.
    pub url: String,
    /// `slack` or `json`.
    pub format: String,
    /// The request body, rendered when the incident changed.
    pub body: String,
}

/// A change to the incidents, decided by the engine and applied by
/// [`crate::Catalog::apply_incident_changes`] only while it still holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentChange {
    /// Open an incident — unless one of this kind is already open for the
    /// unit (then nothing, its deliveries included, is written).
    Open {
        /// What kind of trouble.
        kind: IncidentKind,
        /// The asset.
        asset: String,
        /// The partition key.
        partition: String,
        /// When it was seen.
        at: DateTime<Utc>,
        /// What was seen.
        detail: String,
        /// The run that saw it.
        run_id: Option<RunId>,
        /// Alerts to send.
        deliveries: Vec<NewAlertDelivery>,
    },
    /// Close an incident — unless it is closed already (then nothing is
    /// written).
    Close {
        /// The incident.
        incident: IncidentId,
        /// When it was seen cleared.
        at: DateTime<Utc>,
        /// The run that saw it cleared.
        run_id: Option<RunId>,
        /// Alerts to send.
        deliveries: Vec<NewAlertDelivery>,
    },
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not delivered yet; attempted again at `next_attempt_at`.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed; no more are made.
    Undelivered,
}

impl DeliveryStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Undelivered => "undelivered",
        }
    }

    /// The status stored as `text`.
    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Undelivered,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A delivery as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertDelivery {
    /// Its id.
    pub id: DeliveryId,
    /// The incident it tells of.
    pub incident: IncidentId,
    /// `run_failed`, `check_failed`, `freshness_missed` or `recovered`.
    pub event: String,
    /// Where it is POSTed.
    pub url: String,
    /// `slack` or `json`.
    pub format: String,
    /// The request body.
    pub body: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// The last failed attempt's error.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When a pending delivery is due (or its claim expires).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was last attempted.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When the receiver accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The result of one delivery attempt, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertAttempt {
    /// The delivery attempted.
    pub delivery: DeliveryId,
    /// When the attempt ended.
    pub at: DateTime<Utc>,
    /// `None` when delivered, else why not.
    pub error: Option<String>,
    /// After a failure: when to try again; `None` gives up (the delivery
    /// becomes [`DeliveryStatus::Undelivered`]).
    pub retry_at: Option<DateTime<Utc>>,
}

/// How many deliveries wait or were given up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertDeliveryCounts {
    /// Pending deliveries.
    pub pending: u64,
    /// Undelivered ones whose last attempt was at or after the instant asked.
    pub undelivered: u64,
}

/// One recorded delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertAttemptRecord {
    /// The delivery attempted.
    pub delivery: DeliveryId,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When it ended.
    pub at: DateTime<Utc>,
    /// `None` when delivered, else why not.
    pub error: Option<String>,
}
