//! Routing rules: an ordered list, first match wins. Each rule matches content by keywords
//! (case-insensitive substrings, any of them) and/or a regular expression; a rule with neither
//! matches everything (a catch-all). It targets a capability and/or named agents (neither: any
//! online agent), may raise the message's priority, and names the strategy that picks among
//! the candidates. When no candidate is online the message waits (see `waiting`): in its
//! capability's queue when the rule names a capability (the named agents are then extra
//! candidates at send time only), else in the rule's own queue.
//!
//! The defaults are the original's six rules plus its fallback ("no rule: any online agent")
//! as a last catch-all rule, so that `auto` behaves as the original meant it to. A matching
//! rule whose capability no registered agent has (and that names no existing agent) is passed
//! over for the next matching one, so `auto` falls back instead of parking the message for a
//! capability nobody has; the send answer's `note` says so.
//!
//! A rule set is written as JSON or YAML: either a list of rules, or
//! `{"rules": [...], "capability_strategy": "round_robin"}` where `capability_strategy` is the
//! strategy of `capability:NAME` recipients.

use std::path::Path;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::strategy::StrategyKind;
use crate::api::wire::Priority;
use crate::registry::validate_name;

/// Most rules in a set.
pub const RULES_MAX: usize = 256;
/// Most keywords in one rule.
pub const KEYWORDS_PER_RULE_MAX: usize = 256;
/// Longest keyword, in bytes.
pub const KEYWORD_BYTES_MAX: usize = 200;
/// Longest regular expression source, in bytes.
pub const REGEX_BYTES_MAX: usize = 4096;
/// Largest compiled regular expression, in bytes (keeps a hostile pattern from eating memory).
pub const REGEX_COMPILED_BYTES_MAX: usize = 1024 * 1024;
/// Most agents one rule may name.
pub const AGENTS_PER_RULE_MAX: usize = 256;
/// Largest rules file read, in bytes.
pub const RULES_FILE_BYTES_MAX: u64 = 1024 * 1024;

/// One rule as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique name; reported in send responses and counted in `/api/v1/stats`.
    pub name: String,
    /// Matches when the content contains any of these (case-insensitive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// Matches when this regular expression finds a match in the content (add `(?i)` to
    /// ignore case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Agents with this capability are candidates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability: Option<String>,
    /// These agents (names or ids) are candidates too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<String>,
    /// Raises the message's priority to at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_boost: Option<Priority>,
    /// How one candidate is picked (default round robin).
    #[serde(default)]
    pub strategy: StrategyKind,
}

/// A rule set as written, and as `GET /api/v1/routing/rules` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSetSpec {
    /// In order; the first rule that matches wins.
    pub rules: Vec<RuleSpec>,
    /// Strategy for `capability:NAME` recipients.
    #[serde(default)]
    pub capability_strategy: StrategyKind,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// As written.
    pub spec: RuleSpec,
    /// The capability, lower case.
    pub capability: Option<String>,
    keywords: Vec<String>,
    regex: Option<Regex>,
}

impl Rule {
    /// True when `content` matches; `lowered` is `content` in lower case (computed once per
    /// message, not once per rule).
    pub fn matches(&self, content: &str, lowered: &str) -> bool {
        if self.keywords.is_empty() && self.regex.is_none() {
            return true;
        }
        self.keywords.iter().any(|k| lowered.contains(k.as_str()))
            || self.regex.as_ref().is_some_and(|r| r.is_match(content))
    }

    /// True when the rule targets neither a capability nor agents: any online agent.
    pub fn targets_any(&self) -> bool {
        self.capability.is_none() && self.spec.agents.is_empty()
    }
}

/// A compiled, checked rule set.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// In order.
    pub rules: Vec<Rule>,
    /// Strategy for `capability:NAME` recipients.
    pub capability_strategy: StrategyKind,
}

impl RuleSet {
    /// Checks and compiles `spec`; the error names the rule and what is wrong with it.
    pub fn compile(spec: RuleSetSpec) -> Result<RuleSet, String> {
        if spec.rules.len() > RULES_MAX {
            return Err(format!(
                "{} rules, the limit is {RULES_MAX}",
                spec.rules.len()
            ));
        }
        let mut names = std::collections::HashSet::new();
        let mut rules = Vec::with_capacity(spec.rules.len());
        for rule in spec.rules {
            validate_name("rule name", &rule.name).map_err(|e| e.detail())?;
            if !names.insert(rule.name.clone()) {
                return Err(format!(
                    "rule {:?} appears twice; names must be unique",
                    rule.name
                ));
            }
            rules.push(compile_rule(rule).map_err(|error| format!("rule {error}"))?);
        }
        Ok(RuleSet {
            rules,
            capability_strategy: spec.capability_strategy,
        })
    }

