//! A real etcd for fleet tests: Debian's `etcd-server` (installed by
//! `tests/deps.sh`), one member on loopback ports, its data in a temp
//! dir, stopped by PID (never by name) when dropped.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::free_addr;

/// One etcd member.
#[derive(Debug)]
pub struct Etcd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    client: SocketAddr,
    peer: SocketAddr,
}

/// The etcd binary: `SERIN_ETCD`, or `etcd` on `PATH`.
fn etcd_bin() -> String {
    if let Ok(p) = std::env::var("SERIN_ETCD") {
        return p;
    }
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join("etcd").is_file());
    assert!(
        found,
        "etcd is needed for the fleet tests and was not found: run tests/run.sh \
         (the README's test command, which installs Debian's etcd-server) or set SERIN_ETCD"
    );
    "etcd".to_owned()
}

impl Etcd {
    /// Starts a one-member etcd and waits until it answers.
    ///
    /// # Panics
    /// When etcd does not start within 20 s.
    pub fn start() -> Self {
        let mut me = Self {
            child: None,
            dir: tempfile::tempdir().expect("etcd dir"),
            client: free_addr(),
            peer: free_addr(),
        };
        me.resume();
        me
    }

    /// Its client address.
    pub fn addr(&self) -> SocketAddr {
        self.client
    }

    /// `http://127.0.0.1:PORT`, for `[cluster] etcd`.
    pub fn url(&self) -> String {
        format!("http://{}", self.client)
    }

    /// Stops etcd (SIGKILL by PID); its data stays for [`Etcd::resume`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same data and ports.
    ///
    /// # Panics
    /// As [`Etcd::start`].
    pub fn resume(&mut self) {
        let peer = format!("http://{}", self.peer);
        let child = Command::new(etcd_bin())
            .arg("--name=test")
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--listen-client-urls={}", self.url()))
            .arg(format!("--advertise-client-urls={}", self.url()))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=test={peer}"))
            .arg("--log-level=error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.healthy() {
                return;
            }
            assert!(Instant::now() < deadline, "etcd did not become healthy");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET /health` says `true`.
    fn healthy(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(self.client) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let req = format!(
            "GET /health HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.client
        );
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.contains("\"health\":\"true\"")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}
