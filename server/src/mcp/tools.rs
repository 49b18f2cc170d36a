//! The MCP tools. Each calls the running server through the CLI's HTTP client, acting as the
//! agent named at start-up, and answers with JSON text; failures are tool errors whose text
//! says what to do (the model reads it).

use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{Implementation, ServerCapabilities, ServerInfo};
use rmcp::{tool, tool_handler, tool_router, ServerHandler};
use serde::Serialize;
use serde_json::json;

use super::params::{
    wait_seconds, AckParams, AskParams, CheckInboxParams, ReplyParams, SendMessageParams,
    StatusParams, WaitParams, ASK_SECONDS_DEFAULT, INBOX_LIMIT_DEFAULT, INBOX_LIMIT_MAX,
    WAIT_SECONDS_DEFAULT,
};
use crate::api::receipts::ReplyRequest;
use crate::cli::client::api::{Client, ClientError, Outgoing};
use crate::cli::client::{explain, Failure, ReplyVia};

/// The switchboard tools, acting as one agent.
#[derive(Debug, Clone)]
pub struct SwitchboardTools {
    client: Client,
    agent: String,
    tool_router: ToolRouter<Self>,
}

type ToolResult = Result<String, String>;

fn pretty(value: &impl Serialize) -> String {
    serde_json::to_string_pretty(value).expect("wire values always serialize")
}

impl SwitchboardTools {
    /// Tools acting as `agent` against the server `client` talks to.
    pub fn new(client: Client, agent: String) -> Self {
        Self {
            client,
            agent,
            tool_router: Self::tool_router(),
        }
    }

    /// A client error as the model should read it ("did you mean" for unknown agents).
    async fn fail(&self, error: ClientError) -> String {
        explain(&self.client, error).await.message
    }

    async fn ack_ids(&self, ids: Vec<String>) -> Result<(), String> {
        if ids.is_empty() {
            return Ok(());
        }
        match self.client.ack(&self.agent, &ids).await {
            Ok(_) => Ok(()),
            Err(error) => Err(self.fail(error).await),
        }
    }
}

