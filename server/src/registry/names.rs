//! Which names an agent may take. A name is how others address an agent and how listings show
//! it, so it must not be able to pose as something else:
//! - a word or prefix that means something to the server (`system`, the admin's sender; `auto`
//!   and `capability:NAME`, routed recipients; `broadcast`; the prefixes of internal queues
//!   and senders), compared without case;
//! - an agent id (ids and names are both accepted wherever an agent is named);
//! - text with characters that are invisible or change the direction of what follows, with
//!   which `bob\u{200B}` lists exactly like `bob`.
//!
//! Records stored before these checks still load (recovery never refuses a record); the checks
//! apply to registrations and discovery only.

/// Names no agent may take, compared without case. `system` is the sender of the admin (and
/// of a sender-less request); `auto` asks for content routing; `broadcast` names the broadcast.
pub const RESERVED_NAMES: [&str; 3] = ["system", crate::routing::RECIPIENT_AUTO, "broadcast"];

/// Prefixes no agent name may start with, compared without case, and why: each names routed
/// recipients, internal queues or internal senders. The tests tie each one to the code that
/// builds such names.
pub const RESERVED_PREFIXES: [(&str, &str); 5] = [
    (
        crate::routing::RECIPIENT_CAPABILITY_PREFIX,
        "recipients `capability:NAME` ask for any agent with that capability",
    ),
    (
        "rule:",
        "`rule:NAME` is the waiting queue of a routing rule",
    ),
    ("inbox:", "`inbox:ID` is an agent's inbox queue"),
    (
        "replies:",
        "`replies:ID` holds the replies an agent's `ask` waits for",
    ),
    (
        "queue:",
        "`queue:NAME` is the sender of messages sent through the queue API",
    ),
];

