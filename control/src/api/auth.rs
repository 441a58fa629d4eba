//! Bearer-token authentication of the admin API.
//!
//! The rules (README "Admin API"):
//! - every mutating call (any method but GET/HEAD/OPTIONS) needs
//!   `Authorization: Bearer TOKEN`; a missing or wrong token is 401 and
//!   changes nothing;
//! - with `[admin] protect_reads = true`, every call but `/healthz` and the
//!   status page's files (`/ui`, which hold no data) needs it;
//! - the token comes from the environment variable `admin.token_env`
//!   (default `SERIN_ADMIN_TOKEN`), read once at start;
//! - no token configured: allowed only when the admin address is loopback
//!   (then calls need no token; a warning is logged at start); on any other
//!   address serin refuses to start.
//!
//! Tokens are compared in constant time (over their SHA-256, so the
//! length does not leak either).

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ApiError, ApiState};

/// Who may call what.
#[derive(Clone, Default)]
pub struct Auth {
    /// SHA-256 of the token; `None`: no token (loopback only).
    token: Option<[u8; 32]>,
    protect_reads: bool,
}

/// serin must not start: the admin API would be open beyond loopback.
#[derive(Debug, thiserror::Error)]
#[error(
    "the admin API on {addr} is not loopback and no token is set: \
     set the environment variable {env} (or bind [admin] addr to 127.0.0.1)"
)]
pub struct OpenAdmin {
    addr: SocketAddr,
    env: String,
}

// === impl Auth ===

impl Auth {
    /// No token: every call allowed. For loopback-only admin listeners
    /// (tests, the demo).
    pub fn open() -> Self {
        Self::default()
    }

    /// A token every mutating call must carry.
    pub fn token(token: &str) -> Self {
        Self {
            token: Some(Sha256::digest(token.as_bytes()).into()),
            protect_reads: false,
        }
    }

    /// Also require the token on reads (all but `/healthz`).
    pub fn protect_reads(mut self, yes: bool) -> Self {
        self.protect_reads = yes;
        self
    }

    /// The binary's rule: `token` (from `admin.token_env`; empty counts as
    /// unset) for the admin API on `admin.addr`.
    ///
    /// # Errors
    /// No token and a non-loopback address.
    pub fn resolve(admin: &serin_config::Admin, token: Option<String>) -> Result<Self, OpenAdmin> {
        match token.filter(|t| !t.is_empty()) {
            Some(t) => Ok(Self::token(&t).protect_reads(admin.protect_reads)),
            None if admin.addr.ip().is_loopback() => {
                tracing::warn!(
                    addr = %admin.addr,
                    env = %admin.token_env,
                    "no admin token set: the admin API accepts changes from anyone on this host"
                );
                Ok(Self::open())
            }
            None => Err(OpenAdmin {
                addr: admin.addr,
                env: admin.token_env.clone(),
            }),
        }
    }

    /// Whether a token is required at all.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    fn allows(&self, req: &Request) -> bool {
        let Some(want) = &self.token else {
            return true;
        };
        let read = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        // `/healthz` and the status page's files hold no data.
        let open = |p: &str| p == "/healthz" || p == "/ui" || p.starts_with("/ui/");
        if read && (!self.protect_reads || open(req.uri().path())) {
            return true;
        }
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| Sha256::digest(t.trim().as_bytes()));
        given.is_some_and(|g| bool::from(g.as_slice().ct_eq(want.as_slice())))
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token (or its hash).
        f.debug_struct("Auth")
            .field("token", &self.token.is_some())
            .field("protect_reads", &self.protect_reads)
            .finish()
    }
}

/// The middleware: 401 before any extractor runs, so an unauthorized call
/// cannot even have its body parsed.
pub(crate) async fn require(State(st): State<ApiState>, req: Request, next: Next) -> Response {
    if st.auth.allows(&req) {
        next.run(req).await
    } else {
        ApiError::Unauthorized.into_response()
    }
}