#[tool_router]
impl SwitchboardTools {
    #[tool(
        description = "Send a message to another agent. It is stored in the recipient's inbox \
                       until the recipient acknowledges it (delivery is reliable even if the \
                       recipient is busy or offline). Returns the message id; follow delivery \
                       with message_status. To get an answer back, use ask instead."
    )]
    async fn send_message(&self, Parameters(params): Parameters<SendMessageParams>) -> ToolResult {
        let mut message = Outgoing::new(&params.to, &params.text);
        message.priority = params.priority.unwrap_or_default().into();
        if let Some(thread) = params.thread_id {
            message.metadata.insert("thread_id".into(), json!(thread));
        }
        message.reply_to = params.reply_to;
        if let Some(key) = params.idempotency_key {
            message.idempotency_key = key;
        }
        match self.client.send(&self.agent, &message).await {
            Ok(sent) => Ok(pretty(&sent)),
            Err(error) => Err(self.fail(error).await),
        }
    }

    #[tool(
        description = "Read the messages other agents sent you, highest priority first. By \
                       default they are acknowledged as they are returned; pass ack=false to \
                       acknowledge each with ack_message once handled (not_acknowledged_earlier \
                       lists messages read so and not acked yet: they come back after their \
                       lease). A message whose metadata has expects_reply=true waits for your \
                       answer: use reply."
    )]
    async fn check_inbox(&self, Parameters(params): Parameters<CheckInboxParams>) -> ToolResult {
        let limit = params
            .limit
            .unwrap_or(INBOX_LIMIT_DEFAULT)
            .clamp(1, INBOX_LIMIT_MAX);
        let messages = match self.client.lease(&self.agent, limit, 0).await {
            Ok(messages) => messages,
            Err(error) => return Err(self.fail(error).await),
        };
        if params.ack.unwrap_or(true) {
            self.ack_ids(messages.iter().map(|m| m.id.clone()).collect())
                .await?;
        }
        let mut answer = json!({ "agent": self.agent, "messages": messages });
        // Messages read earlier with ack=false and not acked yet: they come back after their
        // lease, so say so (a reminder only: left out when the server cannot tell).
        if let Ok(held) = self.client.leased(&self.agent).await {
            let earlier: Vec<String> = held
                .leased
                .into_iter()
                .map(|leased| leased.id)
                .filter(|id| !messages.iter().any(|message| &message.id == id))
                .collect();
            if !earlier.is_empty() {
                answer["not_acknowledged_earlier"] = json!(earlier);
            }
        }
        Ok(pretty(&answer))
    }

    #[tool(
        description = "Acknowledge messages you received with ack=false and have handled, so \
                       they are not delivered again."
    )]
    async fn ack_message(&self, Parameters(params): Parameters<AckParams>) -> ToolResult {
        match self.client.ack(&self.agent, &params.message_ids).await {
            Ok(answer) => Ok(pretty(&answer)),
            Err(error) => Err(self.fail(error).await),
        }
    }

    #[tool(
        description = "Wait until a message arrives in your inbox and return it (acknowledged \
                       unless ack=false). Returns {\"message\": null} when none came within \
                       timeout_seconds. Use it when you have nothing to do until another agent \
                       writes."
    )]
    async fn wait_for_message(&self, Parameters(params): Parameters<WaitParams>) -> ToolResult {
        let timeout =
            Duration::from_secs(wait_seconds(params.timeout_seconds, WAIT_SECONDS_DEFAULT));
        let next = crate::cli::client::next_message(&self.client, &self.agent, Some(timeout)).await;
        let message = next.map_err(|failure: Failure| failure.message)?;
        if let Some(message) = &message {
            if params.ack.unwrap_or(true) {
                self.ack_ids(vec![message.id.clone()]).await?;
            }
        }
        Ok(pretty(&json!({ "message": message })))
    }

    #[tool(
        description = "Ask another agent a question and wait for its answer (request/reply \
                       correlated by message id). Returns the reply, or reply=null when none \
                       came within timeout_seconds; a later answer lands in your inbox."
    )]
    async fn ask(&self, Parameters(params): Parameters<AskParams>) -> ToolResult {
        let mut question = Outgoing::new(&params.to, &params.text);
        question.priority = params.priority.unwrap_or_default().into();
        let timeout =
            Duration::from_secs(wait_seconds(params.timeout_seconds, ASK_SECONDS_DEFAULT));
        match crate::cli::client::ask_and_wait(&self.client, &self.agent, question, timeout).await {
            Ok(asked) => Ok(pretty(&asked)),
            Err(error) => Err(self.fail(error).await),
        }
    }

    #[tool(
        description = "Answer a message: the reply goes to its sender, marked as the answer to \
                       message_id (an agent waiting in ask receives it at once). Answering \
                       acknowledges message_id unless keep_question=true."
    )]
    async fn reply(&self, Parameters(params): Parameters<ReplyParams>) -> ToolResult {
        let answer = ReplyRequest {
            content: params.text,
            priority: Default::default(),
            metadata: Default::default(),
            keep_question: params.keep_question.unwrap_or(false),
            dedup_key: Some(crate::cli::client::api::idempotency_key()),
        };
        let (client, agent, id) = (&self.client, &self.agent, &params.message_id);
        crate::cli::client::send_reply_via(client, agent, id, &answer, ReplyVia::Mcp)
            .await
            .map(|sent| pretty(&sent))
            .map_err(|failure| failure.message)
    }

    #[tool(
        description = "List the agents you can message: name, status (online/offline), \
                       capabilities (usable as to=\"capability:NAME\"), last seen."
    )]
    async fn list_agents(&self) -> ToolResult {
        match self.client.agents().await {
            Ok(agents) => {
                let summary: Vec<_> = agents
                    .iter()
                    .map(|agent| {
                        json!({
                            "name": agent.name,
                            "status": agent.status,
                            "capabilities": agent.capabilities,
                            "last_seen": agent.last_seen,
                            "you": agent.name == self.agent,
                        })
                    })
                    .collect();
                Ok(pretty(&summary))
            }
            Err(error) => Err(self.fail(error).await),
        }
    }

    #[tool(
        description = "Delivery receipt of a message you sent: its state (queued, delivered, \
                       acked, dead_lettered, expired) and each stage with its time, to whom it \
                       was delivered, and replies."
    )]
    async fn message_status(&self, Parameters(params): Parameters<StatusParams>) -> ToolResult {
        match self.client.status(&params.message_id).await {
            Ok(receipt) => Ok(pretty(&receipt)),
            Err(error) => Err(self.fail(error).await),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for SwitchboardTools {
    fn get_info(&self) -> ServerInfo {
        ServerInfo::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "switchboard",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(format!(
                "switchboard is the message bus between the coding agents of this project. You \
                 are agent `{}`. Other agents write to you: read with check_inbox (or \
                 wait_for_message when idle), answer with reply. Write with send_message; ask \
                 when you need an answer before going on. list_agents shows who is there.",
                self.agent
            ))
    }
}
