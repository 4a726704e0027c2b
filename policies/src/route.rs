//! Which service a request belongs to, from its Host header and path.
//!
//! Pure, so the dispatcher's hot path and the validator share one definition.
//! Rules: an exact host beats a wildcard (`*.example.com`, the longest suffix
//! first), which beats `*`; among routes of the same host rank, the longest
//! path prefix wins. Prefixes match whole path segments: `/api` matches `/api`
//! and `/api/items`, not `/apix`.

use crate::model::Route;

/// A parsed `route.host`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`: any host.
    Any,
    /// `*.example.com`: any subdomain (stored as `.example.com`).
    Suffix(String),
    /// An exact host name.
    Exact(String),
}

impl HostPattern {
    /// Parses a host pattern; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let t = text.to_ascii_lowercase();
        if t == "*" {
            return Ok(HostPattern::Any);
        }
        let (name, wildcard) = match t.strip_prefix("*.") {
            Some(rest) => (rest, true),
            None => (t.as_str(), false),
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() {
            return Err(format!("expected a host name after `*.`, found \"{text}\""));
        }
        if name.contains(':') {
            return Err(format!("host \"{text}\" has a port; hosts are matched without their port"));
        }
        if name.contains('/') {
            return Err(format!("host \"{text}\" looks like a URL; write only the host name"));
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(format!("expected \"*\", a host name or \"*.domain\", found \"{text}\""));
        }
        Ok(if wildcard { HostPattern::Suffix(format!(".{name}")) } else { HostPattern::Exact(name.to_string()) })
    }

    /// How specific the pattern is when it matches `host` (higher wins), or
    /// `None` when it does not match. `host` must be lower case, without port.
    fn rank(&self, host: &str) -> Option<usize> {
        match self {
            HostPattern::Any => Some(0),
            HostPattern::Suffix(s) => (host.len() > s.len() && host.ends_with(s.as_str())).then_some(s.len()),
            HostPattern::Exact(h) => (h == host).then_some(usize::MAX),
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Suffix(s) => write!(f, "*{s}"),
            HostPattern::Exact(h) => f.write_str(h),
        }
    }
}

/// Checks and normalises a path prefix: starts with `/`, no query, fragment or
/// spaces; a trailing `/` is dropped (except for the root).
pub fn normalize_prefix(text: &str) -> Result<String, String> {
    if !text.starts_with('/') {
        return Err(format!("expected a path prefix starting with `/`, found \"{text}\""));
    }
    if let Some(c) = text.chars().find(|c| matches!(c, '?' | '#') || c.is_whitespace() || c.is_control()) {
        return Err(format!("path prefix \"{text}\" contains {c:?}; only the path is matched"));
    }
    let trimmed = text.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/".into() } else { trimmed.to_string() })
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The routes of a policy, ready to match requests.
#[derive(Clone, Debug)]
pub struct RouteTable {
    routes: Vec<(HostPattern, String)>,
}

impl RouteTable {
    /// Builds the table from routes in service order; the i-th route selects
    /// service i. Routes were validated when the policy was loaded.
    pub fn new<'a>(routes: impl IntoIterator<Item = &'a Route>) -> Result<RouteTable, String> {
        let mut out = Vec::new();
        for r in routes {
            out.push((HostPattern::parse(&r.host)?, normalize_prefix(&r.path_prefix)?));
        }
        Ok(RouteTable { routes: out })
    }

    /// The index of the service a request for `host` (a Host header value,
    /// possibly with a port) and `path` goes to.
    pub fn select(&self, host: &str, path: &str) -> Option<usize> {
        let host = strip_port(host).trim_end_matches('.').to_ascii_lowercase();
        let mut best: Option<(usize, usize, usize)> = None;
        for (i, (pattern, prefix)) in self.routes.iter().enumerate() {
            let Some(host_rank) = pattern.rank(&host) else {
                continue;
            };
            if !prefix_matches(prefix, path) {
                continue;
            }
            let key = (host_rank, prefix.len());
            if best.is_none_or(|(h, p, _)| key > (h, p)) {
                best = Some((host_rank, prefix.len(), i));
            }
        }
        best.map(|(_, _, i)| i)
    }
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(routes: &[(&str, &str)]) -> RouteTable {
        let routes: Vec<Route> =
            routes.iter().map(|(h, p)| Route { host: h.to_string(), path_prefix: p.to_string() }).collect();
        RouteTable::new(&routes).unwrap()
    }

    #[test]
    fn exact_host_beats_wildcard_beats_any() {
        let t = table(&[("*", "/"), ("*.example.com", "/"), ("shop.example.com", "/")]);
        assert_eq!(t.select("shop.example.com:8080", "/x"), Some(2));
        assert_eq!(t.select("blog.example.com", "/x"), Some(1));
        assert_eq!(t.select("example.com", "/x"), Some(0));
        assert_eq!(t.select("SHOP.Example.com.", "/"), Some(2));
    }

    #[test]
    fn longest_prefix_on_segment_boundaries() {
        let t = table(&[("*", "/"), ("*", "/api"), ("*", "/api/v2/")]);
        assert_eq!(t.select("h", "/api"), Some(1));
        assert_eq!(t.select("h", "/api/items"), Some(1));
        assert_eq!(t.select("h", "/apix"), Some(0));
        assert_eq!(t.select("h", "/api/v2/x"), Some(2));
        assert_eq!(t.select("h", "/api/v2"), Some(2));
    }

    #[test]
    fn no_route_means_none() {
        let t = table(&[("a.example.com", "/")]);
        assert_eq!(t.select("b.example.com", "/"), None);
        let t = table(&[("*", "/api")]);
        assert_eq!(t.select("h", "/"), None);
    }

    #[test]
    fn host_patterns_are_checked() {
        assert!(HostPattern::parse("example.com:80").unwrap_err().contains("port"));
        assert!(HostPattern::parse("http://x").is_err());
        assert!(HostPattern::parse("*..com").is_err());
        assert!(HostPattern::parse("*.").unwrap_err().contains("after `*.`"));
        assert_eq!(HostPattern::parse("Example.com.").unwrap(), HostPattern::Exact("example.com".into()));
        assert!(HostPattern::parse("bad_host").is_err());
        assert_eq!(HostPattern::parse("*.Example.com").unwrap(), HostPattern::Suffix(".example.com".into()));
        assert!(normalize_prefix("api").is_err());
        assert!(normalize_prefix("/a?b").is_err());
        assert_eq!(normalize_prefix("/api/").unwrap(), "/api");
        assert_eq!(normalize_prefix("///").unwrap(), "/");
    }

    #[test]
    fn ipv6_hosts_lose_their_port() {
        assert_eq!(strip_port("[::1]:8080"), "::1");
        assert_eq!(strip_port("localhost:80"), "localhost");
        assert_eq!(strip_port("localhost"), "localhost");
    }
}
