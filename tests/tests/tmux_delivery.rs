//! The tmux adapter against real tmux, on a private server per test: what the program in the
//! pane receives is exactly the message, once, whatever the message holds, and a message never
//! goes to the wrong pane, a dead pane, a pane in copy mode, or a pane whose terminal a shell
//! (or any program that is not an agent) reads.

mod tmux_lab;

use std::time::Duration;

use switchboard_server::migrate::tmux::target::list_panes;
use switchboard_server::migrate::tmux::{
    deliver, DeliveryOptions, DeliveryOutcome, PaneId, PanePolicy, Target, Tmux,
};
use tmux_lab::{ReaderPane, TmuxLab};

const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(10);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A message a shell would run three commands from: `touch x`, `touch y` and `touch z`.
const SHELL_BAIT: &str = "[DUAL MODE] From alice: $(touch x) ; touch y\ntouch z";

fn send(lab: &TmuxLab, pane: &ReaderPane, text: &str) -> DeliveryOutcome {
    send_to(lab, &pane.pane_id, text, &DeliveryOptions::default())
}

fn send_to(lab: &TmuxLab, pane_id: &str, text: &str, options: &DeliveryOptions) -> DeliveryOutcome {
    let tmux = Tmux::new(Some(lab.socket.clone()));
    let id: PaneId = pane_id.parse().unwrap();
    runtime().block_on(deliver(&tmux, &id, text, options))
}

