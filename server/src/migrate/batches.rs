//! Batches: the agents of one batch are moved together. Each is told in its pane how to use
//! the queue (the exact commands, with its name and this server's URL), is sent a check
//! message, and must acknowledge it through the queue before its deadline. One that does is
//! migrated (its messages stop being typed into the pane); one that does not is rolled back
//! to tmux delivery with the reason, and with `--rollback-whole-batch` its batch goes too.
//! Other agents are not affected.

use super::model::{AgentStage, CheckResult, CheckRound};
use super::rollback::{roll_back_agent, tell};
use super::tmux::Tmux;
use super::validate::{await_check, record, send_check};
use crate::state::AppState;

/// What an agent reads in its pane: how to read, acknowledge and send messages with the
/// `switchboard` CLI (as docs/agents.md recommends; MCP clients get the `switchboard mcp`
/// line), with its name and this server's URL. One line, so that it is submitted as one
/// message.
pub fn instructions(name: &str, server_url: &str) -> String {
    // Names may hold spaces or shell syntax (`a b`, `x;y`): quoted, a command copied from
    // here runs as written instead of breaking or running something else.
    let connection = format!(
        "--server {} --agent {}",
        shell_word(server_url),
        shell_word(name)
    );
    format!(
        "[SWITCHBOARD] Your messages are moving to the switchboard queue at {server_url}. \
         Read and acknowledge them with: switchboard inbox {connection} --ack (or block until \
         the next one arrives: switchboard wait {connection} --ack --timeout 600). Send with: \
         switchboard send {connection} RECIPIENT 'TEXT'. MCP clients: switchboard mcp \
         {connection}. See docs/agents.md. Run switchboard inbox {connection} --ack now: it \
         acknowledges the check message waiting for you, which finishes the move."
    )
}

/// `word` as one POSIX shell word: as it is when it holds only characters no shell treats
/// specially, else in single quotes (a `'` inside written `'\''`).
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:@%+=,-".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Migrates batch `batch` (0-based): every member still pending or validating, together.
pub async fn run_batch(state: &AppState, batch: usize) {
    let Some(run) = state.migration.snapshot() else {
        return;
    };
    let members = run.batch_members(batch);
    let now = state.engine.now_ms();
    state
        .migration
        .change(|run| {
            run.current_batch = Some(batch);
            run.event(
                now,
                format!(
                    "batch {}/{}: {}",
                    batch + 1,
                    run.batches_total,
                    members.join(", ")
                ),
            );
        })
        .await;
    let moves = members.iter().map(|name| migrate_agent(state, name));
    let failed: Vec<bool> = futures_util::future::join_all(moves).await;
    let any_failed = failed.iter().any(|failed| *failed);
    if any_failed && run.settings.rollback_whole_batch {
        let reason = format!(
            "another agent of batch {} failed validation (--rollback-whole-batch)",
            batch + 1
        );
        for name in &members {
            roll_back_agent(state, name, &reason).await;
        }
    }
}

/// Moves one agent; true when it failed (and was rolled back).
async fn migrate_agent(state: &AppState, name: &str) -> bool {
    let Some(run) = state.migration.snapshot() else {
        return false;
    };
    let Some(agent) = run.agents.iter().find(|a| a.name == name).cloned() else {
        return false;
    };
    let timeout_ms = run.settings.validation_timeout_ms();
    let check = match (&agent.stage, agent.check.clone()) {
        (AgentStage::Validating, Some(check)) if check.round == CheckRound::Batch => check,
        (AgentStage::Pending | AgentStage::Validating, _) => {
            let tmux = Tmux::new(run.settings.tmux_socket.clone());
            let text = instructions(name, &run.settings.server_url);
            let told = tell(state, &tmux, &agent.pane_id, text, name, "instructions").await;
            let check = match send_check(
                state,
                &run.id,
                name,
                &agent.agent_id,
                CheckRound::Batch,
                timeout_ms,
            )
            .await
            {
                Ok(check) => check,
                Err(reason) => {
                    roll_back_agent(state, name, &reason).await;
                    return true;
                }
            };
            let now = state.engine.now_ms();
            let pending = check.clone();
            state
                .migration
                .change(|run| {
                    if let Some(agent) = run.agent_mut(name) {
                        agent.stage = AgentStage::Validating;
                        agent.check = Some(pending);
                    }
                    run.event(
                        now,
                        format!(
                            "{name} told how to use the queue (pane: {}); waiting up to {} s \
                             for it to acknowledge its check message",
                            told.label(),
                            timeout_ms / 1000
                        ),
                    );
                })
                .await;
            check
        }
        // Migrated or rolled back already (a resumed run).
        _ => return false,
    };
    let result = await_check(state, &check).await;
    record(state, name, &check, &result);
    match result {
        CheckResult::Acknowledged { seconds } => {
            let now = state.engine.now_ms();
            state
                .migration
                .change(|run| {
                    if let Some(agent) = run.agent_mut(name) {
                        agent.stage = AgentStage::Migrated { at: now };
                    }
                    run.event(
                        now,
                        format!("{name} acknowledged its check in {seconds:.1} s: migrated"),
                    );
                })
                .await;
            false
        }
        CheckResult::Failed { reason } => {
            roll_back_agent(state, name, &format!("validation failed: {reason}")).await;
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{instructions, shell_word};

    #[test]
    fn names_with_shell_syntax_are_quoted_as_one_word() {
        assert_eq!(shell_word("alice"), "alice");
        assert_eq!(shell_word("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("x;y"), "'x;y'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        let text = instructions("x;touch y", "http://127.0.0.1:8080");
        assert!(text.contains("--agent 'x;touch y'"), "{text}");
        assert!(!text.contains("--agent x;touch y"), "{text}");
    }

    #[test]
    fn instructions_are_one_line_naming_the_agent_and_server() {
        let text = instructions("alice", "http://127.0.0.1:8080");
        assert!(!text.contains('\n'));
        assert!(text.contains("--server http://127.0.0.1:8080 --agent alice"));
    }

    #[test]
    fn instructions_show_the_switchboard_cli_and_no_curl() {
        let text = instructions("alice", "http://127.0.0.1:8080");
        let connection = "--server http://127.0.0.1:8080 --agent alice";
        for command in [
            format!("switchboard inbox {connection} --ack"),
            format!("switchboard wait {connection} --ack --timeout 600"),
            format!("switchboard send {connection} RECIPIENT 'TEXT'"),
            format!("switchboard mcp {connection}"),
        ] {
            assert!(text.contains(&command), "no {command:?} in {text}");
        }
        assert!(!text.contains("curl"), "{text}");
    }
}
