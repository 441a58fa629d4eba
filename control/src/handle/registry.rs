//! Long-lived per-(route, version) objects handed out by name, so a table
//! swap finds the breaker or telemetry of a version it already knew.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Name pair → one shared `T`. Control-side only (the compiler asks; the
/// request path reads the `Arc` from the snapshot).
#[derive(Debug)]
pub struct Registry<T> {
    map: Mutex<HashMap<(String, String), Arc<T>>>,
}

// === impl Registry ===

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Default> Registry<T> {
    /// The object for (`route`, `version`), made on first use.
    pub fn get(&self, route: &str, version: &str) -> Arc<T> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((route.to_owned(), version.to_owned()))
            .or_default()
            .clone()
    }
}
