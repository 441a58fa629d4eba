//! The tamper-evident audit log: `state.dir/audit.log`, one JSON event a
//! line, each carrying the SHA-256 of the previous entry (`prev_hash`) and
//! its own (`hash`).
//!
//! `hash = sha256(prev_hash || "\n" || canonical)`, where `canonical` is the
//! entry as JSON with sorted keys and without `hash`. An edited line fails
//! its own hash; a deleted or reordered line breaks the next `prev_hash`
//! (and the `seq` run).
//!
//! Every log has one writer, [`AuditWriter`]: a thread of its own that
//! appends entries already chained by their journal (the replica's
//! `Events`, the fleet's chain mirror), in order, many to one `fsync`.
//! Whoever records an event never waits on the disk unless it asks to
//! ([`AuditWriter::wait`]): the tasks sharing a runtime with the accept
//! loops (breaker monitor, health prober, certificate reload) just hand
//! their line over.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// `prev_hash` of the first entry.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An audit log's one writer: a thread that appends chained entries in
/// the order they were handed over and syncs them. Dropping the writer
/// writes what is pending and ends the thread.
#[derive(Debug)]
pub(crate) struct AuditWriter {
    path: PathBuf,
    tx: Option<mpsc::Sender<Vec<u8>>>,
    progress: Arc<Progress>,
    /// Lines handed over so far (the ticket of the last one).
    sent: u64,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How far the writer got, for those who wait.
#[derive(Debug, Default)]
struct Progress {
    /// Tickets up to this one are on disk, synced.
    durable: Mutex<u64>,
    changed: Condvar,
}

/// A line handed to an [`AuditWriter`]: on disk once
/// [`AuditWriter::wait`] says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ticket(u64);

/// Waits for an [`AuditWriter`]'s lines.
#[derive(Debug, Clone)]
pub(crate) struct Waiter(Arc<Progress>);

/// Why a log does not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("line {line}: {why}")]
    Broken { line: usize, why: String },
}

// === impl AuditWriter ===

impl AuditWriter {
    /// Opens (or creates) the log, returns the entries already in it and
    /// starts its writer thread.
    ///
    /// # Errors
    /// When the file cannot be read or created, an existing line is not an
    /// event (a torn last line from a crash is dropped, not an error), or
    /// the thread cannot be started.
    pub(crate) fn open<T: DeserializeOwned>(path: &Path) -> io::Result<(Self, Vec<T>)> {
        let events = read_log(path)?;
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let (tx, rx) = mpsc::channel();
        let progress = Arc::new(Progress::default());
        let thread = {
            let progress = progress.clone();
            let path = path.to_owned();
            std::thread::Builder::new()
                .name("serin-audit".into())
                .spawn(move || write_lines(&path, file, &rx, &progress))?
        };
        let writer = Self {
            path: path.to_owned(),
            tx: Some(tx),
            progress,
            sent: 0,
            thread: Some(thread),
        };
        Ok((writer, events))
    }

    /// Hands `event`, already chained (`prev_hash`, `hash`), to the writer
    /// thread as the log's next line. Never waits on the disk.
    ///
    /// # Errors
    /// When the event cannot be serialized.
    pub(crate) fn append(&mut self, entry: &impl Serialize) -> io::Result<Ticket> {
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        if let Some(tx) = &self.tx {
            // The thread ends only when `tx` is dropped.
            let _ = tx.send(line);
        }
        self.sent += 1;
        Ok(Ticket(self.sent))
    }

    /// The ticket of the last line handed over.
    pub(crate) fn last(&self) -> Ticket {
        Ticket(self.sent)
    }

    /// What waits for this writer's lines to be on disk, apart from it
    /// (the writer itself may sit behind its journal's lock).
    pub(crate) fn waiter(&self) -> Waiter {
        Waiter(self.progress.clone())
    }

