//! `serin` as a child process, for what only a real process shows: memory,
//! signals, `kill -9`, exit codes.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::serin_bin;

/// A running `serin run` child. Killed on drop.
#[derive(Debug)]
pub struct SerinProcess {
    pub child: Child,
    pub http: SocketAddr,
    pub admin: SocketAddr,
    /// The routing file it runs from.
    pub config: std::path::PathBuf,
    /// `[listen]`, `[admin]`, `[state]` as written: a rewrite must keep them.
    head: String,
}

/// `GET /healthz` on `admin` answers 200.
fn healthy(admin: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(admin) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}

/// A loopback address with a port that was free a moment ago.
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

// === impl SerinProcess ===

impl SerinProcess {
    /// Writes `routes` (TOML without `[listen]`/`[admin]`) into `dir`,
    /// adds fresh loopback listen and admin addresses, starts `serin run`
    /// and waits until `/healthz` answers.
    ///
    /// # Panics
    /// When serin does not come up within 10 s.
    pub fn spawn(dir: &Path, routes: &str) -> Self {
        Self::spawn_with_env(dir, routes, &[])
    }

    /// As [`SerinProcess::spawn`], with `env` set on the child (e.g. the
    /// admin token: `SERIN_ADMIN_TOKEN`).
    ///
    /// # Panics
    /// As [`SerinProcess::spawn`].
    pub fn spawn_with_env(dir: &Path, routes: &str, env: &[(&str, &str)]) -> Self {
        let (http, admin) = (free_addr(), free_addr());
        let head = format!(
            "[listen]\nhttp = \"{http}\"\n[admin]\naddr = \"{admin}\"\n[state]\ndir = \"{}\"\n\n",
            dir.join("state").display()
        );
        let path = dir.join("serin.toml");
        std::fs::write(&path, format!("{head}{routes}")).expect("write routing file");
        let mut cmd = Command::new(serin_bin());
        cmd.args(["run", "--config"])
            .arg(&path)
            .args(["--workers", "2"])
            .env("SERIN_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn serin");
        let me = Self {
            child,
            http,
            admin,
            config: path,
            head,
        };
        // `/healthz` answering, not only the port accepting: the listeners
        // are bound before serin starts serving (and watching its file),
        // and a test that writes the file in between would go unseen.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !healthy(admin) {
            assert!(Instant::now() < deadline, "serin did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        me
    }

    /// Rewrites the routing file in place with `routes`, keeping the
    /// listen, admin and state sections this process was started with.
    ///
    /// # Panics
    /// When the file cannot be written.
    pub fn write_routes(&self, routes: &str) {
        std::fs::write(&self.config, format!("{}{routes}", self.head)).expect("write routing file");
    }

    /// Sends `signal` (e.g. `"TERM"`) with `kill(1)`.
    ///
    /// # Panics
    /// When `kill` cannot run.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits up to `limit` for the process to exit; `None` if it still runs.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// Peak resident memory so far, in KiB.
    pub fn peak_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("field in /proc status")
    }
}

impl Drop for SerinProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
