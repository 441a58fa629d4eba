//! Host and path matching, compiled: the most specific host wins
//! (exact, then `*.suffix`, then `*`), then the longest `path_prefix`.

use serin_config::{HostMatch, Route};

/// Match entries in priority order: the first that matches is the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteIndex {
    entries: Box<[Entry]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    host: HostMatch,
    prefix: Box<str>,
    route: usize,
}

// === impl RouteIndex ===

impl RouteIndex {
    /// One entry per (route, host pattern), sorted most specific first.
    pub fn new(routes: &[Route]) -> Self {
        let mut entries: Vec<Entry> = routes
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                r.hosts.iter().map(move |h| Entry {
                    host: h.clone(),
                    prefix: r.path_prefix.as_str().into(),
                    route: i,
                })
            })
            .collect();
        // Stable sort: among equals, file order decides.
        entries.sort_by_key(|e| (host_rank(&e.host), std::cmp::Reverse(e.prefix.len())));
        Self {
            entries: entries.into(),
        }
    }

    /// The route for `host` (without port, any case) and `path`.
    #[inline]
    pub fn find(&self, host: &str, path: &str) -> Option<usize> {
        self.entries
            .iter()
            .find(|e| host_matches(&e.host, host) && path.starts_with(&*e.prefix))
            .map(|e| e.route)
    }
}

fn host_rank(h: &HostMatch) -> (u8, std::cmp::Reverse<usize>) {
    match h {
        HostMatch::Exact(_) => (0, std::cmp::Reverse(0)),
        // Longer suffixes are more specific.
        HostMatch::Suffix(s) => (1, std::cmp::Reverse(s.len())),
        HostMatch::Any => (2, std::cmp::Reverse(0)),
    }
}

fn host_matches(pattern: &HostMatch, host: &str) -> bool {
    match pattern {
        HostMatch::Any => true,
        HostMatch::Exact(h) => h.eq_ignore_ascii_case(host),
        HostMatch::Suffix(s) => {
            host.len() > s.len()
                && host.is_char_boundary(host.len() - s.len())
                && host[host.len() - s.len()..].eq_ignore_ascii_case(s)
        }
    }
}
