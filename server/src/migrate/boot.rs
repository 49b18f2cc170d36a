//! What `switchboard serve` does about migration at start: configure the subsystem, load the
//! persisted run, and then
//! - an unfinished run is resumed (checks in flight get a fresh timeout: the agents could not
//!   ack while the server was down) or rolled back, as `--migration-on-restart` says, whatever
//!   the other flags (a restart must never strand agents between the two systems);
//! - with `--migrate-now`, a new run starts when none is unfinished.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::model::AgentStage;
use super::settings::{MigrationArgs, RestartPolicy, StartRequest};
use super::state::StateStore;
use super::tmux::foreground::is_shell;
use super::tmux::{DeliveryOptions, PanePolicy};
use super::{rollback, runner, MigrationConfig};
use crate::state::AppState;

/// Boots the migration subsystem of `state`. `local` is the address the server listens on
/// (agents are told to reach it); `enable` is `--enable-migration`. The error is a sentence
/// for the operator (storage could not be read).
pub async fn boot(
    state: &AppState,
    args: &MigrationArgs,
    enable: bool,
    workdir: PathBuf,
    local: SocketAddr,
) -> Result<(), String> {
    let config = MigrationConfig {
        enabled: enable || args.migrate_now,
        tmux_socket: args.tmux_socket.clone().filter(|s| !s.trim().is_empty()),
        workdir: std::path::absolute(&workdir).unwrap_or(workdir),
        server_url: server_url(local),
        on_restart: args.migration_on_restart,
        delivery: DeliveryOptions {
            policy: PanePolicy::allowing(&args.agent_programs),
            ..DeliveryOptions::default()
        },
    };
    let listed_shells: Vec<&String> = args
        .agent_programs
        .iter()
        .filter(|name| is_shell(name))
        .collect();
    if !listed_shells.is_empty() {
        tracing::warn!(
            ?listed_shells,
            "--agent-program names a shell: ignored, nothing is ever typed into a shell"
        );
    }
    let (store, loaded) = StateStore::load(state.engine.clone())
        .await
        .map_err(|error| format!("switchboard: cannot read the migration state: {error}"))?;
    let migration = &state.migration;
    // Set once per process: `serve` boots one state.
    let _ = migration.store.set(store);
    let _ = migration.config.set(config.clone());
    let unfinished = loaded.as_ref().is_some_and(|run| !run.phase.is_final());
    if let Some(run) = loaded {
        *migration.run.lock() = Some(run);
        migration.update(|_| ());
    }
    if unfinished {
        match config.on_restart {
            RestartPolicy::Resume => resume(state).await,
            RestartPolicy::Rollback => {
                rollback::roll_back_all(
                    state,
                    "the server restarted during the migration and --migration-on-restart is \
                     rollback",
                )
                .await;
            }
        }
    } else if args.migrate_now {
        let request = StartRequest::from(&args.run);
        runner::start(state, request)
            .await
            .map_err(|error| format!("switchboard: --migrate-now could not start: {error}"))?;
    }
    Ok(())
}

async fn resume(state: &AppState) {
    let now = state.engine.now_ms();
    state
        .migration
        .change(|run| {
            let timeout_ms = run.settings.validation_timeout_ms();
            for agent in &mut run.agents {
                if let Some(check) = agent.check.as_mut() {
                    check.deadline = now + timeout_ms;
                }
                debug_assert!(
                    agent.check.is_none()
                        || matches!(
                            agent.stage,
                            AgentStage::Validating | AgentStage::Migrated { .. }
                        )
                );
            }
            run.resumed += 1;
            let phase = run.phase.name();
            run.event(
                now,
                format!("server restarted: resuming the migration in phase {phase}"),
            );
        })
        .await;
    runner::spawn(state);
}

/// The URL agents are told to use: the listening address, with a wildcard address replaced by
/// loopback (agents run on this machine: their panes are in its tmux).
fn server_url(local: SocketAddr) -> String {
    let mut address = local;
    if address.ip().is_unspecified() {
        address.set_ip(if address.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    format!("http://{address}")
}

#[cfg(test)]
mod tests {
    use super::server_url;

    #[test]
    fn wildcard_addresses_become_loopback() {
        assert_eq!(
            server_url("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        assert_eq!(server_url("[::]:9".parse().unwrap()), "http://[::1]:9");
        assert_eq!(
            server_url("10.0.0.2:1".parse().unwrap()),
            "http://10.0.0.2:1"
        );
    }
}
