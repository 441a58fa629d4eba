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
        let (http, admin) = (free_addr(), free_addr());
        let toml = format!(
            "[listen]\nhttp = \"{http}\"\n[admin]\naddr = \"{admin}\"\n[state]\ndir = \"{}\"\n\n{routes}",
            dir.join("state").display()
        );
        let path = dir.join("serin.toml");
        std::fs::write(&path, toml).expect("write routing file");
        let child = Command::new(serin_bin())
            .args(["run", "--config"])
            .arg(&path)
            .args(["--workers", "2"])
            .env("SERIN_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn serin");
        let me = Self { child, http, admin };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(admin).is_err() {
            assert!(Instant::now() < deadline, "serin did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        me
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
