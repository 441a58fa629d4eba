//! The one assembler: a validated config becomes a running proxy and admin
//! API on the listeners it is handed.

use std::sync::Arc;

use serin_config::Config;
use serin_control::Engine;
use serin_control::{ApiState, Auth};
use serin_control::{Live, LiveError, Shared};
use serin_control::{ReloadError, Reloader};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::proxy::Proxy;
use crate::server::Server;
use crate::tls::{self, Tls, TlsError};
use crate::workers::Workers;

/// The listeners a serin serves on. Bound by the caller (the binary binds
/// the config's addresses; tests and the demo bind `127.0.0.1:0`).
#[derive(Debug)]
pub struct Listeners {
    pub http: Option<TcpListener>,
    /// Served with TLS when the config names a certificate and key.
    pub https: Option<TcpListener>,
    pub admin: Option<TcpListener>,
}

/// Why an [`App`] could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The first live table could not be compiled or its state opened.
    #[error(transparent)]
    Live(#[from] LiveError),
    /// `listen.tls_cert` / `tls_key` could not be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// `[access_log] path` cannot be opened for appending.
    #[error("{0}")]
    AccessLog(std::io::Error),
    /// `[cluster]` could not start (or this build has no fleet mode).
    #[error("[cluster]: {0}")]
    Fleet(String),
    /// `[tracing]`'s exporter could not start.
    #[error(transparent)]
    Tracing(#[from] crate::spans::SpansError),
}

/// A serin ready to serve: its live table and the proxy that reads it.
#[derive(Debug)]
pub struct App {
    live: Arc<Live>,
    proxy: Arc<Proxy>,
    /// The routing file's reloader; `None` without a file (the demo).
    reloader: Option<Arc<Reloader>>,
    /// The routing file's watch, started by `serve`.
    watch: Option<serin_control::Watch>,
    auth: Auth,
    /// `listen.https`'s certificate, loaded at start and reloaded on change.
    tls: Option<Tls>,
    /// Data-plane worker threads (`serin run --workers`); `None`: the
    /// data plane runs on the caller's runtime (tests, the demo).
    threads: Option<usize>,
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
        let https = match config.listen.https {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let admin = Some(bind(config.admin.addr).await?);
        Ok(Self { http, https, admin })
    }

    /// Binds every listener on an ephemeral loopback port.
    ///
    /// # Errors
    /// When the loopback interface refuses a bind.
    pub async fn ephemeral() -> std::io::Result<Self> {
        Ok(Self {
            http: Some(TcpListener::bind("127.0.0.1:0").await?),
            https: None,
            admin: Some(TcpListener::bind("127.0.0.1:0").await?),
        })
    }
}

async fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("bind {addr}: {e}")))
}

/// The live table of a fleet's replica: state in etcd (`[cluster]`).
#[cfg(feature = "fleet")]
fn fleet_live(
    config: Config,
    shared: Shared,
    cluster: &serin_config::Cluster,
) -> Result<Arc<Live>, AppError> {
    let store =
        serin_control::EtcdStore::start(cluster, &config.state.dir, config.state.keep_revisions)
            .map_err(|e| AppError::Fleet(e.to_string()))?;
    let live = Arc::new(Live::open_in(config, shared, store.clone())?);
    store.follow(&live);
    Ok(live)
}

#[cfg(not(feature = "fleet"))]
fn fleet_live(_: Config, _: Shared, _: &serin_config::Cluster) -> Result<Arc<Live>, AppError> {
    Err(AppError::Fleet(
        "this serin was built without fleet mode: build it with `--features fleet` \
         (needs protoc: apt-get install protobuf-compiler)"
            .into(),
    ))
}

// === impl App ===

impl App {
    /// Compiles `config` into the first live table.
    ///
    /// # Errors
    /// When the table cannot be compiled, or `listen.https`'s certificate
    /// and key cannot be used.
    pub fn new(config: Config) -> Result<Self, AppError> {
        tls::install_crypto_provider();
        let tls = match (
            &config.listen.https,
            &config.listen.tls_cert,
            &config.listen.tls_key,
        ) {
            (Some(_), Some(cert), Some(key)) => Some(Tls::load(cert, key)?),
            _ => None,
        };
        let limits = config.limits.clone();
        let spans = config
            .tracing
            .as_ref()
            .map(crate::spans::Spans::start)
            .transpose()?;
        let access = crate::access::AccessLog::open(config.access_log.as_ref(), spans)
            .map_err(AppError::AccessLog)?;
        let sample = config.tracing.as_ref().map(|t| t.sample);
        let shared = Shared::open(&config.state.dir).map_err(LiveError::from)?;
        let live = match config.cluster.clone() {
            None => Arc::new(Live::open(config, shared)?),
            Some(cluster) => fleet_live(config, shared, &cluster)?,
        };
        // A benchmarking switch (BENCHMARKS.md, telemetry on vs off in one
        // run): with it off, breakers and rollback rules see no traffic.
        if std::env::var_os("SERIN_TELEMETRY").is_some_and(|v| v == "off") {
            live.shared().telemetry.set_enabled(false);
        }
        let proxy = Arc::new(Proxy::new(live.clone(), &limits).with_access_log(access, sample));
        Ok(Self {
            live,
            proxy,
            reloader: None,
            watch: None,
            auth: Auth::open(),
            tls,
            threads: None,
        })
    }

