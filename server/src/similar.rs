//! "Did you mean": the known names close to one a person typed, for an unknown agent (the
//! client's hint) and an unknown capability (routing's note). One measure for both, so the
//! two suggest alike.

/// Suggestions offered at most.
pub const SUGGESTIONS_MAX: usize = 3;
/// Largest edit distance still suggested, for names up to 9 characters; longer names allow one
/// more edit per 3 characters.
pub const EDIT_DISTANCE_MAX: usize = 2;

/// The names of `known` close to `typed` (ignoring case: within the edit distance, or one
/// containing the other), closest first, at most [`SUGGESTIONS_MAX`].
pub fn similar<'a>(typed: &str, known: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let typed = typed.to_lowercase();
    let allowed = EDIT_DISTANCE_MAX.max(typed.chars().count() / 3);
    let mut scored: Vec<(usize, &String)> = known
        .into_iter()
        .filter_map(|name| {
            let lower = name.to_lowercase();
            let distance = strsim::levenshtein(&typed, &lower);
            let contains = !typed.is_empty() && (lower.contains(&typed) || typed.contains(&lower));
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

/// Names as a sentence fragment: `` `a`, `b` ``.
pub fn quoted(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    quoted.join(", ")
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

    #[test]
    fn an_empty_name_is_contained_in_none() {
        assert!(similar("", &["frontend".to_string()]).is_empty());
    }
}
