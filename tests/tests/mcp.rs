//! Black-box test of `switchboard mcp`: the real binary driven over stdio by a scripted MCP
//! client (JSON-RPC 2.0, one message per line, as Claude Code speaks it): initialize, list the
//! tools with their schemas, and call each tool against a running server.

mod cli_support;

use std::process::Stdio;
use std::time::Duration;

use cli_support::fake_server::StandbyServer;
use cli_support::{wait, Bus};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// Longest wait for one answer of the MCP server.
const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// A scripted MCP client over the child's stdio.
struct McpClient {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

impl McpClient {
    async fn start(bus: &Bus, agent: &str) -> Self {
        Self::start_command(bus.command(&["mcp", "--agent", agent]), agent).await
    }

    async fn start_command(mut command: tokio::process::Command, agent: &str) -> Self {
        command.stdin(Stdio::piped());
        let mut child = command.spawn().expect("start switchboard mcp");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut client = Self {
            child,
            stdin,
            stdout,
            next_id: 1,
        };
        let init = client
            .request(
                "initialize",
                json!({
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": { "name": "switchboard-test", "version": "0" }
                }),
            )
            .await;
        assert_eq!(
            init["result"]["serverInfo"]["name"], "switchboard",
            "{init}"
        );
        assert!(
            init["result"]["capabilities"]["tools"].is_object(),
            "{init}"
        );
        let instructions = init["result"]["instructions"].as_str().unwrap();
        assert!(instructions.contains(&format!("You are agent `{agent}`")));
        client.notify("notifications/initialized", json!({})).await;
        client
    }

    async fn write(&mut self, message: Value) {
        let line = format!("{message}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn notify(&mut self, method: &str, params: Value) {
        self.write(json!({ "jsonrpc": "2.0", "method": method, "params": params }))
            .await;
    }

    /// Sends a request and returns its response (skipping notifications).
    async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.write(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
            .await;
        loop {
            let line = tokio::time::timeout(ANSWER_WAIT, self.stdout.next_line())
                .await
                .expect("an answer in time")
                .expect("read stdout")
                .expect("the MCP server is running");
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|error| panic!("stdout carries only JSON-RPC ({error}): {line}"));
            if message["id"] == id {
                return message;
            }
        }
    }

    /// Calls a tool; returns (is_error, the text it answered).
    async fn call(&mut self, tool: &str, arguments: Value) -> (bool, String) {
        let answer = self
            .request(
                "tools/call",
                json!({ "name": tool, "arguments": arguments }),
            )
            .await;
        let result = &answer["result"];
        assert!(result.is_object(), "{tool}: {answer}");
        let text = result["content"][0]["text"]
            .as_str()
            .unwrap_or("")
            .to_string();
        (result["isError"] == true, text)
    }

    /// Calls a tool that must succeed; returns its JSON answer.
    async fn call_ok(&mut self, tool: &str, arguments: Value) -> Value {
        let (is_error, text) = self.call(tool, arguments).await;
        assert!(!is_error, "{tool} failed: {text}");
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{tool} answers JSON: {text}"))
    }

    async fn stop(mut self) {
        drop(self.stdin);
        let status = tokio::time::timeout(ANSWER_WAIT, self.child.wait())
            .await
            .expect("the MCP server exits when stdin closes")
            .unwrap();
        assert!(status.success(), "{status}");
    }
}

/// The eight tools are listed with descriptions and input schemas naming their required
/// arguments.
#[tokio::test]
async fn tools_are_listed_with_schemas() {
    let bus = Bus::start(&["alice"]).await;
    let mut client = McpClient::start(&bus, "alice").await;
    let listed = client.request("tools/list", json!({})).await;
    let tools = listed["result"]["tools"].as_array().expect("a tool list");
    let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "ack_message",
            "ask",
            "check_inbox",
            "list_agents",
            "message_status",
            "reply",
            "send_message",
            "wait_for_message"
        ]
    );
    let tool = |name: &str| tools.iter().find(|t| t["name"] == name).unwrap().clone();
    let send = tool("send_message");
    assert!(send["description"].as_str().unwrap().len() > 40);
    assert_eq!(send["inputSchema"]["type"], "object");
    assert_eq!(send["inputSchema"]["required"], json!(["to", "text"]));
    assert!(send["inputSchema"]["properties"]["to"]["description"]
        .as_str()
        .unwrap()
        .contains("capability:NAME"));
    assert_eq!(
        tool("reply")["inputSchema"]["required"],
        json!(["message_id", "text"])
    );
    assert_eq!(
        tool("ack_message")["inputSchema"]["required"],
        json!(["message_ids"])
    );
    client.stop().await;
}

