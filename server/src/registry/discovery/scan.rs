//! Reading the file system: which directories are agents, and what their files say.
//!
//! Blocking I/O only (run it on a blocking thread). Every read is bounded: files by
//! [`AGENT_FILE_BYTES_MAX`] and [`DECLARATION_FILE_BYTES_MAX`], directories by
//! [`ROOT_ENTRIES_MAX`].

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;
use utoipa::ToSchema;

use super::capabilities::{self, CapabilityOrigin, CapabilitySource};
use super::front_matter::{self, Declaration};
use crate::api::wire::Metadata;
use crate::registry::validate_name;

/// Files that make a directory an agent, in order of preference.
pub const AGENT_FILES: [&str; 2] = ["CLAUDE.md", "AGENTS.md"];
/// Declaration files read beside the agent file, in this order.
pub const DECLARATION_FILES: [&str; 3] = ["agent.yml", "agent.yaml", "config.json"];
/// Most bytes of an agent file read for keywords and front matter.
pub const AGENT_FILE_BYTES_MAX: u64 = 1024 * 1024;
/// Most bytes of a declaration file read.
pub const DECLARATION_FILE_BYTES_MAX: u64 = 64 * 1024;
/// Most entries of one worktree root looked at.
pub const ROOT_ENTRIES_MAX: usize = 10_000;

/// How a directory came to be looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// An immediate subdirectory of a worktree root.
    WorktreeRoot,
    /// A linked worktree reported by `git worktree list`.
    GitWorktree,
}

/// A directory that is an agent, and what its files say.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The directory's name: the agent's name.
    pub name: String,
    /// The directory (canonical when it could be resolved).
    pub path: PathBuf,
    /// `CLAUDE.md` or `AGENTS.md`.
    pub agent_file: String,
    /// How it was found.
    pub found_by: FoundBy,
    /// Its capabilities with their provenance.
    pub capabilities: Vec<CapabilityOrigin>,
    /// `role` of its declarations.
    pub role: Option<String>,
    /// `metadata` of its declarations (earlier files win on a shared key).
    pub metadata: Metadata,
    /// Declarations that could not be read (the agent is still found, from keywords).
    pub warnings: Vec<String>,
}

/// A directory that looked like an agent but was not taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Skipped {
    /// The directory.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// Where to look.
#[derive(Debug, Clone, Default)]
pub struct ScanInput {
    /// Directories whose immediate subdirectories may be agents.
    pub roots: Vec<PathBuf>,
    /// Linked git worktrees, each possibly an agent.
    pub git_worktrees: Vec<PathBuf>,
}

/// What a scan found.
#[derive(Debug, Clone, Default)]
pub struct ScanResult {
    /// Agents, each name once.
    pub found: Vec<Found>,
    /// Directories not taken, with the reason.
    pub skipped: Vec<Skipped>,
}

/// Looks at every root's subdirectories, then at the git worktrees not seen already.
pub fn scan(input: &ScanInput) -> ScanResult {
    let mut result = ScanResult::default();
    let mut by_name: HashMap<String, PathBuf> = HashMap::new();
    let mut seen_paths = std::collections::HashSet::new();
    let mut candidates: Vec<(PathBuf, FoundBy)> = Vec::new();
    for root in &input.roots {
        candidates.extend(
            subdirectories(root)
                .into_iter()
                .map(|dir| (dir, FoundBy::WorktreeRoot)),
        );
    }
    candidates.extend(
        input
            .git_worktrees
            .iter()
            .map(|dir| (dir.clone(), FoundBy::GitWorktree)),
    );
    for (dir, found_by) in candidates {
        let path = std::fs::canonicalize(&dir).unwrap_or(dir);
        if !seen_paths.insert(path.clone()) {
            continue; // a git worktree inside a root: already looked at
        }
        let Some(agent_file) = AGENT_FILES.iter().find(|f| path.join(f).is_file()) else {
            continue;
        };
        let skip = |reason: String| Skipped {
            path: path.display().to_string(),
            reason,
        };
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            result
                .skipped
                .push(skip("the directory name is not UTF-8".into()));
            continue;
        };
        if let Err(error) = validate_name("directory name", &name) {
            result.skipped.push(skip(error.detail()));
            continue;
        }
        if let Some(refusal) = crate::registry::names::refusal(&name) {
            result
                .skipped
                .push(skip(format!("the directory's {refusal}")));
            continue;
        }
        if let Some(first) = by_name.get(&name) {
            result.skipped.push(skip(format!(
                "the agent name {name:?} is already taken by {}",
                first.display()
            )));
            continue;
        }
        by_name.insert(name.clone(), path.clone());
        result.found.push(examine(name, path, agent_file, found_by));
    }
    result
}

