//! The tamper-evident audit log: `state.dir/audit.log`, one JSON event a
//! line, each carrying the SHA-256 of the previous entry (`prev_hash`) and
//! its own (`hash`).
//!
//! `hash = sha256(prev_hash || "\n" || canonical)`, where `canonical` is the
//! entry as JSON with sorted keys and without `hash`. An edited line fails
//! its own hash; a deleted or reordered line breaks the next `prev_hash`
//! (and the `seq` run).

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::event::Event;

/// `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An open, appendable audit log.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
    last_hash: String,
}

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

// === impl AuditLog ===

impl AuditLog {
    /// Opens (or creates) the log and returns the events already in it.
    ///
    /// # Errors
    /// When the file cannot be read or created, or an existing line is not
    /// an event (a torn last line from a crash is dropped, not an error).
    pub fn open(path: &Path) -> io::Result<(Self, Vec<Event>)> {
        let mut events = Vec::new();
        let mut last_hash = GENESIS.to_owned();
        if path.exists() {
            let text = std::fs::read_to_string(path)?;
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                match serde_json::from_str::<Event>(line) {
                    Ok(e) => {
                        last_hash.clone_from(&e.hash);
                        events.push(e);
                    }
                    // A crash can tear the last line only: the write of one
                    // line is the last thing an append does.
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
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok((
            Self {
                path: path.to_owned(),
                file,
                last_hash,
            },
            events,
        ))
    }

    /// Chains `event` to the log (fills `prev_hash` and `hash`) and writes
    /// it durably before returning.
    ///
    /// # Errors
    /// When the write or the sync fails; the event is then not chained.
    pub fn append(&mut self, event: &mut Event) -> io::Result<()> {
        event.prev_hash.clone_from(&self.last_hash);
        event.hash = hash_of(event)?;
        self.write(event)
    }

    /// Appends `event` as it is, already chained elsewhere (a fleet's
    /// chain, mirrored): written only if it follows the last entry
    /// (`prev_hash`); returns whether it was.
    ///
    /// # Errors
    /// When the write or the sync fails.
    pub fn append_chained(&mut self, event: &Event) -> io::Result<bool> {
        if event.prev_hash != self.last_hash {
            return Ok(false);
        }
        self.write(event).map(|()| true)
    }

    /// Writes a chained `event` as the next line, durably.
    fn write(&mut self, event: &Event) -> io::Result<()> {
        let mut line = serde_json::to_vec(event)?;
        line.push(b'\n');
        let len = self.file.metadata()?.len();
        if let Err(e) = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
        {
            // A torn or unsynced line would break the chain under every
            // later one: cut it off, so the event can be appended again.
            let _ = self.file.set_len(len);
            return Err(e);
        }
        self.last_hash.clone_from(&event.hash);
        Ok(())
    }

    /// The last entry's hash ([`GENESIS`] when empty).
    pub fn last_hash(&self) -> &str {
        &self.last_hash
    }

    /// Where the log lives.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Chains `event` after an entry whose hash is `prev_hash`: fills its
/// `prev_hash` and `hash` (the same rule as the file's).
///
/// # Errors
/// When the event cannot be serialized.
pub fn chain(event: &mut Event, prev_hash: &str) -> io::Result<()> {
    prev_hash.clone_into(&mut event.prev_hash);
    event.hash = hash_of(event)?;
    Ok(())
}

fn truncate_to(path: &Path, len: usize) -> io::Result<()> {
    let f = OpenOptions::new().write(true).open(path)?;
    f.set_len(len as u64)?;
    f.sync_all()
}

/// The hash an entry must carry.
fn hash_of(event: &Event) -> io::Result<String> {
    let value = serde_json::to_value(event)?;
    Ok(hash_value(&value))
}

fn hash_value(value: &Value) -> String {
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
pub struct ChainEnd {
    pub count: usize,
    /// The last entry's `seq` and `hash` (`None` for an empty chain).
    pub last: Option<(u64, String)>,
}

/// Checks a chain given entry by entry (a file's lines, a fleet's keys).
///
/// # Errors
/// The first entry (1-based) that breaks the chain, and why.
pub fn verify_values(
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
        let want = hash_value(&value);
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
