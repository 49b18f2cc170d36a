//! What a discovered agent can do, and where each capability came from.
//!
//! By default the original's keyword table is applied to the agent file's text (front matter
//! excluded): a case-insensitive substring adds a capability. An explicit declaration (front
//! matter, `agent.yml`, `agent.yaml`, `config.json`) *replaces* the keywords when it names
//! capabilities or a role: keywords guess (a file that mentions "agent" once is "general"),
//! a declaration is what its author meant.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::limits;

/// The original's table: a substring of the agent file (case-insensitive) and the capability
/// it gives.
pub const KEYWORD_CAPABILITIES: [(&str, &str); 6] = [
    ("agent", "general"),
    ("orchestration", "orchestration"),
    ("quality", "quality"),
    ("integration", "integration"),
    ("documentation", "documentation"),
    ("intelligence", "intelligence"),
];

/// How a capability was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CapabilitySource {
    /// A keyword of [`KEYWORD_CAPABILITIES`] in the agent file.
    Keyword,
    /// `capabilities` of a declaration.
    Declared,
    /// `role` of a declaration.
    Role,
}

/// One discovered capability and its provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CapabilityOrigin {
    /// The capability (lower case).
    pub name: String,
    /// How it was found.
    pub source: CapabilitySource,
    /// The file it was found in (`CLAUDE.md`, `agent.yml`, ...; front matter counts as its
    /// Markdown file).
    pub file: String,
    /// The keyword that matched, for [`CapabilitySource::Keyword`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
}

/// Capabilities the keyword table gives `text` of `file`.
pub fn from_keywords(text: &str, file: &str) -> Vec<CapabilityOrigin> {
    let lower = text.to_lowercase();
    KEYWORD_CAPABILITIES
        .iter()
        .filter(|(keyword, _)| lower.contains(keyword))
        .map(|(keyword, capability)| CapabilityOrigin {
            name: capability.to_string(),
            source: CapabilitySource::Keyword,
            file: file.to_string(),
            keyword: Some(keyword.to_string()),
        })
        .collect()
}

/// A declared capability name in the form routing compares: trimmed, lower case.
pub fn normalize(name: &str) -> String {
    name.trim().to_lowercase()
}

/// The capabilities an agent ends with: the declared ones when there are any declarations
/// naming capabilities, else the keyword ones; each name once (first origin kept), at most
/// [`limits::CAPABILITIES_MAX`].
pub fn resolve(
    keywords: Vec<CapabilityOrigin>,
    declared: Vec<CapabilityOrigin>,
    has_declaration: bool,
) -> Vec<CapabilityOrigin> {
    let chosen = if has_declaration { declared } else { keywords };
    let mut seen = std::collections::HashSet::new();
    chosen
        .into_iter()
        .filter(|origin| !origin.name.is_empty() && seen.insert(origin.name.clone()))
        .take(limits::CAPABILITIES_MAX)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(origins: &[CapabilityOrigin]) -> Vec<&str> {
        origins.iter().map(|o| o.name.as_str()).collect()
    }

    #[test]
    fn keywords_match_case_insensitively_and_record_the_keyword() {
        let text = "# Quality AGENT\nYou guard QUALITY and write Documentation.";
        let found = from_keywords(text, "CLAUDE.md");
        assert_eq!(names(&found), ["general", "quality", "documentation"]);
        assert_eq!(found[0].keyword.as_deref(), Some("agent"));
        assert_eq!(found[0].file, "CLAUDE.md");
        assert_eq!(found[0].source, CapabilitySource::Keyword);
    }

    #[test]
    fn text_without_keywords_gives_nothing() {
        assert!(from_keywords("# Notes\nNothing to see.", "CLAUDE.md").is_empty());
    }

    #[test]
    fn a_declaration_replaces_keywords() {
        let keywords = from_keywords("quality agent", "CLAUDE.md");
        let declared = vec![CapabilityOrigin {
            name: "deploy".into(),
            source: CapabilitySource::Declared,
            file: "agent.yml".into(),
            keyword: None,
        }];
        assert_eq!(
            names(&resolve(keywords.clone(), declared, true)),
            ["deploy"]
        );
        assert_eq!(
            names(&resolve(keywords, Vec::new(), true)),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn duplicates_keep_their_first_origin() {
        let origin = |file: &str| CapabilityOrigin {
            name: "quality".into(),
            source: CapabilitySource::Declared,
            file: file.into(),
            keyword: None,
        };
        let resolved = resolve(
            Vec::new(),
            vec![origin("CLAUDE.md"), origin("agent.yml")],
            true,
        );
        assert_eq!(resolved, vec![origin("CLAUDE.md")]);
    }
}