    /// The original's six rules and its fallback to any online agent.
    pub fn defaults() -> RuleSet {
        RuleSet::compile(default_spec()).expect("the default rules compile")
    }

    /// The first rule matching `content`.
    pub fn first_match(&self, content: &str) -> Option<&Rule> {
        let lowered = content.to_lowercase();
        self.rules
            .iter()
            .find(|rule| rule.matches(content, &lowered))
    }

    /// The rules matching `content`, in order.
    pub fn matching(&self, content: &str) -> Vec<&Rule> {
        let lowered = content.to_lowercase();
        self.rules
            .iter()
            .filter(|rule| rule.matches(content, &lowered))
            .collect()
    }

    /// The rule named `name`.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|rule| rule.spec.name == name)
    }

    /// The set as written.
    pub fn spec(&self) -> RuleSetSpec {
        RuleSetSpec {
            rules: self.rules.iter().map(|rule| rule.spec.clone()).collect(),
            capability_strategy: self.capability_strategy,
        }
    }
}

fn compile_rule(spec: RuleSpec) -> Result<Rule, String> {
    let name = &spec.name;
    if spec.keywords.len() > KEYWORDS_PER_RULE_MAX {
        return Err(format!(
            "{name:?}: at most {KEYWORDS_PER_RULE_MAX} keywords"
        ));
    }
    let mut keywords = Vec::with_capacity(spec.keywords.len());
    for keyword in &spec.keywords {
        if keyword.trim().is_empty() || keyword.len() > KEYWORD_BYTES_MAX {
            return Err(format!(
                "{name:?}: keywords must be 1 to {KEYWORD_BYTES_MAX} bytes and not blank"
            ));
        }
        keywords.push(keyword.to_lowercase());
    }
    let regex = match &spec.regex {
        None => None,
        Some(source) if source.len() > REGEX_BYTES_MAX => {
            return Err(format!(
                "{name:?}: the regex is {} bytes, the limit is {REGEX_BYTES_MAX}",
                source.len()
            ))
        }
        Some(source) => Some(
            RegexBuilder::new(source)
                .size_limit(REGEX_COMPILED_BYTES_MAX)
                .build()
                .map_err(|error| format!("{name:?}: invalid regex {source:?}: {error}"))?,
        ),
    };
    let capability = match &spec.capability {
        None => None,
        Some(capability) => {
            validate_name("capability", capability)
                .map_err(|e| format!("{name:?}: {}", e.detail()))?;
            Some(capability.trim().to_lowercase())
        }
    };
    if spec.agents.len() > AGENTS_PER_RULE_MAX {
        return Err(format!("{name:?}: at most {AGENTS_PER_RULE_MAX} agents"));
    }
    for agent in &spec.agents {
        validate_name("agent", agent).map_err(|e| format!("{name:?}: {}", e.detail()))?;
    }
    Ok(Rule {
        spec,
        capability,
        keywords,
        regex,
    })
}

/// The default rule set as written.
pub fn default_spec() -> RuleSetSpec {
    let rule = |name: &str, keywords: &[&str], capability: Option<&str>| RuleSpec {
        name: name.into(),
        keywords: keywords.iter().map(|k| k.to_string()).collect(),
        regex: None,
        capability: capability.map(str::to_string),
        agents: Vec::new(),
        priority_boost: None,
        strategy: StrategyKind::RoundRobin,
    };
    let mut urgent = rule("urgent", &["urgent", "critical"], Some("orchestration"));
    urgent.priority_boost = Some(Priority::Critical);
    RuleSetSpec {
        rules: vec![
            urgent,
            rule("quality", &["quality", "test"], Some("quality")),
            rule(
                "orchestration",
                &["orchestrat", "coordinat"],
                Some("orchestration"),
            ),
            rule(
                "documentation",
                &["document", "readme"],
                Some("documentation"),
            ),
            rule("integration", &["integrat", "deploy"], Some("integration")),
            rule(
                "intelligence",
                &["intelligence", "analysis"],
                Some("intelligence"),
            ),
            rule("any-agent", &[], None),
        ],
        capability_strategy: StrategyKind::RoundRobin,
    }
}

