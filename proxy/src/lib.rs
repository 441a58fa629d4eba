//! serin-proxy: the data plane and the `serin` binary.
//!
//! It owns the listeners (HTTP/1.1, h2c, TLS with ALPN), routing a
//! request (host and path), the weighted and sticky pick, forwarding to the
//! picked version over pooled keep-alive connections, header hygiene
//! (hop-by-hop, `X-Forwarded-*`, `Via`, `x-request-id`), WebSocket
//! pass-through, and the translation of every failure into one client
//! answer. The request path reads the live table once per request through
//! `serin_control::Live::load`: no lock, no clone of the table.
//!
//! It decides nothing about weights: that is `serin-control`'s job.
//!
//! # Layout
//! - `app`: the one assembler — config to a running proxy + admin API.
//! - `server`: accept loops, connection serving, graceful drain; `workers`:
//!   the data-plane threads of `serin run`, one runtime each; `limits`:
//!   per-connection clocks (header read, idle); `tls`: rustls and
//!   certificate reload; `smuggling`: ambiguous framing refused.
//! - `proxy`: the request path: `route` → `pick` → `upstream` → response.
//! - `route`, `pick`, `headers`, `upstream`, `error` (`rescue`): its steps;
//!   `host`: the request's host checked (RFC 9112 §3.2) before routing.
//! - `cli`, `demo`: the `serin` command line and the embedded demo;
//!   `client`: the REST client subcommands (`serin status`, `weights`, …).

mod access;
mod app;
mod body;
mod classify;
pub mod cli;
pub mod client;
mod demo;
mod error;
mod fallback;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod headers;
mod host;
mod limits;
mod mirror;
mod pick;
mod proxy;
mod route;
mod server;
mod smuggling;
mod spans;
mod tls;
mod upstream;
mod workers;

pub use app::{App, AppError, Listeners};
pub use tls::{install_crypto_provider, TlsError};