    /// Where the log lives.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        // The thread writes what it was handed, then sees the channel closed.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// === impl Waiter ===

impl Waiter {
    /// Waits until the line of `ticket` (and every one before it) is on
    /// disk, at most `limit`; returns whether it is.
    pub(crate) fn wait(&self, ticket: Ticket, limit: Duration) -> bool {
        self.0.wait(ticket.0, limit)
    }
}

// === impl Progress ===

impl Progress {
    fn wait(&self, ticket: u64, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut durable = self.durable.lock().unwrap_or_else(|p| p.into_inner());
        while *durable < ticket {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            durable = self
                .changed
                .wait_timeout(durable, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }

    fn done(&self, ticket: u64) {
        *self.durable.lock().unwrap_or_else(|p| p.into_inner()) = ticket;
        self.changed.notify_all();
    }
}

/// The writer thread: whatever is waiting is written in one go and synced
/// once. A failed write is cut off (a torn or unsynced line would break
/// the chain under every later one) and retried, with what came since,
/// a second later: the lines stay in order and none is dropped.
fn write_lines(path: &Path, mut file: File, rx: &mpsc::Receiver<Vec<u8>>, progress: &Progress) {
    let mut pending: Vec<u8> = Vec::new();
    let (mut written, mut queued) = (0_u64, 0_u64);
    let mut open = true;
    while open || queued > written {
        let next = if queued > written {
            rx.recv_timeout(Duration::from_secs(1))
                .map_err(|e| match e {
                    mpsc::RecvTimeoutError::Timeout => None,
                    mpsc::RecvTimeoutError::Disconnected => Some(()),
                })
        } else {
            rx.recv().map_err(|_| Some(()))
        };
        match next {
            Ok(line) => {
                pending.extend_from_slice(&line);
                queued += 1;
                while let Ok(line) = rx.try_recv() {
                    pending.extend_from_slice(&line);
                    queued += 1;
                }
            }
            Err(Some(())) => open = false,
            Err(None) => {}
        }
        if queued == written {
            continue;
        }
        match append_synced(&mut file, &pending) {
            Ok(()) => {
                pending.clear();
                written = queued;
                progress.done(written);
            }
            Err(e) if open => {
                tracing::error!(path = %path.display(), error = %e, pending = queued - written, "audit log write failed; retried in a second");
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, lost = queued - written, "audit log write failed at shutdown");
                return;
            }
        }
    }
}

fn append_synced(file: &mut File, bytes: &[u8]) -> io::Result<()> {
    let len = file.metadata()?.len();
    let wrote = file.write_all(bytes).and_then(|()| file.sync_data());
    if wrote.is_err() {
        let _ = file.set_len(len);
    }
    wrote
}

/// The entries of the log at `path` (none when it does not exist); a torn
/// last line is cut off the file.
fn read_log<T: DeserializeOwned>(path: &Path) -> io::Result<Vec<T>> {
    let mut events = Vec::new();
    if !path.exists() {
        return Ok(events);
    }
    let text = std::fs::read_to_string(path)?;
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<T>(line) {
            Ok(e) => events.push(e),
            // A crash can tear only the end: lines are written in order,
            // and an append is the last thing a write does.
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => {
                tracing::warn!(path = %path.display(), "dropping a torn last audit line");
                truncate_to(path, text.len() - line.len())?;
            }
            Err(e) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: line {}: {e}", path.display(), i + 1),
                ))
            }
        }
    }
    Ok(events)
}

fn truncate_to(path: &Path, len: usize) -> io::Result<()> {
    let f = OpenOptions::new().write(true).open(path)?;
    f.set_len(len as u64)?;
    f.sync_all()
}

/// The hash an entry, given as JSON with its `prev_hash` set, must carry
/// (its `hash` field, if any, left out).
pub(crate) fn entry_hash(value: &Value) -> String {
    let mut canonical = value.clone();
    if let Some(map) = canonical.as_object_mut() {
        map.remove("hash");
    }
    // serde_json's default map is sorted by key: the bytes are canonical.
    let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
    let prev = value.get("prev_hash").and_then(Value::as_str).unwrap_or("");
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(&bytes);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks the whole chain; returns the number of entries.
///
/// # Errors
/// The first line that breaks the chain, and why.
pub fn verify(path: &Path) -> Result<usize, VerifyError> {
    let file = File::open(path).map_err(|source| VerifyError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let lines = BufReader::new(file).lines().map(|line| {
        line.map_err(|e| format!("unreadable: {e}"))
            .and_then(|l| serde_json::from_str(&l).map_err(|e| format!("not JSON: {e}")))
    });
    verify_values(lines).map(|head| head.count)
}

/// Where a verified chain ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ChainEnd {
    pub count: usize,
    /// The last entry's `seq` and `hash` (`None` for an empty chain).
    pub last: Option<(u64, String)>,
}

/// Checks a chain given entry by entry (a file's lines, a fleet's keys).
///
/// # Errors
/// The first entry (1-based) that breaks the chain, and why.
pub(crate) fn verify_values(
    entries: impl Iterator<Item = Result<Value, String>>,
) -> Result<ChainEnd, VerifyError> {
    let mut prev = GENESIS.to_owned();
    let mut prev_seq: Option<u64> = None;
    let mut count = 0;
    for (i, value) in entries.enumerate() {
        let n = i + 1;
        let broken = |why: String| VerifyError::Broken { line: n, why };
        let value = value.map_err(broken)?;
        let field = |k: &str| {
            value
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        if field("prev_hash") != prev {
            return Err(broken(
                "prev_hash does not match the previous entry (a line was deleted, inserted or reordered)".into(),
            ));
        }
        let seq = value
            .get("seq")
            .and_then(Value::as_u64)
            .ok_or_else(|| broken("no seq".into()))?;
        if let Some(p) = prev_seq {
            if seq != p + 1 {
                return Err(broken(format!("seq {seq} follows {p}")));
            }
        }
        let want = entry_hash(&value);
        if field("hash") != want {
            return Err(broken(
                "hash does not match the entry (the line was edited)".into(),
            ));
        }
        prev = want;
        prev_seq = Some(seq);
        count += 1;
    }
    Ok(ChainEnd {
        count,
        last: prev_seq.map(|s| (s, prev)),
    })
}

#[cfg(test)]
mod tests;