/// Reads a rule set from JSON or YAML text: a list of rules or a full set.
pub fn parse(text: &str) -> Result<RuleSetSpec, String> {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(_) => {
            serde_norway::from_str(text).map_err(|error| format!("not JSON or YAML: {error}"))?
        }
    };
    from_value(value)
}

/// Reads a rule set from a JSON value: a list of rules or a full set, with the path of the
/// first bad field in the error.
pub fn from_value(value: serde_json::Value) -> Result<RuleSetSpec, String> {
    let value = match value {
        serde_json::Value::Array(rules) => serde_json::json!({ "rules": rules }),
        other => other,
    };
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        if path == "." {
            error.inner().to_string()
        } else {
            format!("{path}: {}", error.inner())
        }
    })
}

/// Reads and compiles a rules file.
pub fn load_file(path: &Path) -> Result<RuleSet, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|error| error.to_string())?;
    let mut text = String::new();
    file.take(RULES_FILE_BYTES_MAX)
        .read_to_string(&mut text)
        .map_err(|error| error.to_string())?;
    RuleSet::compile(parse(&text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matched(set: &RuleSet, content: &str) -> Option<String> {
        set.first_match(content).map(|rule| rule.spec.name.clone())
    }

    #[test]
    fn default_rules_follow_the_original_order() {
        let set = RuleSet::defaults();
        assert_eq!(
            matched(&set, "URGENT: tests are red").as_deref(),
            Some("urgent")
        );
        assert_eq!(
            matched(&set, "please run the Tests").as_deref(),
            Some("quality")
        );
        assert_eq!(
            matched(&set, "coordinate the release").as_deref(),
            Some("orchestration")
        );
        assert_eq!(
            matched(&set, "update the README").as_deref(),
            Some("documentation")
        );
        assert_eq!(
            matched(&set, "deploy to staging").as_deref(),
            Some("integration")
        );
        assert_eq!(
            matched(&set, "an analysis of logs").as_deref(),
            Some("intelligence")
        );
        assert_eq!(matched(&set, "hello").as_deref(), Some("any-agent"));
        let urgent = set.rule("urgent").unwrap();
        assert_eq!(urgent.spec.priority_boost, Some(Priority::Critical));
        assert_eq!(urgent.capability.as_deref(), Some("orchestration"));
    }

    #[test]
    fn custom_regex_rules_match() {
        let set = RuleSet::compile(
            parse(
                r#"[{"name": "tickets", "regex": "(?i)\\bJIRA-\\d+", "capability": "Triage"},
                   {"name": "db", "keywords": ["postgres"], "agents": ["dba"], "strategy": "least_loaded"}]"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            matched(&set, "look at jira-42 please").as_deref(),
            Some("tickets")
        );
        assert_eq!(set.rules[0].capability.as_deref(), Some("triage"));
        assert_eq!(matched(&set, "Postgres is slow").as_deref(), Some("db"));
        assert_eq!(set.rules[1].spec.strategy, StrategyKind::LeastLoaded);
        assert_eq!(matched(&set, "jira without number"), None);
    }

    #[test]
    fn an_invalid_regex_is_refused_naming_the_rule() {
        let spec = parse(r#"[{"name": "broken", "regex": "(unclosed"}]"#).unwrap();
        let error = RuleSet::compile(spec).unwrap_err();
        assert!(
            error.contains("\"broken\"") && error.contains("invalid regex"),
            "{error}"
        );
    }

    #[test]
    fn duplicate_names_and_unknown_fields_are_refused() {
        let spec = parse(r#"[{"name": "a"}, {"name": "a"}]"#).unwrap();
        assert!(RuleSet::compile(spec).unwrap_err().contains("twice"));
        let error = parse(r#"[{"name": "a", "capabilty": "x"}]"#).unwrap_err();
        assert!(error.contains("capabilty"), "{error}");
    }

    #[test]
    fn yaml_rule_sets_are_read() {
        let yaml = "capability_strategy: sticky\nrules:\n  - name: docs\n    keywords: [docs]\n    capability: documentation\n    priority_boost: high\n";
        let set = RuleSet::compile(parse(yaml).unwrap()).unwrap();
        assert_eq!(set.capability_strategy, StrategyKind::Sticky);
        assert_eq!(set.rules[0].spec.priority_boost, Some(Priority::High));
    }
}
