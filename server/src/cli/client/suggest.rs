//! "Did you mean": when the server does not know an agent, name the registered agents whose
//! names are close to what was typed.

use super::api::Client;

/// Suggestions offered at most.
pub const SUGGESTIONS_MAX: usize = 3;
/// Largest edit distance still offered, for names up to 9 characters; longer names allow one
/// more edit per 3 characters.
pub const EDIT_DISTANCE_MAX: usize = 2;

/// Registered names close to `typed`, closest first.
pub fn similar(typed: &str, names: &[String]) -> Vec<String> {
    let typed_lower = typed.to_lowercase();
    let allowed = EDIT_DISTANCE_MAX.max(typed.chars().count() / 3);
    let mut scored: Vec<(usize, &String)> = names
        .iter()
        .filter_map(|name| {
            let lower = name.to_lowercase();
            let distance = strsim::levenshtein(&typed_lower, &lower);
            let contains = !typed_lower.is_empty()
                && (lower.contains(&typed_lower) || typed_lower.contains(&lower));
            (distance <= allowed || contains).then_some((distance, name))
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(SUGGESTIONS_MAX)
        .map(|(_, name)| name.clone())
        .collect()
}

/// The sentence to add to "agent not found": similar names, or the known names when there
/// are few, or how to list them. Asks the server; says nothing when it cannot.
pub async fn hint(client: &Client, typed: &str) -> String {
    let Ok(agents) = client.agents().await else {
        return String::new();
    };
    let names: Vec<String> = agents.into_iter().map(|agent| agent.name).collect();
    let close = similar(typed, &names);
    if !close.is_empty() {
        return format!(" Did you mean {}?", quoted(&close));
    }
    let register = format!("register it with `switchboard register --agent {typed}`");
    if names.is_empty() {
        return format!(
            " No agents are registered yet: {register} (or let discovery find its worktree)."
        );
    }
    if names.len() <= 8 {
        return format!(" Known agents: {}. To add it, {register}.", quoted(&names));
    }
    format!(" List the agents with `switchboard agents`; to add it, {register}.")
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["frontend", "backend", "quality-agent", "docs"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn typos_suggest_the_closest_names_first() {
        assert_eq!(similar("fronted", &names()), ["frontend"]);
        assert_eq!(similar("backnd", &names()), ["backend"]);
        assert_eq!(similar("Quality", &names()), ["quality-agent"]);
    }

    #[test]
    fn unrelated_names_are_not_suggested() {
        assert!(similar("zzzzzz", &names()).is_empty());
    }
}
