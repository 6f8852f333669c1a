//! The incident state machine, as a pure function: the open incidents and
//! what was just observed in, the incidents to open and close out.
//!
//! | open incident for the key? | observed | step                        |
//! |----------------------------|----------|-----------------------------|
//! | no                         | failing  | open (send its kind's alert)|
//! | yes                        | failing  | nothing: seen again         |
//! | yes                        | passing  | close (send `recovered`)    |
//! | no                         | passing  | nothing                     |
//!
//! Observations of one key in one batch collapse to the last one (a run
//! reports each unit once; a batch built from several sources says last
//! what it saw last).

use std::collections::HashMap;

use cairn_catalog::{AlertIncident, IncidentKind};

/// What an observation says of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    /// The trouble is there; what it looks like (error, failing checks, SLA).
    Failing {
        /// Kept as the incident's detail when it opens.
        detail: String,
    },
    /// The trouble is not (or no longer) there.
    Passing,
}

/// One unit seen failing or passing in one respect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Observation {
    /// In which respect.
    pub(crate) kind: IncidentKind,
    /// The asset.
    pub(crate) asset: String,
    /// The partition key (`""` when unpartitioned).
    pub(crate) partition: String,
    /// What was seen.
    pub(crate) seen: Seen,
}

impl Observation {
    /// `asset [partition]` seen failing in respect `kind`.
    pub(crate) fn failing(
        kind: IncidentKind,
        asset: &str,
        partition: &str,
        detail: String,
    ) -> Self {
        Observation {
            kind,
            asset: asset.to_owned(),
            partition: partition.to_owned(),
            seen: Seen::Failing { detail },
        }
    }

    /// `asset [partition]` seen passing in respect `kind`.
    pub(crate) fn passing(kind: IncidentKind, asset: &str, partition: &str) -> Self {
        Observation {
            kind,
            asset: asset.to_owned(),
            partition: partition.to_owned(),
            seen: Seen::Passing,
        }
    }
}

/// What the observations change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step<'a> {
    /// A new incident: no incident of this kind was open for the unit.
    Open {
        /// The failing observation.
        observation: &'a Observation,
        /// What it looked like.
        detail: &'a str,
    },
    /// An open incident cleared.
    Close {
        /// The incident.
        incident: &'a AlertIncident,
    },
}

/// The steps `observations` take from the `open` incidents, in the order
/// of the observations.
pub(crate) fn decide<'a>(
    open: &'a [AlertIncident],
    observations: &'a [Observation],
) -> Vec<Step<'a>> {
    let open_by_key: HashMap<(IncidentKind, &str, &str), &AlertIncident> = open
        .iter()
        .filter(|i| i.closed_at.is_none())
        .map(|i| ((i.kind, i.asset.as_str(), i.partition.as_str()), i))
        .collect();
    let key = |o: &'a Observation| (o.kind, o.asset.as_str(), o.partition.as_str());
    let last: HashMap<(IncidentKind, &str, &str), usize> = observations
        .iter()
        .enumerate()
        .map(|(i, o)| (key(o), i))
        .collect();
    observations
        .iter()
        .enumerate()
        .filter(|(i, o)| last.get(&key(o)) == Some(i))
        .filter_map(|(_, o)| match (&o.seen, open_by_key.get(&key(o))) {
            (Seen::Failing { detail }, None) => Some(Step::Open {
                observation: o,
                detail,
            }),
            (Seen::Passing, Some(incident)) => Some(Step::Close { incident }),
            (Seen::Failing { .. }, Some(_)) | (Seen::Passing, None) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use cairn_catalog::{AlertIncident, IncidentId, IncidentKind};

    use super::{Observation, Step, decide};

    const RUN: IncidentKind = IncidentKind::RunFailed;
    const CHECK: IncidentKind = IncidentKind::CheckFailed;

    fn incident(id: i64, kind: IncidentKind, asset: &str) -> AlertIncident {
        AlertIncident {
            id: IncidentId(id),
            kind,
            asset: asset.to_owned(),
            partition: String::new(),
            opened_at: DateTime::<Utc>::UNIX_EPOCH,
            closed_at: None,
            detail: "boom".to_owned(),
            run_id: None,
            closed_run_id: None,
        }
    }

    fn failing(kind: IncidentKind, asset: &str) -> Observation {
        Observation::failing(kind, asset, "", format!("{asset} broke"))
    }

    fn passing(kind: IncidentKind, asset: &str) -> Observation {
        Observation::passing(kind, asset, "")
    }

    /// The steps, as text: `open KIND ASSET: DETAIL` / `close #ID`.
    fn check(open: &[AlertIncident], observations: &[Observation], expected: &[&str]) {
        let steps: Vec<String> = decide(open, observations)
            .iter()
            .map(|s| match s {
                Step::Open {
                    observation,
                    detail,
                } => format!(
                    "open {} {}: {detail}",
                    observation.kind.as_str(),
                    observation.asset
                ),
                Step::Close { incident } => format!("close #{}", incident.id),
            })
            .collect();
        assert_eq!(steps, expected);
    }

    #[test]
    fn a_first_failure_opens_an_incident() {
        check(
            &[],
            &[failing(RUN, "orders")],
            &["open run_failed orders: orders broke"],
        );
    }

    #[test]
    fn a_failure_seen_again_while_open_sends_nothing() {
        // The next run failing, the next tick, a retry's final outcome.
        let open = [incident(1, RUN, "orders")];
        check(&open, &[failing(RUN, "orders")], &[]);
        check(
            &open,
            &[failing(RUN, "orders"), failing(RUN, "orders")],
            &[],
        );
    }

    #[test]
    fn passing_closes_the_open_incident_once() {
        let open = [incident(1, RUN, "orders")];
        check(&open, &[passing(RUN, "orders")], &["close #1"]);
        // Nothing open: passing is the normal case, nothing to say.
        check(&[], &[passing(RUN, "orders")], &[]);
        // Already closed (read as history): nothing either.
        let closed = AlertIncident {
            closed_at: Some(DateTime::<Utc>::UNIX_EPOCH),
            ..incident(1, RUN, "orders")
        };
        check(&[closed], &[passing(RUN, "orders")], &[]);
    }

    #[test]
    fn kinds_and_units_are_separate_incidents() {
        let open = [incident(1, RUN, "orders"), incident(2, CHECK, "customers")];
        check(
            &open,
            &[
                // Same unit, other kind: its own incident.
                failing(CHECK, "orders"),
                // Other unit, same kind.
                failing(RUN, "customers"),
                passing(CHECK, "customers"),
                passing(RUN, "orders"),
            ],
            &[
                "open check_failed orders: orders broke",
                "open run_failed customers: customers broke",
                "close #2",
                "close #1",
            ],
        );
        let partitioned = Observation::failing(RUN, "orders", "2024-01-05", "x".to_owned());
        check(&open, &[partitioned], &["open run_failed orders: x"]);
    }

    #[test]
    fn the_last_observation_of_a_key_wins() {
        let open = [incident(1, RUN, "orders")];
        check(
            &open,
            &[passing(RUN, "orders"), failing(RUN, "orders")],
            &[],
        );
        check(
            &open,
            &[failing(RUN, "orders"), passing(RUN, "orders")],
            &["close #1"],
        );
        check(&[], &[failing(RUN, "orders"), passing(RUN, "orders")], &[]);
    }
}
