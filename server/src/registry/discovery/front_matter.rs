//! Explicit declarations of what an agent does: YAML front matter at the top of its
//! `CLAUDE.md` / `AGENTS.md`, or an `agent.yml` / `agent.yaml` / `config.json` beside it.
//!
//! Each may say `capabilities` (a list, or one comma-separated string), `role` (one word,
//! which is also a capability) and `metadata` (an object). Other keys are ignored, so files
//! written for other tools do not break discovery.

use serde_json::Value;

use crate::api::wire::Metadata;

/// What one declaration says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Declaration {
    /// `capabilities`, when the key is present (an empty list declares "none").
    pub capabilities: Option<Vec<String>>,
    /// `role`, when present.
    pub role: Option<String>,
    /// `metadata`, when present.
    pub metadata: Metadata,
}

impl Declaration {
    /// True when the declaration names capabilities or a role, and so overrides keywords.
    pub fn declares_capabilities(&self) -> bool {
        self.capabilities.is_some() || self.role.is_some()
    }
}

/// Splits a Markdown file into its YAML front matter (between a first line `---` and the next
/// line `---` or `...`) and the body after it. Without front matter the whole text is the body.
pub fn split(text: &str) -> (Option<&str>, &str) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return (None, text);
    };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if trimmed == "---" || trimmed == "..." {
            return (Some(&rest[..offset]), &rest[offset + line.len()..]);
        }
        offset += line.len();
    }
    // An opening fence that is never closed is not front matter.
    (None, text)
}

/// Reads a YAML declaration (front matter, `agent.yml`, `agent.yaml`).
pub fn parse_yaml(text: &str) -> Result<Declaration, String> {
    if text.trim().is_empty() {
        return Ok(Declaration::default());
    }
    let value: Value = serde_norway::from_str(text).map_err(|error| error.to_string())?;
    from_value(value)
}

/// Reads a JSON declaration (`config.json`).
pub fn parse_json(text: &str) -> Result<Declaration, String> {
    let value: Value = serde_json::from_str(text).map_err(|error| error.to_string())?;
    from_value(value)
}

fn from_value(value: Value) -> Result<Declaration, String> {
    let Value::Object(mut object) = value else {
        return Err("expected a mapping at the top level".into());
    };
    let capabilities = match object.remove("capabilities") {
        None | Some(Value::Null) => None,
        Some(Value::String(list)) => Some(
            list.split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_string)
                .collect(),
        ),
        Some(Value::Array(items)) => Some(
            items
                .into_iter()
                .map(|item| match item {
                    Value::String(name) => Ok(name.trim().to_string()),
                    other => Err(format!("capabilities: expected strings, found {other}")),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(other) => {
            return Err(format!(
                "capabilities: expected a list of strings, found {other}"
            ))
        }
    };
    let role = match object.remove("role") {
        None | Some(Value::Null) => None,
        Some(Value::String(role)) if !role.trim().is_empty() => Some(role.trim().to_string()),
        Some(other) => return Err(format!("role: expected a word, found {other}")),
    };
    let metadata = match object.remove("metadata") {
        None | Some(Value::Null) => Metadata::new(),
        Some(Value::Object(metadata)) => metadata,
        Some(other) => return Err(format!("metadata: expected a mapping, found {other}")),
    };
    Ok(Declaration {
        capabilities,
        role,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_is_split_from_the_body() {
        let text = "---\ncapabilities: [quality]\n---\n# Tester\nRuns tests.\n";
        let (yaml, body) = split(text);
        assert_eq!(yaml, Some("capabilities: [quality]\n"));
        assert_eq!(body, "# Tester\nRuns tests.\n");
    }

    #[test]
    fn text_without_a_closing_fence_has_no_front_matter() {
        let text = "---\ncapabilities: [quality]\n# no end\n";
        assert_eq!(split(text), (None, text));
        assert_eq!(split("# Title\n---\nx: 1\n---\n").0, None);
    }

    #[test]
    fn capabilities_role_and_metadata_are_read_from_yaml() {
        let yaml = "capabilities:\n  - Quality\n  - review\nrole: tester\nmetadata:\n  team: qa\nother: 1\n";
        let declaration = parse_yaml(yaml).unwrap();
        assert_eq!(
            declaration.capabilities,
            Some(vec!["Quality".to_string(), "review".to_string()])
        );
        assert_eq!(declaration.role.as_deref(), Some("tester"));
        assert_eq!(declaration.metadata["team"], "qa");
    }

    #[test]
    fn a_comma_separated_string_is_a_list() {
        let declaration = parse_json(r#"{"capabilities": "docs, integration"}"#).unwrap();
        assert_eq!(
            declaration.capabilities,
            Some(vec!["docs".to_string(), "integration".to_string()])
        );
    }

    #[test]
    fn malformed_declarations_name_the_problem() {
        assert!(parse_yaml("capabilities: [unclosed").is_err());
        let error = parse_yaml("capabilities: 7").unwrap_err();
        assert!(error.contains("capabilities"), "{error}");
        assert!(parse_json("[1, 2]").unwrap_err().contains("mapping"));
    }

    #[test]
    fn a_file_without_the_keys_declares_nothing() {
        let declaration = parse_yaml("title: Backend agent\n").unwrap();
        assert!(!declaration.declares_capabilities());
    }
}