/// Why `name` cannot be an agent's name because it means something to the server, if so.
pub fn reserved_name(name: &str) -> Option<String> {
    let name = name.trim();
    if let Some(word) = RESERVED_NAMES
        .iter()
        .find(|word| name.eq_ignore_ascii_case(word))
    {
        return Some(match *word {
            "system" => {
                "`system` is the sender of the admin and of requests naming no sender".to_string()
            }
            "broadcast" => "`broadcast` names messages sent to every agent".to_string(),
            _ => "the recipient `auto` asks for content routing".to_string(),
        });
    }
    RESERVED_PREFIXES
        .iter()
        .find(|(prefix, _)| {
            name.get(..prefix.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
        })
        .map(|(_, why)| why.to_string())
}

/// True for text with the shape of an agent id (a UUID, in any of its spellings).
pub fn looks_like_id(name: &str) -> bool {
    uuid::Uuid::try_parse(name.trim()).is_ok()
}

/// The first character of `name` that is invisible or changes the text's direction (zero-width
/// spaces and joiners, the byte order mark, bidirectional controls and marks, soft hyphen,
/// control characters), if any.
pub fn hidden_character(name: &str) -> Option<char> {
    name.chars().find(|&c| {
        c.is_control()
            || matches!(c,
                '\u{00AD}'                  // soft hyphen
                | '\u{061C}'                // Arabic letter mark
                | '\u{180E}'                // Mongolian vowel separator
                | '\u{200B}'..='\u{200F}'   // zero-width space, non-joiner, joiner; LRM, RLM
                | '\u{202A}'..='\u{202E}'   // bidi embeddings and overrides
                | '\u{2060}'..='\u{2064}'   // word joiner, invisible operators
                | '\u{2066}'..='\u{2069}'   // bidi isolates
                | '\u{FEFF}'                // byte order mark, zero-width no-break space
                | '\u{034F}'                // combining grapheme joiner
                | '\u{115F}' | '\u{1160}'  // Hangul choseong and jungseong fillers
                | '\u{17B4}' | '\u{17B5}'  // Khmer inherent vowels
                | '\u{2800}'                // braille blank
                | '\u{3164}' | '\u{FFA0}'  // Hangul fillers
                | '\u{FE00}'..='\u{FE0F}'   // variation selectors
                | '\u{E0000}'..='\u{E0FFF}' // tags and variation selectors supplement
            )
            // Blank characters other than the ASCII space (no-break and typographic spaces,
            // line and paragraph separators): `bob\u{00A0}` lists exactly like `bob `.
            || (c.is_whitespace() && c != ' ')
    })
}

/// True when `name` starts or ends with a space: `bob ` lists exactly like `bob`.
pub fn padded(name: &str) -> bool {
    name.trim() != name
}

/// Why `name` cannot be a new agent's name, if it cannot: a sentence a person can act on.
/// (Emptiness and length are checked by `validate_name`.)
pub fn refusal(name: &str) -> Option<String> {
    if let Some(reason) = reserved_name(name) {
        return Some(format!("name {name:?} is reserved: {reason}"));
    }
    if looks_like_id(name) {
        return Some(format!(
            "name {name:?} has the shape of an agent id; ids and names are both accepted \
             where an agent is named, so a name may not look like an id: choose another"
        ));
    }
    if let Some(hidden) = hidden_character(name) {
        return Some(format!(
            "name {name:?} contains the invisible or direction-changing character U+{:04X}, \
             with which it could pass for another agent's name in listings; use visible \
             characters only",
            hidden as u32
        ));
    }
    if padded(name) {
        return Some(format!(
            "name {name:?} starts or ends with a space, with which it could pass for another \
             agent's name in listings; remove the space"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_words_are_refused_in_any_case() {
        for name in [
            "system",
            "SYSTEM",
            " System ",
            "auto",
            "Auto",
            "broadcast",
            "BROADCAST",
        ] {
            assert!(reserved_name(name).is_some(), "{name:?}");
        }
        for name in ["systems", "autobot", "broadcaster", "my-system"] {
            assert!(reserved_name(name).is_none(), "{name:?}");
        }
    }

    #[test]
    fn names_built_by_routing_and_internal_queues_are_reserved() {
        use crate::routing::waiting;
        let built = [
            format!("{}quality", waiting::CAPABILITY_QUEUE_PREFIX),
            format!("{}db", waiting::RULE_QUEUE_PREFIX),
            waiting::ANY_AGENT_QUEUE.to_string(),
            crate::registry::inbox_queue("0b7e"),
            crate::receipts::asks::replies_queue("0b7e"),
            "Capability:Quality".to_string(),
            "QUEUE:orders".to_string(),
        ];
        for name in built {
            assert!(reserved_name(&name).is_some(), "{name:?}");
        }
    }

    #[test]
    fn names_padded_with_spaces_are_refused() {
        for name in ["bob ", " bob", "bob\t"] {
            assert!(refusal(name).is_some(), "{name:?} was accepted");
        }
    }

    #[test]
    fn id_shaped_names_are_refused() {
        let id = uuid::Uuid::new_v4();
        for name in [
            id.to_string(),
            id.to_string().to_uppercase(),
            id.simple().to_string(),
        ] {
            assert!(refusal(&name).is_some_and(|r| r.contains("shape of an agent id")));
        }
        assert!(refusal("frontend-2024").is_none());
    }

    #[test]
    fn invisible_and_direction_changing_characters_are_refused() {
        for name in [
            "bob\u{200B}",
            "b\u{200D}ob",
            "bob\u{2060}",
            "\u{FEFF}bob",
            "bob\u{202E}",
            "bob\u{2067}",
            "bob\u{200F}",
            "bob\u{7}",
        ] {
            let refusal = refusal(name).unwrap_or_else(|| panic!("{name:?} was accepted"));
            assert!(refusal.contains("U+"), "{refusal}");
        }
        for name in [
            "bob\u{00A0}",
            "bob\u{034F}",
            "bob\u{3164}",
            "bob\u{115F}",
            "bob\u{2800}",
            "bob\u{2028}",
            "b\u{3000}ob",
            "bob\u{E0041}",
            "bob\u{FE0F}",
        ] {
            let refusal = refusal(name).unwrap_or_else(|| panic!("{name:?} was accepted"));
            assert!(refusal.contains("U+"), "{refusal}");
        }
        assert!(refusal("björn-ø").is_none());
        assert!(refusal("my agent").is_none());
        assert!(refusal("前端").is_none());
    }
}
