//! The one assembler: a validated config becomes a running proxy and admin
//! API on the listeners it is handed.

use std::sync::Arc;
use std::time::Duration;

use serin_config::Config;
use serin_control::api::{self, ApiState};
use serin_control::breaker::monitor;
use serin_control::{Live, LiveError, Shared};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::proxy::Proxy;
use crate::server;

/// How long in-flight requests may finish after a stop signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The listeners a serin serves on. Bound by the caller (the binary binds
/// the config's addresses; tests and the demo bind `127.0.0.1:0`).
#[derive(Debug)]
pub struct Listeners {
    pub http: Option<TcpListener>,
    pub admin: Option<TcpListener>,
}

/// A serin ready to serve: its live table and the proxy that reads it.
#[derive(Debug)]
pub struct App {
    live: Arc<Live>,
    proxy: Arc<Proxy>,
}

// === impl Listeners ===

impl Listeners {
    /// Binds the addresses `config` names.
    ///
    /// # Errors
    /// When an address cannot be bound.
    pub async fn bind(config: &Config) -> std::io::Result<Self> {
        let http = match config.listen.http {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let admin = Some(bind(config.admin.addr).await?);
        Ok(Self { http, admin })
    }

    /// Binds every listener on an ephemeral loopback port.
    ///
    /// # Errors
    /// When the loopback interface refuses a bind.
    pub async fn ephemeral() -> std::io::Result<Self> {
        Ok(Self {
            http: Some(TcpListener::bind("127.0.0.1:0").await?),
            admin: Some(TcpListener::bind("127.0.0.1:0").await?),
        })
    }
}

async fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("bind {addr}: {e}")))
}

// === impl App ===

impl App {
    /// Compiles `config` into the first live table.
    ///
    /// # Errors
    /// When the table cannot be compiled.
    pub fn new(config: Config) -> Result<Self, LiveError> {
        let shared = Shared::open(&config.state.dir)?;
        let live = Arc::new(Live::open(config, shared)?);
        let proxy = Arc::new(Proxy::new(live.clone()));
        Ok(Self { live, proxy })
    }

    /// The live table, for the control side (tests, the demo).
    pub fn live(&self) -> &Arc<Live> {
        &self.live
    }

    /// Serves until `shutdown` turns true, then drains and returns.
    pub async fn serve(self, listeners: Listeners, shutdown: watch::Receiver<bool>) {
        // Background deciders: they end with the serve call.
        let background = [
            self.live.shared().telemetry.spawn(),
            monitor::spawn(self.live.clone()),
        ];
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(l) = listeners.admin {
            let router = api::router(ApiState::new(self.live.clone()));
            let mut stop = shutdown.clone();
            tasks.spawn(async move {
                let stopped = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                if let Err(e) = axum::serve(l, router).with_graceful_shutdown(stopped).await {
                    tracing::error!(error = %e, "admin listener failed");
                }
            });
        }
        if let Some(l) = listeners.http {
            tasks.spawn(server::serve(
                l,
                self.proxy.clone(),
                shutdown.clone(),
                DRAIN_TIMEOUT,
            ));
        }
        while tasks.join_next().await.is_some() {}
        for task in background {
            task.abort();
        }
    }
}
