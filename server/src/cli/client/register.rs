//! `switchboard register`: registers the caller's agent (or updates its capabilities). With a
//! server in `--auth token` mode, a new name is answered with the agent's token, printed here
//! once: the server keeps only its hash.

use clap::Args;

use super::identity::Connection;
use super::output::{print_json, print_text};
use super::{checked, Failure};

/// Flags of `switchboard register`.
#[derive(Debug, Clone, Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// What the agent can do (repeat, or separate with commas), e.g. `--capability rust`. They
    /// replace the capabilities it had: name them all.
    #[arg(long = "capability", value_name = "NAME", value_delimiter = ',')]
    pub capabilities: Vec<String>,
    /// Print the server's answer as JSON (with the token, when one was issued).
    #[arg(long)]
    pub json: bool,
}

/// Runs `switchboard register`.
pub async fn run(args: RegisterArgs) -> Result<(), Failure> {
    let name = args.connection.require_identity()?;
    let client = args.connection.client()?;
    let answer = checked(&client, client.register(&name, &args.capabilities)).await?;
    if args.json {
        return print_json(&answer);
    }
    print_text(&format!(
        "registered {} (id {})\n",
        answer.name, answer.agent_id
    ))?;
    if let Some(token) = &answer.token {
        print_text(&format!("token: {token}\n"))?;
        print_text(&format!(
            "Keep this token: it is shown only now (the server keeps just its hash). Give it to \
             this agent's tools as SWITCHBOARD_TOKEN={token} (or --token); losing it means \
             asking the admin to re-register {name} for a new one.\n",
            name = answer.name
        ))?;
    }
    Ok(())
}
