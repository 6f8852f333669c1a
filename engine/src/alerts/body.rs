//! Alert bodies: a Slack incoming-webhook message (`{"text", "blocks"}`:
//! a readable one-line `text`, which is also what notifications show, and
//! blocks with the full detail) or the incident as a JSON object.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use cairn_assets::AlertFormat;
use cairn_catalog::{IncidentKind, RunId};

/// The longest error kept on the one-line `text`.
const TEXT_DETAIL_CHARS: usize = 300;

/// The longest detail kept in a Slack block (Slack refuses section text
/// over 3,000 characters).
const BLOCK_DETAIL_CHARS: usize = 2_800;

/// What an alert tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message<'a> {
    /// `recovered` when the incident closed, else its kind opening.
    pub(crate) recovered: bool,
    /// The incident's kind.
    pub(crate) kind: IncidentKind,
    /// The asset.
    pub(crate) asset: &'a str,
    /// The partition key (`""` when unpartitioned).
    pub(crate) partition: &'a str,
    /// When the incident opened.
    pub(crate) opened_at: DateTime<Utc>,
    /// When it closed (a `recovered`).
    pub(crate) closed_at: Option<DateTime<Utc>>,
    /// What was seen when it opened.
    pub(crate) detail: &'a str,
    /// The run that saw this event, if a run did.
    pub(crate) run_id: Option<&'a RunId>,
    /// The project (its folder's name).
    pub(crate) project: &'a str,
}