/// Immediate subdirectories of `root`, sorted (nothing when it does not exist).
pub(super) fn subdirectories(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .take(ROOT_ENTRIES_MAX)
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Reads an agent directory's files into a [`Found`].
fn examine(name: String, path: PathBuf, agent_file: &str, found_by: FoundBy) -> Found {
    let mut warnings = Vec::new();
    let text = read_bounded(&path.join(agent_file), AGENT_FILE_BYTES_MAX).unwrap_or_else(|error| {
        warnings.push(format!("{agent_file}: {error}"));
        String::new()
    });
    let (front_matter, body) = front_matter::split(&text);
    let mut declarations: Vec<(String, Declaration)> = Vec::new();
    if let Some(yaml) = front_matter {
        match front_matter::parse_yaml(yaml) {
            Ok(declaration) => declarations.push((agent_file.to_string(), declaration)),
            Err(error) => warnings.push(format!("front matter of {agent_file}: {error}")),
        }
    }
    for file in DECLARATION_FILES {
        let file_path = path.join(file);
        if !file_path.is_file() {
            continue;
        }
        let parsed = read_bounded(&file_path, DECLARATION_FILE_BYTES_MAX).and_then(|text| {
            if file.ends_with(".json") {
                front_matter::parse_json(&text)
            } else {
                front_matter::parse_yaml(&text)
            }
        });
        match parsed {
            Ok(declaration) => declarations.push((file.to_string(), declaration)),
            Err(error) => warnings.push(format!("{file}: {error}")),
        }
    }
    let keywords = capabilities::from_keywords(body, agent_file);
    let has_declaration = declarations.iter().any(|(_, d)| d.declares_capabilities());
    let mut declared = Vec::new();
    let mut role = None;
    let mut metadata = Metadata::new();
    for (file, declaration) in declarations {
        for capability in declaration.capabilities.iter().flatten() {
            declared.push(origin(capability, CapabilitySource::Declared, &file));
        }
        if let Some(declared_role) = &declaration.role {
            declared.push(origin(declared_role, CapabilitySource::Role, &file));
            role.get_or_insert_with(|| declared_role.clone());
        }
        for (key, value) in declaration.metadata {
            metadata.entry(key).or_insert(value);
        }
    }
    if let Some(role) = &role {
        metadata
            .entry("role".to_string())
            .or_insert_with(|| role.clone().into());
    }
    Found {
        name,
        path,
        agent_file: agent_file.to_string(),
        found_by,
        capabilities: capabilities::resolve(keywords, declared, has_declaration),
        role,
        metadata,
        warnings,
    }
}

fn origin(name: &str, source: CapabilitySource, file: &str) -> CapabilityOrigin {
    CapabilityOrigin {
        name: capabilities::normalize(name),
        source,
        file: file.to_string(),
        keyword: None,
    }
}

/// The first `limit` bytes of a file as text (invalid UTF-8 replaced).
fn read_bounded(path: &Path, limit: u64) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|error| error.to_string())?;
    let mut bytes = Vec::new();
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(|error| error.to_string())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn capability_names(found: &Found) -> Vec<&str> {
        found.capabilities.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn subdirectories_with_an_agent_file_are_agents() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("worktrees");
        write(&root.join("tester/CLAUDE.md"), "# Quality agent\n");
        write(&root.join("writer/AGENTS.md"), "Documentation work.\n");
        write(&root.join("plain/README.md"), "not an agent\n");
        std::fs::write(root.join("stray-file.md"), "x").unwrap();
        let result = scan(&ScanInput {
            roots: vec![root, dir.path().join("new-worktrees")],
            git_worktrees: Vec::new(),
        });
        let names: Vec<&str> = result.found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["tester", "writer"]);
        assert_eq!(capability_names(&result.found[0]), ["general", "quality"]);
        assert_eq!(result.found[1].agent_file, "AGENTS.md");
        assert_eq!(capability_names(&result.found[1]), ["documentation"]);
    }

    #[test]
    fn front_matter_and_agent_yml_override_keywords_with_provenance() {
        let dir = tempfile::tempdir().unwrap();
        let agent = dir.path().join("worktrees/deployer");
        write(
            &agent.join("CLAUDE.md"),
            "---\ncapabilities: [Integration]\nrole: deployer\n---\nA quality agent.\n",
        );
        write(
            &agent.join("agent.yml"),
            "capabilities: [monitoring]\nmetadata:\n  team: ops\n",
        );
        let result = scan(&ScanInput {
            roots: vec![dir.path().join("worktrees")],
            git_worktrees: Vec::new(),
        });
        let found = &result.found[0];
        assert_eq!(
            capability_names(found),
            ["integration", "deployer", "monitoring"]
        );
        assert_eq!(found.capabilities[0].file, "CLAUDE.md");
        assert_eq!(found.capabilities[1].source, CapabilitySource::Role);
        assert_eq!(found.capabilities[2].file, "agent.yml");
        assert_eq!(found.metadata["team"], "ops");
        assert_eq!(found.metadata["role"], "deployer");
    }

    #[test]
    fn a_broken_declaration_is_reported_and_keywords_are_used() {
        let dir = tempfile::tempdir().unwrap();
        let agent = dir.path().join("worktrees/broken");
        write(&agent.join("CLAUDE.md"), "Integration agent\n");
        write(&agent.join("config.json"), "{ not json");
        let result = scan(&ScanInput {
            roots: vec![dir.path().join("worktrees")],
            git_worktrees: Vec::new(),
        });
        let found = &result.found[0];
        assert_eq!(capability_names(found), ["general", "integration"]);
        assert!(found.warnings[0].starts_with("config.json:"), "{found:?}");
    }

    #[test]
    fn a_name_taken_by_an_earlier_root_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("worktrees/twin/CLAUDE.md"), "a");
        write(&dir.path().join("new-worktrees/twin/CLAUDE.md"), "b");
        write(&dir.path().join("new-worktrees/auto/CLAUDE.md"), "c");
        let result = scan(&ScanInput {
            roots: vec![
                dir.path().join("worktrees"),
                dir.path().join("new-worktrees"),
            ],
            git_worktrees: Vec::new(),
        });
        assert_eq!(result.found.len(), 1);
        assert!(result.found[0].path.ends_with("worktrees/twin"));
        let reasons: Vec<&str> = result.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert!(reasons[0].contains("reserved"), "{reasons:?}");
        assert!(reasons[1].contains("already taken"), "{reasons:?}");
    }

    #[test]
    fn a_git_worktree_inside_a_root_is_found_once() {
        let dir = tempfile::tempdir().unwrap();
        let agent = dir.path().join("worktrees/solo");
        write(&agent.join("CLAUDE.md"), "x");
        let result = scan(&ScanInput {
            roots: vec![dir.path().join("worktrees")],
            git_worktrees: vec![agent.clone()],
        });
        assert_eq!(result.found.len(), 1);
        assert_eq!(result.found[0].found_by, FoundBy::WorktreeRoot);
        assert!(result.skipped.is_empty());
    }
}
