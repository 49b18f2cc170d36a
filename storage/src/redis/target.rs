//! Which Redis a URL names: one server (`redis://`, `rediss://`), a Redis Cluster given by seed
//! nodes (`redis+cluster://`), or a master found through Sentinel (`redis+sentinel://`), and the
//! options every Redis URL takes (`?replicas=N&replica_timeout_ms=T`).

use switchboard_engine::StorageError;

/// How long `WAIT` waits for replicas by default, in milliseconds, when `replicas` is set
/// without `replica_timeout_ms`.
pub const REPLICA_TIMEOUT_MS_DEFAULT: u64 = 1_000;

/// The deployment a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Topology {
    /// One server: the URL (without switchboard's own options) for `redis::Client::open`.
    Single(String),
    /// A Redis Cluster: one `redis://` URL per seed node.
    Cluster(Vec<String>),
    /// A master monitored by Sentinel.
    Sentinel {
        /// One `redis://` URL per sentinel.
        sentinels: Vec<String>,
        /// The name the sentinels monitor the master under.
        service: String,
        /// The master's credentials, when the URL has them.
        username: Option<String>,
        password: Option<String>,
    },
}

/// A Redis storage URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RedisTarget {
    pub topology: Topology,
    /// Replicas that must confirm a commit batch (`WAIT`) before it counts as durable.
    pub replicas: u32,
    /// How long to wait for them per batch, in milliseconds.
    pub replica_timeout_ms: u64,
}

const EXPECTED: &str = "expected redis://[user:password@]host[:port][/db], rediss://... for TLS, \
     redis+cluster://host:port[,host:port...] or redis+sentinel://host:port[,host:port...]/SERVICE, \
     each optionally with ?replicas=N&replica_timeout_ms=T";