impl Message<'_> {
    /// The event name: `recovered` or the kind's.
    pub(crate) fn event(&self) -> &'static str {
        if self.recovered {
            "recovered"
        } else {
            self.kind.as_str()
        }
    }

    /// The body in `format`.
    pub(crate) fn render(&self, format: AlertFormat) -> String {
        match format {
            AlertFormat::Slack => self.slack().to_string(),
            AlertFormat::Json => self.json().to_string(),
        }
    }

    fn unit(&self) -> String {
        match self.partition {
            "" => self.asset.to_owned(),
            key => format!("{} [{key}]", self.asset),
        }
    }

    /// The one-line summary, in plain text.
    fn line(&self) -> String {
        let what = match self.kind {
            IncidentKind::RunFailed => "run failed",
            IncidentKind::CheckFailed => "check failed",
            IncidentKind::FreshnessMissed => "freshness SLA missed",
        };
        if self.recovered {
            format!(
                "recovered: {} — {what} since {}",
                self.unit(),
                time(self.opened_at)
            )
        } else {
            format!(
                "{what}: {} — {}",
                self.unit(),
                shorten(&one_line(self.detail), TEXT_DETAIL_CHARS)
            )
        }
    }

    fn emoji(&self) -> &'static str {
        match (self.recovered, self.kind) {
            (true, _) => ":large_green_circle:",
            (false, IncidentKind::FreshnessMissed) => ":large_orange_circle:",
            (false, _) => ":red_circle:",
        }
    }

    fn slack(&self) -> Value {
        let text = format!("{} {}", self.emoji(), escape(&self.line()));
        let mut context = format!("project `{}`", escape(self.project));
        if let Some(run) = self.run_id {
            context.push_str(&format!(" · run `{run}`"));
        }
        context.push_str(&format!(" · opened {}", time(self.opened_at)));
        if let Some(closed) = self.closed_at {
            context.push_str(&format!(" · closed {}", time(closed)));
        }
        let detail = escape(&shorten(self.detail, BLOCK_DETAIL_CHARS)).replace("```", "'''");
        json!({
            "text": text,
            "blocks": [
                { "type": "section", "text": { "type": "mrkdwn", "text": text } },
                { "type": "section", "text": { "type": "mrkdwn", "text": format!("```{detail}```") } },
                { "type": "context", "elements": [ { "type": "mrkdwn", "text": context } ] },
            ],
        })
    }

    fn json(&self) -> Value {
        json!({
            "event": self.event(),
            "kind": self.kind.as_str(),
            "asset": self.asset,
            "partition": self.partition,
            "opened_at": rfc3339(self.opened_at),
            "closed_at": self.closed_at.map(rfc3339),
            "detail": self.detail,
            "run_id": self.run_id.map(|r| r.0.as_str()),
            "project": self.project,
            "summary": self.line(),
        })
    }
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped (nothing else).
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `max` characters, with `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use chrono::{DateTime, Utc};
    use expect_test::expect;

    use cairn_assets::AlertFormat;
    use cairn_catalog::{IncidentKind, RunId};

    use super::Message;

    fn opened() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-01-05T06:30:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn failed<'a>(run: &'a RunId, detail: &'a str) -> Message<'a> {
        Message {
            recovered: false,
            kind: IncidentKind::RunFailed,
            asset: "orders",
            partition: "2024-01-05",
            opened_at: opened(),
            closed_at: None,
            detail,
            run_id: Some(run),
            project: "shop",
        }
    }

    #[test]
    fn slack_run_failed() {
        let run = RunId("0193a".to_owned());
        let body = failed(&run, "assets/orders.sql: column <x> not found\n  at line 3")
            .render(AlertFormat::Slack);
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        expect![[r#"
            {
              "blocks": [
                {
                  "text": {
                    "text": ":red_circle: run failed: orders [2024-01-05] — assets/orders.sql: column &lt;x&gt; not found at line 3",
                    "type": "mrkdwn"
                  },
                  "type": "section"
                },
                {
                  "text": {
                    "text": "```assets/orders.sql: column &lt;x&gt; not found\n  at line 3```",
                    "type": "mrkdwn"
                  },
                  "type": "section"
                },
                {
                  "elements": [
                    {
                      "text": "project `shop` · run `0193a` · opened 2024-01-05 06:30:00 UTC",
                      "type": "mrkdwn"
                    }
                  ],
                  "type": "context"
                }
              ],
              "text": ":red_circle: run failed: orders [2024-01-05] — assets/orders.sql: column &lt;x&gt; not found at line 3"
            }"#]]
        .assert_eq(&serde_json::to_string_pretty(&value).unwrap());
    }

    #[test]
    fn slack_recovered_and_long_details() {
        let run = RunId("0193b".to_owned());
        let long = "x".repeat(400);
        let message = Message {
            recovered: true,
            closed_at: Some(opened() + chrono::TimeDelta::try_hours(2).unwrap()),
            partition: "",
            ..failed(&run, &long)
        };
        let value: serde_json::Value =
            serde_json::from_str(&message.render(AlertFormat::Slack)).unwrap();
        expect![[
            r#":large_green_circle: recovered: orders — run failed since 2024-01-05 06:30:00 UTC"#
        ]]
        .assert_eq(value["text"].as_str().unwrap());
        expect![[r#"project `shop` · run `0193b` · opened 2024-01-05 06:30:00 UTC · closed 2024-01-05 08:30:00 UTC"#]]
            .assert_eq(value["blocks"][2]["elements"][0]["text"].as_str().unwrap());
        // The one-line text of an opening is cut; the detail block is not (at 400).
        let opening = failed(&run, &long).render(AlertFormat::Slack);
        let value: serde_json::Value = serde_json::from_str(&opening).unwrap();
        assert!(value["text"].as_str().unwrap().ends_with("x…"));
        assert!(
            value["blocks"][1]["text"]["text"]
                .as_str()
                .unwrap()
                .contains(&long)
        );
    }

    #[test]
    fn json_is_the_incident() {
        let run = RunId("0193c".to_owned());
        let message = Message {
            kind: IncidentKind::FreshnessMissed,
            run_id: None,
            ..failed(
                &run,
                "daily 2024-01-05 not built 7h after its window closed (fail_after 6h)",
            )
        };
        let value: serde_json::Value =
            serde_json::from_str(&message.render(AlertFormat::Json)).unwrap();
        expect![[r#"
            {
              "asset": "orders",
              "closed_at": null,
              "detail": "daily 2024-01-05 not built 7h after its window closed (fail_after 6h)",
              "event": "freshness_missed",
              "kind": "freshness_missed",
              "opened_at": "2024-01-05T06:30:00Z",
              "partition": "2024-01-05",
              "project": "shop",
              "run_id": null,
              "summary": "freshness SLA missed: orders [2024-01-05] — daily 2024-01-05 not built 7h after its window closed (fail_after 6h)"
            }"#]]
        .assert_eq(&serde_json::to_string_pretty(&value).unwrap());
    }
}
