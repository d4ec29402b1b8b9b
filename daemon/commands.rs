//! Commands from the orchestrator (`croupier/v1/<studio>/<table>/cmd`), checked and executed.
//!
//! Every command is verified by [`crate::signing::CommandGuard`] (signature and key, this table,
//! issued within ±300 s, nonce never seen, body well formed) before anything happens; a refusal
//! is answered with its reason. A command id already executed gets its first reply again and
//! is not executed twice. Accepted commands go to the table engine, whose events decide the
//! reply: `ok` with the events it produced, or `error` / `refused_by_table` when the engine
//! answered with an alert (a `round.open` while a round is in progress, say). Every command —
//! accepted, repeated or refused — is recorded in the journal with the verdict.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::engine::{blackjack, Approval, Command, Role, Source};
use crate::health::Health;
use crate::signing::{
    error_reply, ok_reply, Checked, CommandGuard, CommandKind, KeyRing, VerifiedCommand,
};
use crate::table::TableHandle;

/// What checks and executes commands; shared by the uplink's connections.
#[derive(Debug, Clone)]
pub struct Commands {
    guard: Arc<Mutex<CommandGuard>>,
    /// `None`: no `[signing]` keys configured, so every command is refused.
    keys: Option<Arc<Mutex<KeyRing>>>,
    table: TableHandle,
    health: Health,
}

/// How long a command waits for the engine before the reply says it timed out.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(5);

impl Commands {
    pub fn new(
        guard: CommandGuard,
        keys: Option<KeyRing>,
        table: TableHandle,
        health: Health,
    ) -> Self {
        Self {
            guard: Arc::new(Mutex::new(guard)),
            keys: keys.map(|k| Arc::new(Mutex::new(k))),
            table,
            health,
        }
    }

    /// Checks, executes and answers one raw command message. Returns the reply.
    pub async fn handle(&self, raw: &[u8]) -> Value {
        let now = SystemTime::now();
        let checked = match &self.keys {
            None => Err(error_reply(
                "commands_disabled",
                "this table has no [signing] keys configured, so it cannot check commands",
            )),
            Some(keys) => {
                let mut ring = keys.lock().unwrap_or_else(PoisonError::into_inner);
                // Keys rotate without a restart; a bad new key file keeps the old ring.
                if let Err(err) = ring.reload_if_changed() {
                    tracing::warn!(error = %err, "new command keys refused; keeping the previous ones");
                }
                let mut guard = self.guard.lock().unwrap_or_else(PoisonError::into_inner);
                guard
                    .check(&ring, raw, now)
                    .map_err(|refusal| refusal.to_reply())
            }
        };
        let (reply, verdict) = match checked {
            Err(reply) => (reply, "refused"),
            Ok(Checked::Repeat { reply, .. }) => (reply, "repeated"),
            Ok(Checked::Fresh(cmd)) => {
                let id = cmd.command_id.clone();
                let reply = self.execute(cmd).await;
                self.guard
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remember_reply(&id, reply.clone());
                (reply, "executed")
            }
        };
        if let Some(journal) = self.table.journal() {
            let entry =
                crate::journal::Entry::command(raw, now, croupier_drivers::model::monotonic_ns())
                    .with("verdict", json!(verdict))
                    .with("reply", reply.clone());
            if let Err(err) = journal.record(entry).await {
                tracing::error!(error = %err, "cannot journal a command");
            }
        }
        tracing::info!(verdict, status = %reply["status"], reason = %reply["reason"], "command");
        reply
    }

    async fn execute(&self, cmd: VerifiedCommand) -> Value {
        let body = &cmd.body;
        let command = match cmd.kind {
            CommandKind::StateGet => {
                return ok_reply(crate::uplink::state_message(&self.table, &self.health));
            }
            CommandKind::Health => return ok_reply(json!(self.health.snapshot())),
            CommandKind::RoundOpen => Command::Open,
            CommandKind::RoundClose => Command::Close,
            CommandKind::RoundVoid => Command::Void {
                reason: body["reason"].as_str().unwrap_or_default().to_owned(),
            },
            CommandKind::RoundSettled => Command::Settled {
                round_id: body["round_id"].as_str().unwrap_or_default().to_owned(),
            },
            CommandKind::PrompterMessage => Command::Message {
                text: body["text"].as_str().unwrap_or_default().to_owned(),
                level: body["level"].as_str().unwrap_or("info").to_owned(),
                ttl_s: body["ttl_s"].as_u64().unwrap_or(60),
            },
            CommandKind::BlackjackDecision => {
                let decision =
                    serde_json::from_value::<blackjack::Decision>(body["decision"].clone());
                let box_no = body["box_no"].as_u64().and_then(|b| u8::try_from(b).ok());
                match (decision, box_no) {
                    (Ok(decision), Some(box_no)) => Command::Decision { box_no, decision },
                    _ => return error_reply("malformed", "box_no and decision are required"),
                }
            }
            CommandKind::ResultManual => {
                // An approval is for one round: refuse it if that round is not the table's.
                let current = self.table.snapshot().and_then(|s| s.round_id);
                let named = body["round_id"].as_str().unwrap_or_default();
                if current.as_deref() != Some(named) {
                    return error_reply(
                        "wrong_round",
                        &format!("the table's round is {current:?}, not {named}"),
                    );
                }
                let role = serde_json::from_value::<Role>(body["role"].clone());
                let Ok(role) = role else {
                    return error_reply("malformed", "role must be dealer or supervisor");
                };
                Command::ManualResult(Approval {
                    person: body["person"].as_str().unwrap_or_default().to_owned(),
                    role,
                    result: body["result"].clone(),
                })
            }
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self
            .table
            .commands
            .send((Source::Command, command, Some(tx)))
            .await
            .is_err()
        {
            return error_reply("table_unavailable", "the table engine is not running");
        }
        match tokio::time::timeout(ENGINE_TIMEOUT, rx).await {
            Ok(Ok(events)) => {
                let listed: Vec<Value> = events
                    .iter()
                    .map(|(seq, kind)| json!({ "seq": seq, "type": kind }))
                    .collect();
                if let Some((_, alert)) = events.iter().find(|(_, kind)| kind.starts_with("alert."))
                {
                    json!({
                        "status": "error",
                        "reason": "refused_by_table",
                        "data": { "detail": format!("the table answered {alert}"), "events": listed },
                    })
                } else {
                    ok_reply(json!({ "events": listed }))
                }
            }
            _ => error_reply("table_timeout", "the table engine did not answer in 5 s"),
        }
    }
}
