//! What a send answer tells the sender when a routed message reached no agent: that it waits
//! for a capability (and whether any agent has that capability at all, with a "did you mean"
//! among those agents do have), and which rule `auto` fell back to when the matched rule's
//! capability belongs to no agent. Without this a typo such as `capability:qualty` answered
//! `sent` and parked the message for good.

use std::collections::BTreeSet;

use crate::similar::{quoted, similar};

/// Known capabilities listed when none is close to what was asked for.
pub const CAPABILITIES_LISTED_MAX: usize = 8;

/// The note for a message waiting for `capability`, given the capabilities agents have.
pub fn waiting_note(capability: &str, known: &BTreeSet<String>) -> String {
    if known.contains(capability) {
        return format!(
            "no agent with capability {capability:?} is online; the message waits until one \
             comes online"
        );
    }
    let mut note = format!(
        "no agent has capability {capability:?}; the message waits until an agent with it \
         registers"
    );
    let close = similar(capability, known);
    if !close.is_empty() {
        note.push_str(&format!(". Did you mean {}?", quoted(&close)));
    } else if known.is_empty() {
        note.push_str(". No agent has any capability yet");
    } else if known.len() <= CAPABILITIES_LISTED_MAX {
        let all: Vec<String> = known.iter().cloned().collect();
        note.push_str(&format!(". Capabilities agents have: {}", quoted(&all)));
    }
    note
}

/// The note for `auto` taking `used_rule` because `matched_rule`'s capability is no agent's.
pub fn fallback_note(matched_rule: &str, capability: &str, used_rule: &str) -> String {
    format!(
        "rule {matched_rule:?} matched, but no agent has capability {capability:?}; fell back \
         to rule {used_rule:?}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn a_misspelt_capability_gets_the_close_ones_suggested() {
        let note = waiting_note("qualty", &known(&["quality", "documentation"]));
        assert!(
            note.contains("no agent has capability \"qualty\""),
            "{note}"
        );
        assert!(note.ends_with("Did you mean `quality`?"), "{note}");
    }

    #[test]
    fn with_nothing_close_the_known_capabilities_are_listed() {
        let note = waiting_note("zzz", &known(&["quality", "documentation"]));
        assert!(
            note.ends_with("Capabilities agents have: `documentation`, `quality`"),
            "{note}"
        );
    }

    #[test]
    fn a_capability_some_agent_has_waits_for_it_to_come_online() {
        let note = waiting_note("quality", &known(&["quality"]));
        assert!(note.contains("is online"), "{note}");
        assert!(!note.contains("Did you mean"), "{note}");
    }
}
