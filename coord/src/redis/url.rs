//! Redis URLs: one server (`redis://`, `rediss://`) or a Redis Cluster
//! (`redis+cluster://h:p[,h:p…]`, `rediss+cluster://…`). A cluster URL
//! names seed nodes only: the client learns the rest of the topology from
//! them, so any reachable seed is enough to start. Errors never quote the
//! URL, which may hold a password.

use redis::IntoConnectionInfo;

use crate::error::{CoordError, Result};

/// The cluster schemes and the plain scheme each seed is reached with.
const CLUSTER_SCHEMES: [(&str, &str); 2] = [
    ("redis+cluster://", "redis://"),
    ("rediss+cluster://", "rediss://"),
];

/// A parsed Redis URL.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisUrl {
    /// One server (or a proxy that looks like one).
    Single(String),
    /// A Redis Cluster, by its seed nodes as plain URLs that share the
    /// user, password, TLS mode and options of the cluster URL.
    Cluster(Vec<String>),
}

/// Never prints the URLs: they may hold a password.
impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Single(_) => f.write_str("RedisUrl::Single"),
            Self::Cluster(seeds) => write!(f, "RedisUrl::Cluster({} seeds)", seeds.len()),
        }
    }
}

impl RedisUrl {
    /// Parses `url` and checks every node URL as the driver will, so a
    /// malformed one fails here with the reason rather than at connect.
    pub fn parse(url: &str) -> Result<Self> {
        let parsed = match split_cluster(url)? {
            Some(seeds) => Self::Cluster(seeds),
            None => Self::Single(url.to_owned()),
        };
        for node in parsed.nodes() {
            check_node(node)?;
        }
        Ok(parsed)
    }

    /// The plain URL of every node named.
    pub fn nodes(&self) -> &[String] {
        match self {
            Self::Single(url) => std::slice::from_ref(url),
            Self::Cluster(seeds) => seeds,
        }
    }
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// The seed URLs of a cluster URL, or `None` for any other scheme. The
/// user and password (before the last `@`) and everything after the host
/// list (`/db`, `?…`, `#insecure`) are repeated for every seed. Only an
/// empty host is refused here; [`RedisUrl::parse`] checks each seed.
pub fn split_cluster(url: &str) -> Result<Option<Vec<String>>> {
    let Some((scheme, plain)) = CLUSTER_SCHEMES
        .iter()
        .find(|(scheme, _)| starts_with_ignore_case(url, scheme))
    else {
        return Ok(None);
    };
    let (userinfo, hosts, tail) = split_authority(&url[scheme.len()..]);
    let mut seeds = Vec::new();
    for host in hosts.split(',') {
        if host.trim().is_empty() {
            return Err(CoordError::InvalidOptions(format!(
                "invalid Redis URL: a {scheme} URL lists nodes as host:port separated by commas, \
                 and one of them is empty"
            )));
        }
        seeds.push(format!("{plain}{userinfo}{host}{tail}"));
    }
    Ok(Some(seeds))
}

/// `node_url` (one node's URL, as [`split_cluster`] makes them) with its
/// `host:port` replaced by `address`: the same scheme, credentials and
/// options for a node learnt from the cluster's topology.
pub fn with_address(node_url: &str, address: &str) -> String {
    let Some(scheme_end) = node_url.find("://").map(|i| i + 3) else {
        return node_url.to_owned();
    };
    let (userinfo, _, tail) = split_authority(&node_url[scheme_end..]);
    format!("{}{userinfo}{address}{tail}", &node_url[..scheme_end])
}

/// What follows a URL's `scheme://`, as (user and password with their
/// `@`, the host list, the rest from `/`, `?` or `#` on). The last `@`
/// ends the user part, so a password may hold one.
fn split_authority(rest: &str) -> (&str, &str, &str) {
    let hosts_start = rest.rfind('@').map_or(0, |at| at + 1);
    let hosts_end = rest[hosts_start..]
        .find(['/', '?', '#'])
        .map_or(rest.len(), |i| hosts_start + i);
    (
        &rest[..hosts_start],
        &rest[hosts_start..hosts_end],
        &rest[hosts_end..],
    )
}

/// Parses one node URL as the driver will; the reason, never the URL.
fn check_node(url: &str) -> Result<()> {
    let invalid =
        |reason: String| CoordError::InvalidOptions(format!("invalid Redis URL: {reason}"));
    let parsed = redis::parse_redis_url(url).ok_or_else(|| invalid("malformed URL".into()))?;
    parsed
        .into_connection_info()
        .map(|_| ())
        .map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_url_becomes_one_url_per_seed_with_shared_credentials_and_options() {
        let url = RedisUrl::parse(
            "rediss+cluster://u:p%40ss@10.0.0.1:7000,10.0.0.2:7001/?protocol=resp3#insecure",
        )
        .expect("valid");
        assert_eq!(
            url,
            RedisUrl::Cluster(vec![
                "rediss://u:p%40ss@10.0.0.1:7000/?protocol=resp3#insecure".into(),
                "rediss://u:p%40ss@10.0.0.2:7001/?protocol=resp3#insecure".into(),
            ])
        );
        assert!(matches!(url, RedisUrl::Cluster(_)));
        let one = RedisUrl::parse("REDIS+CLUSTER://h:1").expect("valid");
        assert_eq!(one.nodes(), ["redis://h:1".to_owned()]);
    }

    #[test]
    fn a_learnt_node_gets_the_seed_s_credentials_and_options() {
        assert_eq!(
            with_address(
                "rediss://u:p@w@h1:1/2?protocol=resp3#insecure",
                "10.0.0.9:7002"
            ),
            "rediss://u:p@w@10.0.0.9:7002/2?protocol=resp3#insecure"
        );
        assert_eq!(
            with_address("redis://127.0.0.1:7001", "127.0.0.1:7005"),
            "redis://127.0.0.1:7005"
        );
        assert_eq!(with_address("not a url", "h:1"), "not a url");
    }

    #[test]
    fn plain_urls_stay_single() {
        let url = RedisUrl::parse("redis://:pw@127.0.0.1:6379/2").expect("valid");
        assert_eq!(url, RedisUrl::Single("redis://:pw@127.0.0.1:6379/2".into()));
        assert_eq!(split_cluster("redis://h:1").expect("plain"), None);
        assert!(
            split_cluster("rediss+cluster://h:1")
                .expect("cluster")
                .is_some()
        );
    }

    #[test]
    fn bad_cluster_urls_are_refused_without_echoing_them() {
        for bad in [
            "redis+cluster://user:secret@h:1,,h:2",
            "redis+cluster://user:secret@h:99999",
            "redis+cluster://",
        ] {
            let err = RedisUrl::parse(bad).expect_err(bad);
            assert!(!err.to_string().contains("secret"), "{err}");
            assert!(err.to_string().contains("invalid Redis URL"), "{err}");
        }
        assert!(!format!("{:?}", RedisUrl::parse("redis://:secret@h").unwrap()).contains("secret"));
    }
}
