//! serin-tests: the end-to-end harness. Every test runs serin in-process on
//! `127.0.0.1:0` against real fake versions (from `serin-loadtest`) over
//! real sockets; a few run the `serin` binary as a child process.
//!
//! # Layout
//! - [`TestEnv`]: temp dir, routing-file writer, a running serin, its addresses.
//! - [`client`]: small HTTP/1.1 and h2c clients that return status, headers and body.
//! - [`raw`]: bytes on a socket, for what a well-behaved client cannot send
//!   (half-sent heads, smuggling shapes, hand-made HTTP/2 frames).
//! - [`tls`]: a self-signed certificate made by the test, and HTTPS clients.
//! - [`browser`]: headless Chromium over the DevTools protocol (the status page).
//! - [`etcd`]: a real etcd on loopback ports (fleet mode); [`relay`]: a TCP
//!   relay a test cuts and restores (a partition).
//! - [`assert_eventually!`]: polls a condition with a deadline.
//! - `tests/`: one module per scenario, in one test binary (`tests/e2e.rs`).

pub mod browser;
pub mod client;
pub mod etcd;
pub mod process;
pub mod raw;
pub mod relay;
pub mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serin_control::Live;
use serin_proxy::{App, Listeners};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The admin token every [`TestEnv`] requires for changes.
pub const TOKEN: &str = "test-token";

/// `Authorization` header value carrying [`TOKEN`].
pub const BEARER: &str = "Bearer test-token";

/// A serin running in-process on ephemeral loopback ports.
#[derive(Debug)]
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub http: SocketAddr,
    /// The TLS listener, when the routing file has `listen.https`.
    pub https: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub live: Arc<Live>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

// === impl TestEnv ===

impl TestEnv {
    /// Writes `toml` as the routing file, validates it and starts serin
    /// from it: the file is watched and reloadable, and the admin API needs
    /// [`TOKEN`] for changes.
    ///
    /// # Panics
    /// When the file is invalid or a port cannot be bound: a test bug.
    pub async fn start(toml: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("serin.toml");
        let text = with_state_dir(dir.path(), toml);
        std::fs::write(&config_path, text).expect("write routing file");
        Self::serve(dir, config_path).await
    }

    /// Starts serin from the routing file at `config_path` (which may be a
    /// symlink, e.g. a ConfigMap layout), keeping `dir` alive with it.
    ///
    /// # Panics
    /// As [`TestEnv::start`].
    pub async fn start_at(dir: tempfile::TempDir, config_path: PathBuf) -> Self {
        Self::serve(dir, config_path).await
    }

    /// Stops serin and starts it again on the same directory (routing
    /// file, live state, audit log, revisions), on new ports.
    pub async fn restart(self) -> Self {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        Self::serve(self.dir, self.config_path).await
    }

    async fn serve(dir: tempfile::TempDir, config_path: PathBuf) -> Self {
        let config =
            serin_config::load(&config_path).unwrap_or_else(|e| panic!("bad test config:\n{e}"));
        let mut listeners = Listeners::ephemeral().await.expect("bind loopback");
        if config.listen.https.is_some() {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await;
            listeners.https = Some(l.expect("bind loopback"));
        }
        let https = listeners.https.as_ref().map(|l| l.local_addr().unwrap());
        let http = listeners.http.as_ref().unwrap().local_addr().unwrap();
        let admin = listeners.admin.as_ref().unwrap().local_addr().unwrap();
        let app = App::new(config)
            .expect("compile table")
            .with_config_path(&config_path)
            .expect("register the routing file")
            .with_auth(serin_control::Auth::token(TOKEN));
        let live = app.live().clone();
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(app.serve(listeners, rx));
        Self {
            dir,
            config_path,
            http,
            https,
            admin,
            live,
            stop,
            task,
        }
    }

    /// `toml` as this env writes routing files: with its state directory
    /// added (unless `toml` has a `[state]`), so a rewrite that keeps it
    /// is not refused as a `[state]` change.
    pub fn routing_file(&self, toml: &str) -> String {
        with_state_dir(self.dir.path(), toml)
    }

    /// Rewrites the routing file in place (as `routing_file` makes it).
    pub fn write_config(&self, toml: &str) {
        std::fs::write(&self.config_path, self.routing_file(toml)).expect("write routing file");
    }

    /// `http://127.0.0.1:PORT{path}` on the data plane.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// `http://127.0.0.1:PORT{path}` on the admin API.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    /// Sets live weights as an API call would.
    ///
    /// # Errors
    /// As `Live::set_weights`.
    pub fn set_weights(
        &self,
        route: &str,
        weights: &[(&str, f64)],
    ) -> Result<(), serin_control::LiveError> {
        let weights = weights.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        let draft = serin_control::Draft::new(
            serin_control::Actor::Api,
            serin_control::EventKind::WeightsChanged,
            "test",
        );
        self.live.set_weights(route, &weights, draft).map(drop)
    }

    /// Stops serin and waits for the drain to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The `serin` binary cargo built next to this test binary
/// (`target/<profile>/serin`). `cargo test --workspace` builds it because
/// serin-proxy has an integration test (`proxy/tests/check.rs`); cargo builds
/// a package's binaries only for its own integration tests.
///
/// # Panics
/// When it is not there.
pub fn serin_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/e2e-HASH → target/<profile>/serin
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("serin"))
        .expect("target dir");
    assert!(
        bin.exists(),
        "{} not found: run `cargo test --workspace`, or `cargo build -p serin-proxy` first",
        bin.display()
    );
    bin
}

/// Polls `$cond` every 20 ms until it holds or `$secs` seconds pass.
#[macro_export]
macro_rules! assert_eventually {
    ($cond:expr, $secs:expr, $($msg:tt)+) => {{
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs_f64($secs as f64);
        loop {
            if $cond {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                panic!($($msg)+);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }};
}

/// `toml` with `[state] dir = "DIR/state"` added (unless it has a
/// `[state]`): live state and the audit log go to the test's own directory.
pub fn with_state_dir(dir: &Path, toml: &str) -> String {
    if toml.contains("[state]") {
        return toml.to_owned();
    }
    format!(
        "[state]\ndir = \"{}\"\n\n{toml}",
        dir.join("state").display()
    )
}

/// A one-route routing file: `versions` as (name, url, weight), then `extra`
/// TOML appended inside the route (e.g. `sticky = "header:x-user"`).
pub fn one_route(versions: &[(&str, &str, f64)], extra: &str) -> String {
    let mut s = String::from(
        "[listen]\nhttp = \"127.0.0.1:1\"\n[admin]\naddr = \"127.0.0.1:2\"\n\n[[routes]]\nname = \"svc\"\n",
    );
    s.push_str(extra);
    s.push('\n');
    for (name, url, weight) in versions {
        s.push_str(&format!(
            "[[routes.versions]]\nname = \"{name}\"\nurl = \"{url}\"\nweight = {weight}\ntimeout = \"2s\"\n"
        ));
    }
    s
}