/// Makes the shell in `pane_id` (typing directly, not through switchboard) create `marker`
/// in `dir`, and waits for it: everything typed into the shell before has been run by then.
fn sync_shell(lab: &TmuxLab, pane_id: &str, dir: &std::path::Path, marker: &str) {
    lab.tmux(&["send-keys", "-t", pane_id, "-l", &format!("touch {marker}")]);
    lab.tmux(&["send-keys", "-t", pane_id, "Enter"]);
    let started = std::time::Instant::now();
    while !dir.join(marker).exists() {
        assert!(
            started.elapsed() < ARRIVAL_TIMEOUT,
            "the shell never ran `touch {marker}`:\n{}",
            lab.screen(pane_id)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Delivers `text`, then a marker line, and returns what arrived before the marker: the marker
/// proves the program is still running and that nothing more came after the message.
fn round_trip(text: &str) -> (DeliveryOutcome, Vec<String>) {
    let lab = TmuxLab::new();
    let pane = lab.reader("hive", "agent-reader");
    let outcome = send(&lab, &pane, text);
    assert_eq!(send(&lab, &pane, "END-MARKER"), DeliveryOutcome::Delivered);
    let mut lines = pane.wait_for("END-MARKER", ARRIVAL_TIMEOUT);
    assert_eq!(lines.pop().as_deref(), Some("END-MARKER"), "marker last");
    (outcome, lines)
}

#[test]
fn a_single_line_arrives_once_and_is_confirmed() {
    let (outcome, lines) = round_trip("hello from the lead");
    assert_eq!(outcome, DeliveryOutcome::Delivered);
    assert_eq!(lines, vec!["hello from the lead"]);
}

#[test]
fn multi_line_text_arrives_line_for_line_once() {
    let (outcome, lines) = round_trip("first line\nsecond line\n\nfourth after a blank");
    assert_eq!(outcome, DeliveryOutcome::Delivered);
    assert_eq!(
        lines,
        vec!["first line", "second line", "", "fourth after a blank"]
    );
}

#[test]
fn a_message_that_is_exactly_c_c_arrives_as_text_and_kills_nothing() {
    let (outcome, lines) = round_trip("C-c");
    assert_eq!(outcome, DeliveryOutcome::Delivered);
    // The marker arrived after it, so the program was not interrupted.
    assert_eq!(lines, vec!["C-c"]);
}

#[test]
fn messages_starting_with_a_dash_arrive_literally() {
    let lab = TmuxLab::new();
    let pane = lab.reader("hive", "agent-reader");
    for text in ["-n is not a flag", "--help", "-"] {
        assert_eq!(
            send(&lab, &pane, text),
            DeliveryOutcome::Delivered,
            "{text}"
        );
    }
    assert_eq!(
        pane.wait_lines(3, ARRIVAL_TIMEOUT),
        vec!["-n is not a flag", "--help", "-"]
    );
}

#[test]
fn ten_kilobytes_arrive_whole_and_once() {
    let text: String = (0..10 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let (outcome, lines) = round_trip(&text);
    assert_eq!(outcome, DeliveryOutcome::Delivered);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].len(), text.len());
    assert_eq!(lines[0], text);
}

#[test]
fn quotes_escapes_and_tmux_syntax_arrive_literally() {
    let texts = [
        r#"'single' "double" `tick` $HOME $(date)"#,
        r"backslashes \n \t \x1b[31m \\ \e",
        "ends with a semicolon;",
        r"ends with an escaped one \;",
        "#{pane_id} and { braces } and %if",
        "Enter",
    ];
    let lab = TmuxLab::new();
    let pane = lab.reader("hive", "agent-reader");
    for text in texts {
        assert_eq!(
            send(&lab, &pane, text),
            DeliveryOutcome::Delivered,
            "{text}"
        );
    }
    assert_eq!(pane.wait_lines(texts.len(), ARRIVAL_TIMEOUT), texts);
}

#[test]
fn control_characters_are_written_out_never_sent_as_keys() {
    let (outcome, lines) = round_trip("clear\x1b[2J stop\x03 tab\there");
    assert_eq!(outcome, DeliveryOutcome::Delivered);
    assert_eq!(lines, vec![r"clear\u{1b}[2J stop\u{3} tab    here"]);
}

#[test]
fn text_the_pane_does_not_show_is_unconfirmed_but_still_arrives_once() {
    let lab = TmuxLab::new();
    let pane = lab.silent_reader("hive", "agent-quiet");
    let outcome = send(&lab, &pane, "quiet words");
    assert!(
        matches!(outcome, DeliveryOutcome::Unconfirmed { .. }),
        "{outcome:?}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(pane.wait_lines(1, ARRIVAL_TIMEOUT), vec!["quiet words"]);
}

#[test]
fn a_missing_pane_fails_and_nothing_reaches_the_active_pane() {
    let lab = TmuxLab::new();
    let active = lab.reader("hive", "agent-reader");
    let tmux = Tmux::new(Some(lab.socket.clone()));
    let missing: PaneId = "%999".parse().unwrap();
    let outcome = runtime().block_on(deliver(
        &tmux,
        &missing,
        "lost?",
        &DeliveryOptions::default(),
    ));
    assert!(
        matches!(&outcome, DeliveryOutcome::Failed { reason } if reason.contains("does not exist")),
        "{outcome:?}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(active.lines().is_empty(), "{:?}", active.lines());
}

#[test]
fn a_pane_in_copy_mode_is_refused() {
    let lab = TmuxLab::new();
    let pane = lab.reader("hive", "agent-reader");
    lab.tmux(&["copy-mode", "-t", &pane.pane_id]);
    let outcome = send(&lab, &pane, "not now");
    assert!(
        matches!(&outcome, DeliveryOutcome::Failed { reason } if reason.contains("copy mode")),
        "{outcome:?}"
    );
    lab.tmux(&["send-keys", "-t", &pane.pane_id, "-X", "cancel"]);
    assert_eq!(send(&lab, &pane, "now"), DeliveryOutcome::Delivered);
    assert_eq!(pane.wait_lines(1, ARRIVAL_TIMEOUT), vec!["now"]);
}

#[test]
fn a_dead_pane_is_refused() {
    let lab = TmuxLab::new();
    let _keep_server = lab.reader("hive", "agent-reader");
    lab.tmux(&["set-option", "-g", "remain-on-exit", "on"]);
    let dead = lab.tmux(&[
        "new-window",
        "-d",
        "-P",
        "-F",
        "#{pane_id}",
        "-t",
        "=hive:",
        "-n",
        "agent-gone",
        "true",
    ]);
    let tmux = Tmux::new(Some(lab.socket.clone()));
    let id: PaneId = dead.parse().unwrap();
    let started = std::time::Instant::now();
    let outcome = loop {
        let outcome =
            runtime().block_on(deliver(&tmux, &id, "hello?", &DeliveryOptions::default()));
        if matches!(&outcome, DeliveryOutcome::Failed { reason } if reason.contains("dead")) {
            break outcome;
        }
        assert!(
            started.elapsed() < ARRIVAL_TIMEOUT,
            "never seen dead: {outcome:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(outcome.label(), "failed");
}

#[test]
fn session_window_targets_resolve_to_that_window_not_the_active_pane() {
    let lab = TmuxLab::new();
    let first = lab.reader("hive", "agent-first");
    let second = lab.reader("hive", "agent-second");
    let tmux = Tmux::new(Some(lab.socket.clone()));
    let panes = runtime().block_on(list_panes(&tmux)).unwrap();
    let resolve = |text: &str| {
        text.parse::<Target>()
            .and_then(|target| target.resolve(&panes).map(|p| p.pane_id.to_string()))
    };
    assert_eq!(resolve("hive:agent-second").unwrap(), second.pane_id);
    assert_eq!(resolve("hive:agent-first").unwrap(), first.pane_id);
    assert!(resolve("hive:agent-missing").is_err());
    assert!(resolve("nosuchsession:agent-first").is_err());
}

#[test]
fn a_pane_running_a_shell_is_refused_and_nothing_typed_runs() {
    let lab = TmuxLab::new();
    let cwd = tempfile::tempdir().unwrap();
    let shell = lab.shell("hive", "agent-shell", cwd.path());
    let outcome = send_to(&lab, &shell, SHELL_BAIT, &DeliveryOptions::default());
    assert!(
        matches!(&outcome, DeliveryOutcome::Refused { reason }
            if reason.starts_with("pane runs a shell (bash)")),
        "{outcome:?}"
    );
    sync_shell(&lab, &shell, cwd.path(), "synced");
    for file in ["x", "y", "z"] {
        assert!(
            !cwd.path().join(file).exists(),
            "the shell ran `touch {file}`"
        );
    }
    let screen = lab.screen(&shell);
    assert!(
        !screen.contains("DUAL MODE"),
        "typed into the shell:\n{screen}"
    );
}

#[test]
fn a_shell_is_refused_even_when_the_allow_list_names_it() {
    let lab = TmuxLab::new();
    let cwd = tempfile::tempdir().unwrap();
    let shell = lab.shell("hive", "agent-shell", cwd.path());
    let options = DeliveryOptions {
        policy: PanePolicy::allowing(&["bash".into(), "cat".into()]),
        ..DeliveryOptions::default()
    };
    let outcome = send_to(&lab, &shell, "touch listed", &options);
    assert_eq!(outcome.label(), "refused", "{outcome:?}");
    sync_shell(&lab, &shell, cwd.path(), "synced");
    assert!(!cwd.path().join("listed").exists());
}

#[test]
fn a_line_reader_gets_shell_syntax_verbatim() {
    let (outcome, lines) = round_trip(SHELL_BAIT);
    assert_eq!(outcome, DeliveryOutcome::Delivered);
    assert_eq!(
        lines,
        vec!["[DUAL MODE] From alice: $(touch x) ; touch y", "touch z"]
    );
}

#[test]
fn a_shell_wrapper_waiting_for_its_reader_is_judged_by_the_reader() {
    let lab = TmuxLab::new();
    let pane = lab.wrapped_reader("hive", "agent-wrapped");
    let command = lab.tmux(&[
        "display-message",
        "-p",
        "-t",
        &pane.pane_id,
        "#{pane_current_command}",
    ]);
    assert_eq!(command, "sh", "tmux sees the wrapper, not its reader");
    assert_eq!(
        send(&lab, &pane, "through the wrapper"),
        DeliveryOutcome::Delivered
    );
    assert_eq!(
        pane.wait_lines(1, ARRIVAL_TIMEOUT),
        vec!["through the wrapper"]
    );
}

#[test]
fn a_program_off_the_allow_list_is_refused() {
    let lab = TmuxLab::new();
    let pane = lab.reader("hive", "agent-reader");
    let options = DeliveryOptions {
        policy: PanePolicy::allowing(&["claude".into()]),
        ..DeliveryOptions::default()
    };
    let outcome = send_to(&lab, &pane.pane_id, "not for cat", &options);
    assert!(
        matches!(&outcome, DeliveryOutcome::Refused { reason }
            if reason.starts_with("pane runs cat") && reason.contains("--agent-program")),
        "{outcome:?}"
    );
    assert_eq!(send(&lab, &pane, "for cat"), DeliveryOutcome::Delivered);
    assert_eq!(pane.wait_lines(1, ARRIVAL_TIMEOUT), vec!["for cat"]);
}