    /// The binary's assembly: `config` loaded from `path` and served with
    /// `auth` (see [`Auth::resolve`]); the file registered and watched.
    ///
    /// # Errors
    /// A message for the operator: the table or the file.
    pub fn from_file(config: Config, path: &std::path::Path, auth: Auth) -> Result<Self, String> {
        let app = Self::new(config).map_err(|e| e.to_string())?;
        let app = app.with_config_path(path).map_err(|e| e.to_string())?;
        Ok(app.with_auth(auth))
    }

    /// The routing file `config` came from: it is registered as a revision,
    /// watched and reloaded on change, and reload/restore act on it.
    ///
    /// # Errors
    /// When the file or the revisions in `state.dir` cannot be read or written.
    pub fn with_config_path(mut self, path: &std::path::Path) -> Result<Self, ReloadError> {
        // Watch first, read second: a change in between is not missed.
        self.watch = match serin_control::watch_routing_file(path) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::error!(error = %e, "routing file not watched: reload with SIGHUP or POST /api/v1/reload");
                None
            }
        };
        self.reloader = Some(Arc::new(Reloader::open(self.live.clone(), path)?));
        Ok(self)
    }

    /// Who may call the admin API (default: anyone, for loopback-only use).
    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Serves connections on `n` worker threads, each with its own
    /// current-thread runtime (`workers.rs`), instead of on the runtime
    /// that calls [`App::serve`], which keeps the accept loops and the
    /// control plane.
    pub fn with_threads(mut self, n: usize) -> Self {
        self.threads = Some(n.max(1));
        self
    }

    /// The routing file's reloader, if serin runs from a file.
    pub fn reloader(&self) -> Option<&Arc<Reloader>> {
        self.reloader.as_ref()
    }

    /// The live table, for the control side (tests, the demo).
    pub fn live(&self) -> &Arc<Live> {
        &self.live
    }

    /// Serves until `shutdown` turns true, then drains and returns.
    pub async fn serve(self, listeners: Listeners, shutdown: watch::Receiver<bool>) {
        // Background deciders: they end with the serve call.
        let engine = Arc::new(Engine::default());
        let background = [
            self.live.shared().telemetry.spawn(),
            serin_control::spawn_breaker_monitor(self.live.clone()),
            serin_control::spawn_prober(
                self.live.clone(),
                Arc::new(crate::upstream::ProbeConnector::new(
                    self.live.config().limits.upstream_connect_timeout,
                )),
            ),
            engine
                .clone()
                .spawn(self.live.clone(), self.live.config().engine.tick),
        ];
        let notifiers = serin_control::spawn_notifiers(
            &self.live.config().notify,
            self.live.shared().events.subscribe(),
        );
        let watcher = self
            .watch
            .zip(self.reloader.clone())
            .map(|(w, r)| w.spawn(r));
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(l) = listeners.admin {
            let state = ApiState::new(self.live.clone())
                .with_engine(engine)
                .with_reloader(self.reloader.clone())
                .with_auth(self.auth.clone());
            let router = serin_control::api_router(state);
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
        // `[limits]` is read once: a change needs a restart.
        let server = Server::new(self.proxy.clone(), &self.live.config().limits);
        let workers = self.threads.and_then(|n| {
            Workers::start(&server, n, &shutdown)
                .map_err(|e| tracing::error!(error = %e, "no worker threads; serving on the main runtime"))
                .ok()
        });
        let mut serve = |l: TcpListener, tls: Option<Tls>| {
            let (server, stop) = (server.clone(), shutdown.clone());
            match &workers {
                Some((w, _)) => tasks.spawn(server.serve_on(l, tls, w.clone(), stop)),
                None => tasks.spawn(server.serve(l, tls, stop)),
            }
        };
        if let Some(l) = listeners.http {
            serve(l, None);
        }
        let mut cert_reload = None;
        match (listeners.https, self.tls) {
            (Some(l), Some(tls)) => {
                cert_reload = Some(tls::spawn_reload(tls.clone(), self.live.clone()));
                serve(l, Some(tls));
            }
            (Some(_), None) => {
                tracing::error!("an https listener without listen.tls_cert/tls_key: not served")
            }
            _ => {}
        }
        // The accept loops hold the only other handles: once they end, the
        // workers' queues close and each worker drains its connections.
        let drained = workers.map(|(w, drained)| {
            drop(w);
            drained
        });
        while tasks.join_next().await.is_some() {}
        if let Some(drained) = drained {
            drained.wait().await;
        }
        tracing::info!("drained: every connection closed");
        if let Some(log) = self.proxy.access() {
            log.flush();
        }
        for task in background
            .into_iter()
            .chain(notifiers)
            .chain(watcher)
            .chain(cert_reload)
        {
            task.abort();
        }
        // After the tasks: what they recorded meanwhile is on disk too.
        self.live.shared().events.flush();
    }
}
