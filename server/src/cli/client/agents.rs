//! `switchboard agents`: the registered agents, their presence and capabilities;
//! `switchboard agents remove NAME` takes one out of the registry.

use clap::{Args, Subcommand};

use super::identity::Connection;
use super::output::{print_json, print_text, table};
use super::{checked, Failure};
use crate::api::wire::{AgentInfo, AgentStatus};

/// Flags of `switchboard agents`.
#[derive(Debug, Clone, Args)]
pub struct AgentsArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Print JSON for programs (the array of `GET /api/v1/agents`).
    #[arg(long)]
    pub json: bool,
    /// Without one, list the agents.
    #[command(subcommand)]
    pub action: Option<AgentsAction>,
}

/// What `switchboard agents` does besides listing.
#[derive(Debug, Clone, Subcommand)]
pub enum AgentsAction {
    /// Remove an agent from the registry (its token stops working; messages already in its
    /// inbox stay in storage). Needs the agent's own token or the admin token in token mode.
    Remove(RemoveArgs),
}

/// Flags of `switchboard agents remove`.
#[derive(Debug, Clone, Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// The agent's name or id.
    #[arg(value_name = "NAME")]
    pub name: String,
}

/// Runs `switchboard agents`.
pub async fn run(args: AgentsArgs) -> Result<(), Failure> {
    if let Some(AgentsAction::Remove(remove)) = args.action {
        return run_remove(remove).await;
    }
    let client = args.connection.client()?;
    let mut agents = checked(&client, client.agents()).await?;
    agents.sort_by(|a, b| a.name.cmp(&b.name));
    if args.json {
        print_json(&agents)
    } else if agents.is_empty() {
        print_text("no agents registered\n")
    } else {
        print_text(&agents_table(&agents))
    }
}

/// Runs `switchboard agents remove NAME`.
async fn run_remove(args: RemoveArgs) -> Result<(), Failure> {
    let client = args.connection.client()?;
    checked(&client, client.remove_agent(&args.name)).await?;
    print_text(&format!("removed agent {}\n", args.name))
}

fn status_word(status: AgentStatus) -> &'static str {
    match status {
        AgentStatus::Online => "online",
        AgentStatus::Offline => "offline",
        AgentStatus::Busy => "busy",
        AgentStatus::Idle => "idle",
        AgentStatus::Error => "error",
    }
}

fn agents_table(agents: &[AgentInfo]) -> String {
    let rows: Vec<Vec<String>> = agents
        .iter()
        .map(|agent| {
            vec![
                agent.name.clone(),
                status_word(agent.status).to_string(),
                if agent.connected { "websocket" } else { "-" }.to_string(),
                agent.capabilities.join(","),
                agent.last_seen.clone(),
            ]
        })
        .collect();
    table(
        &["NAME", "STATUS", "SOCKET", "CAPABILITIES", "LAST SEEN"],
        &rows,
    )
}