/// Each tool, called as a model would: send, list, status, inbox (acking and not), ack,
/// wait (empty and with a message), reply, ask — and an unknown recipient is a tool error
/// with a suggestion.
#[tokio::test]
async fn every_tool_works_against_the_server() {
    let bus = Bus::start(&["alice", "bob"]).await;
    let mut alice = McpClient::start(&bus, "alice").await;

    let agents = alice.call_ok("list_agents", json!({})).await;
    let me = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "alice")
        .unwrap();
    assert_eq!(me["you"], true);

    let sent = alice
        .call_ok(
            "send_message",
            json!({ "to": "bob", "text": "hello", "priority": "high", "thread_id": "t-1" }),
        )
        .await;
    let id = sent["message_id"].as_str().unwrap().to_string();
    assert_eq!(sent["recipient"], "bob");
    let status = alice
        .call_ok("message_status", json!({ "message_id": id }))
        .await;
    assert_eq!(status["state"], "queued");

    let (failed, text) = alice
        .call("send_message", json!({ "to": "bobb", "text": "typo" }))
        .await;
    assert!(failed);
    assert!(text.contains("Did you mean `bob`?"), "{text}");

    // check_inbox acks by default; with ack=false the message stays leased until ack_message.
    bus.send("bob", "alice", "first").await;
    let inbox = alice.call_ok("check_inbox", json!({})).await;
    assert_eq!(inbox["messages"][0]["content"], "first");
    let first_id = inbox["messages"][0]["id"].as_str().unwrap().to_string();
    let first = alice
        .call_ok("message_status", json!({ "message_id": first_id }))
        .await;
    assert_eq!(first["state"], "acked");
    bus.send("bob", "alice", "second").await;
    let inbox = alice.call_ok("check_inbox", json!({ "ack": false })).await;
    let second_id = inbox["messages"][0]["id"].as_str().unwrap().to_string();
    let acked = alice
        .call_ok("ack_message", json!({ "message_ids": [second_id] }))
        .await;
    assert_eq!(acked["acknowledged"], json!([second_id]));

    let nothing = alice
        .call_ok("wait_for_message", json!({ "timeout_seconds": 1 }))
        .await;
    assert!(nothing["message"].is_null());
    bus.send("bob", "alice", "third").await;
    let got = alice
        .call_ok("wait_for_message", json!({ "timeout_seconds": 10 }))
        .await;
    assert_eq!(got["message"]["content"], "third");

    // reply answers a question to its sender.
    let question = bus.send("bob", "alice", "status?").await;
    let replied = alice
        .call_ok(
            "reply",
            json!({ "message_id": question, "text": "all good" }),
        )
        .await;
    assert_eq!(replied["recipient"], "bob");
    let bob_inbox = bus
        .run(&["inbox", "--agent", "bob", "--json", "--ack"])
        .await;
    let bob_inbox = bob_inbox.json();
    let answer = bob_inbox
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["content"] == "all good")
        .expect("bob got the reply");
    assert_eq!(answer["reply_to"], question.as_str());

    // ask waits for bob, who answers with the CLI.
    let bob_answers = bus.spawn(&[
        "wait",
        "--agent",
        "bob",
        "--timeout",
        "20",
        "--json",
        "--ack",
    ]);
    let asking = alice.call_ok(
        "ask",
        json!({ "to": "bob", "text": "ready?", "timeout_seconds": 30 }),
    );
    let answering = async {
        let question = wait(bob_answers).await;
        question.ok();
        let question_id = question.json()["id"].as_str().unwrap().to_string();
        bus.run(&["reply", &question_id, "yes", "--agent", "bob"])
            .await
            .ok();
        question_id
    };
    let (asked, question_id) = tokio::join!(asking, answering);
    assert_eq!(asked["question_id"], question_id.as_str());
    assert_eq!(asked["reply"]["content"], "yes");

    alice.stop().await;
}

