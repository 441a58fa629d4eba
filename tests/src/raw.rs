//! Raw bytes on a socket: what a polite client library will not send.
//! HTTP/1.1 exchanges read until the peer closes, and a minimal HTTP/2
//! framer (literal HPACK, no Huffman) for requests h2 clients refuse to make.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// What came back on a raw connection.
#[derive(Debug)]
pub struct RawReply {
    /// Everything read, lossy UTF-8.
    pub text: String,
    /// The peer closed (EOF or reset) before `wait` ran out.
    pub closed: bool,
}

// === impl RawReply ===

impl RawReply {
    /// How many responses the bytes hold (status lines).
    pub fn responses(&self) -> usize {
        self.text.matches("HTTP/1.1 ").count()
    }

    /// The first status code, if any.
    pub fn status(&self) -> Option<u16> {
        self.text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
    }
}

/// Writes `bytes` on a new connection to `addr` and reads until the peer
/// closes or `wait` passes. A write the peer cut short is not an error:
/// whatever it answered before closing is still read.
///
/// # Panics
/// When `addr` refuses the connection.
pub async fn exchange(addr: SocketAddr, bytes: &[u8], wait: Duration) -> RawReply {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let _ = s.write_all(bytes).await;
    read_until_closed(&mut s, wait).await
}

/// Reads from `s` until EOF, a reset, or `wait`.
pub async fn read_until_closed<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    wait: Duration,
) -> RawReply {
    let deadline = Instant::now() + wait;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let closed = loop {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break false,
        }
    };
    RawReply {
        text: String::from_utf8_lossy(&buf).into_owned(),
        closed,
    }
}

/// One HTTP/2 frame as read.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

/// HTTP/2 frame types this framer names.
pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const GOAWAY: u8 = 0x7;
}

const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;

// === impl Frame ===

impl Frame {
    /// `:status` of a HEADERS frame when it is one of HPACK's static
    /// entries (200, 204, 206, 304, 400, 404, 500), as h2 encodes them.
    pub fn status(&self) -> Option<u16> {
        let first = *self.payload.first()?;
        let statuses = [200, 204, 206, 304, 400, 404, 500];
        let i = usize::from(first.checked_sub(0x88)?);
        (self.kind == kind::HEADERS).then(|| statuses.get(i).copied())?
    }

    /// A SETTINGS frame's value for `id`.
    pub fn setting(&self, id: u16) -> Option<u32> {
        (self.kind == kind::SETTINGS && self.flags & ACK == 0).then_some(())?;
        self.payload.chunks_exact(6).find_map(|c| {
            (u16::from_be_bytes([c[0], c[1]]) == id)
                .then(|| u32::from_be_bytes([c[2], c[3], c[4], c[5]]))
        })
    }
}

/// Opens an h2c connection (prior knowledge), sends one GET on stream 1
/// with `headers` (pseudo-headers first, as given) and collects frames
/// until stream 1 ends or is reset, the connection goes away, or `wait`.
///
/// # Panics
/// When `addr` refuses the connection.
pub async fn h2_request(addr: SocketAddr, headers: &[(&str, &str)], wait: Duration) -> Vec<Frame> {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(kind::SETTINGS, 0, 0, &[]));
    let block: Vec<u8> = headers.iter().flat_map(|(n, v)| literal(n, v)).collect();
    out.extend(frame(kind::HEADERS, END_HEADERS | END_STREAM, 1, &block));
    s.write_all(&out).await.expect("write");
    let deadline = Instant::now() + wait;
    let mut frames = Vec::new();
    while let Some(f) = read_frame(&mut s, deadline).await {
        if f.kind == kind::SETTINGS && f.flags & ACK == 0 {
            let _ = s.write_all(&frame(kind::SETTINGS, ACK, 0, &[])).await;
        }
        let done = f.kind == kind::GOAWAY
            || (f.stream == 1 && (f.kind == kind::RST_STREAM || f.flags & END_STREAM != 0));
        frames.push(f);
        if done {
            break;
        }
    }
    frames
}

async fn read_frame(s: &mut TcpStream, deadline: Instant) -> Option<Frame> {
    let mut head = [0u8; 9];
    tokio::time::timeout_at(deadline, s.read_exact(&mut head))
        .await
        .ok()?
        .ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    tokio::time::timeout_at(deadline, s.read_exact(&mut payload))
        .await
        .ok()?
        .ok()?;
    Some(Frame {
        kind: head[3],
        flags: head[4],
        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
        payload,
    })
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .expect("small frame")
        .to_be_bytes();
    let mut f = vec![len[1], len[2], len[3], kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// HPACK "literal header field without indexing, new name" (RFC 7541 §6.2.2).
fn literal(name: &str, value: &str) -> Vec<u8> {
    let mut b = vec![0x00];
    for s in [name, value] {
        b.extend(int7(s.len()));
        b.extend_from_slice(s.as_bytes());
    }
    b
}

/// An HPACK integer with a 7-bit prefix, Huffman bit clear.
fn int7(mut n: usize) -> Vec<u8> {
    if n < 127 {
        return vec![n as u8];
    }
    let mut b = vec![127];
    n -= 127;
    while n >= 128 {
        b.push((n % 128) as u8 | 0x80);
        n /= 128;
    }
    b.push(n as u8);
    b
}