impl RedisTarget {
    /// Reads `url`; `shown_url` (password hidden) is what errors name.
    pub(crate) fn parse(url: &str, shown_url: &str) -> Result<Self, StorageError> {
        let bad = |problem: String| {
            StorageError::Failed(format!(
                "invalid Redis URL {shown_url}: {problem} ({EXPECTED})"
            ))
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("no scheme".into()))?;
        let (rest, fragment) = match rest.split_once('#') {
            Some((rest, fragment)) => (rest, Some(fragment)),
            None => (rest, None),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, query),
            None => (rest, ""),
        };
        let mut replicas = 0;
        let mut replica_timeout_ms = None;
        let mut passed_on = Vec::new();
        for option in query.split('&').filter(|option| !option.is_empty()) {
            match option.split_once('=') {
                Some(("replicas", value)) => {
                    replicas = value.parse().map_err(|_| {
                        bad(format!(
                            "replicas={value} is not a whole number of replicas"
                        ))
                    })?;
                }
                Some(("replica_timeout_ms", value)) => {
                    let ms: u64 = value.parse().ok().filter(|ms| *ms > 0).ok_or_else(|| {
                        bad(format!(
                            "replica_timeout_ms={value} is not a positive number of milliseconds"
                        ))
                    })?;
                    replica_timeout_ms = Some(ms);
                }
                _ => passed_on.push(option),
            }
        }
        if replica_timeout_ms.is_some() && replicas == 0 {
            return Err(bad("replica_timeout_ms is set but replicas is not".into()));
        }
        let topology = match scheme {
            "redis" | "rediss" => {
                let mut single = format!("{scheme}://{rest}");
                if !passed_on.is_empty() {
                    single.push('?');
                    single.push_str(&passed_on.join("&"));
                }
                if let Some(fragment) = fragment {
                    single.push('#');
                    single.push_str(fragment);
                }
                Topology::Single(single)
            }
            "redis+cluster" | "redis+sentinel" => {
                if let Some(option) = passed_on.first() {
                    return Err(bad(format!("unknown option {option:?}")));
                }
                if fragment.is_some() {
                    return Err(bad("TLS (#insecure) is for rediss:// URLs only".into()));
                }
                let (authority, path) = match rest.split_once('/') {
                    Some((authority, path)) => (authority, path),
                    None => (rest, ""),
                };
                let (user_info, hosts) = match authority.rsplit_once('@') {
                    Some((user_info, hosts)) => (Some(user_info), hosts),
                    None => (None, authority),
                };
                let hosts: Vec<&str> = hosts.split(',').filter(|h| !h.is_empty()).collect();
                if hosts.is_empty() {
                    return Err(bad("no host:port listed".into()));
                }
                if scheme == "redis+cluster" {
                    if !path.is_empty() {
                        return Err(bad(format!(
                            "a Redis Cluster has no databases or service names, but the URL \
                             has the path /{path}"
                        )));
                    }
                    let prefix = user_info.map(|info| format!("{info}@")).unwrap_or_default();
                    Topology::Cluster(
                        hosts
                            .iter()
                            .map(|host| format!("redis://{prefix}{host}"))
                            .collect(),
                    )
                } else {
                    if path.is_empty() || path.contains('/') {
                        return Err(bad("name the master's service after the hosts, as in \
                             redis+sentinel://127.0.0.1:26379/mymaster"
                            .into()));
                    }
                    let (username, password) = match user_info {
                        None => (None, None),
                        Some(info) => match info.split_once(':') {
                            Some((user, password)) => (
                                Some(user.to_string()).filter(|user| !user.is_empty()),
                                Some(password.to_string()),
                            ),
                            None => (Some(info.to_string()), None),
                        },
                    };
                    Topology::Sentinel {
                        sentinels: hosts.iter().map(|host| format!("redis://{host}")).collect(),
                        service: path.to_string(),
                        username,
                        password,
                    }
                }
            }
            other => return Err(bad(format!("unknown scheme {other}://"))),
        };
        Ok(RedisTarget {
            topology,
            replicas,
            replica_timeout_ms: replica_timeout_ms.unwrap_or(REPLICA_TIMEOUT_MS_DEFAULT),
        })
    }

    /// A Redis Cluster: every atomic unit of a commit is sent on its own (each lives in one
    /// slot), and batches are never staged.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.topology, Topology::Cluster(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(url: &str) -> RedisTarget {
        RedisTarget::parse(url, url).unwrap_or_else(|error| panic!("{url}: {error}"))
    }

    #[test]
    fn a_single_server_keeps_its_url_without_our_options() {
        let target = parsed("redis://:pw@127.0.0.1:6380/2?replicas=1&replica_timeout_ms=250");
        assert_eq!(
            target.topology,
            Topology::Single("redis://:pw@127.0.0.1:6380/2".into())
        );
        assert_eq!((target.replicas, target.replica_timeout_ms), (1, 250));
        let tls = parsed("rediss://cache:6380#insecure");
        assert_eq!(
            tls.topology,
            Topology::Single("rediss://cache:6380#insecure".into())
        );
        assert_eq!(tls.replicas, 0);
    }

    #[test]
    fn a_cluster_lists_its_seed_nodes_with_the_credentials() {
        let target = parsed("redis+cluster://u:p@127.0.0.1:7000,127.0.0.1:7001?replicas=1");
        assert_eq!(
            target.topology,
            Topology::Cluster(vec![
                "redis://u:p@127.0.0.1:7000".into(),
                "redis://u:p@127.0.0.1:7001".into()
            ])
        );
        assert_eq!(target.replica_timeout_ms, REPLICA_TIMEOUT_MS_DEFAULT);
        assert!(target.is_cluster());
    }

    #[test]
    fn sentinel_needs_a_service_name() {
        let target = parsed("redis+sentinel://:secret@127.0.0.1:26379,127.0.0.1:26380/mymaster");
        assert_eq!(
            target.topology,
            Topology::Sentinel {
                sentinels: vec![
                    "redis://127.0.0.1:26379".into(),
                    "redis://127.0.0.1:26380".into()
                ],
                service: "mymaster".into(),
                username: None,
                password: Some("secret".into()),
            }
        );
        let error = RedisTarget::parse("redis+sentinel://h:1", "x").unwrap_err();
        assert!(error.to_string().contains("mymaster"), "{error}");
    }

    #[test]
    fn bad_options_are_named() {
        for (url, named) in [
            ("redis://h?replicas=two", "replicas=two"),
            ("redis://h?replica_timeout_ms=5", "replicas is not"),
            ("redis+cluster://h:1?db=2", "db=2"),
            ("redis+cluster://h:1/0", "/0"),
            ("redis+cluster://", "no host"),
        ] {
            let error = RedisTarget::parse(url, url).unwrap_err().to_string();
            assert!(error.contains(named), "{url}: {error}");
        }
    }
}