/// Without an agent name the MCP server does not start, and says how to give one.
#[tokio::test]
async fn mcp_needs_an_agent_name() {
    let bus = Bus::start(&[]).await;
    let run = bus.run(&["mcp"]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("--agent NAME"), "{}", run.stderr);
}

/// Against a server in token mode, the tools act with the token given in SWITCHBOARD_TOKEN.
#[tokio::test]
async fn tools_send_the_token_from_the_environment() {
    let bus = Bus::start_with(
        &[],
        &[
            "--auth",
            "token",
            "--admin-token",
            "mcp-admin-token-0123456789",
        ],
    )
    .await;
    let (status, registered) = bus
        .post("/api/v1/agents/register", json!({ "name": "alice" }))
        .await;
    assert_eq!(status, 200, "{registered}");
    let token = registered["token"].as_str().unwrap();
    let mut command = bus.command(&["mcp", "--agent", "alice"]);
    command.env("SWITCHBOARD_TOKEN", token);
    let mut alice = McpClient::start_command(command, "alice").await;
    let sent = alice
        .call_ok("send_message", json!({ "to": "alice", "text": "note" }))
        .await;
    assert_eq!(sent["recipient"], "alice", "{sent}");
    let inbox = alice.call_ok("check_inbox", json!({})).await;
    assert_eq!(inbox["messages"][0]["content"], "note", "{inbox}");
    alice.stop().await;

    // Without the token the same call is refused, saying what to pass.
    let mut anonymous = McpClient::start(&bus, "alice").await;
    let (failed, text) = anonymous
        .call("send_message", json!({ "to": "alice", "text": "note" }))
        .await;
    assert!(failed, "{text}");
    assert!(text.contains("SWITCHBOARD_TOKEN"), "{text}");
    anonymous.stop().await;
}

/// `send_message` with `reply_to` sends an answer the recipient sees as one (its `reply_to`
/// is the question's id), as the REST send does.
#[tokio::test]
async fn send_message_passes_reply_to() {
    let bus = Bus::start(&["alice", "bob"]).await;
    let question = bus.send("bob", "alice", "which branch?").await;
    let mut alice = McpClient::start(&bus, "alice").await;
    let sent = alice
        .call_ok(
            "send_message",
            json!({ "to": "bob", "text": "main", "reply_to": question }),
        )
        .await;
    let inbox = bus
        .run(&["inbox", "--agent", "bob", "--json", "--ack"])
        .await;
    inbox.ok();
    assert_eq!(inbox.json()[0]["id"], sent["message_id"]);
    assert_eq!(inbox.json()[0]["reply_to"], question.as_str());
    alice.stop().await;
}

/// When `reply` cannot find the message, its advice names the MCP tool to use (send_message
/// with reply_to), not a shell command the model may not have.
#[tokio::test]
async fn reply_to_an_unknown_message_suggests_the_send_message_tool() {
    let bus = Bus::start(&["alice"]).await;
    let mut alice = McpClient::start(&bus, "alice").await;
    let (failed, text) = alice
        .call(
            "reply",
            json!({ "message_id": "00000000-0000-0000-0000-0000deadbeef", "text": "hi" }),
        )
        .await;
    assert!(failed, "{text}");
    assert!(text.contains("send_message"), "{text}");
    assert!(text.contains("reply_to"), "{text}");
    assert!(!text.contains("switchboard send"), "{text}");
    alice.stop().await;
}

/// Given `standby,real` in SWITCHBOARD_URL, the tools work against the real server, waiting
/// included.
#[tokio::test]
async fn tools_skip_a_standby_listed_first() {
    let bus = Bus::start(&["alice", "bob"]).await;
    let standby = StandbyServer::start(None).await;
    let mut command = bus.command(&["mcp", "--agent", "alice"]);
    command.env(
        "SWITCHBOARD_URL",
        format!("{},{}", standby.url, bus.server.base()),
    );
    let mut alice = McpClient::start_command(command, "alice").await;
    let sent = alice
        .call_ok(
            "send_message",
            json!({ "to": "alice", "text": "to myself" }),
        )
        .await;
    assert_eq!(sent["recipient"], "alice", "{sent}");
    let waited = alice
        .call_ok("wait_for_message", json!({ "timeout_seconds": 10 }))
        .await;
    assert_eq!(waited["message"]["content"], "to myself", "{waited}");
    alice.stop().await;
    assert!(standby.asked() > 0, "the standby was asked first");
}
