//! "Did you mean": when the server does not know an agent, name the registered agents whose
//! names are close to what was typed.

use super::api::Client;

use crate::similar::{quoted, similar};

/// The sentence to add to "agent not found": similar names, or the known names when there
/// are few, or how to list them. Asks the server; says nothing when it cannot.
pub async fn hint(client: &Client, typed: &str) -> String {
    let Ok(agents) = client.agents().await else {
        return String::new();
    };
    let names: Vec<String> = agents.into_iter().map(|agent| agent.name).collect();
    let close = similar(typed, &names);
    if !close.is_empty() {
        return format!(" Did you mean {}?", quoted(&close));
    }
    let register = format!("register it with `switchboard register --agent {typed}`");
    if names.is_empty() {
        return format!(
            " No agents are registered yet: {register} (or let discovery find its worktree)."
        );
    }
    if names.len() <= 8 {
        return format!(" Known agents: {}. To add it, {register}.", quoted(&names));
    }
    format!(" List the agents with `switchboard agents`; to add it, {register}.")
}
