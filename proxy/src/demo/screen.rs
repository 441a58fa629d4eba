//! The demo's live table and its closing timeline. On a terminal the table
//! redraws in place; otherwise it prints plain lines every few seconds.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use serin_control::Live;
use serin_loadtest::{Progress, Report};
use tokio::time::Instant;

/// What the demo shows, and what it has shown.
pub(super) struct Screen {
    live: Arc<Live>,
    progress: Arc<Progress>,
    started: Instant,
    /// `started` on the wall clock, to place audit events (RFC 3339) on
    /// the demo's own clock.
    wall: std::time::SystemTime,
    tty: bool,
    /// Lines drawn last time (to move the cursor back over them).
    drawn: usize,
    /// Events already printed.
    seen: u64,
    last_plain: Option<Instant>,
    last_requests: u64,
    last_at: Instant,
}

// === impl Screen ===

impl Screen {
    pub(super) fn new(live: Arc<Live>, progress: Arc<Progress>, started: Instant) -> Self {
        Self {
            live,
            progress,
            started,
            wall: std::time::SystemTime::now() - started.elapsed(),
            tty: std::io::stdout().is_terminal(),
            drawn: 0,
            seen: 0,
            last_plain: None,
            last_requests: 0,
            last_at: started,
        }
    }

    fn t(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// A line of the story, above the table.
    /// What the mirror compared and the quality signal flagged, over the run.
    fn quality(&self) {
        let snap = self.live.snapshot();
        let Some(route) = snap.routes.first() else {
            return;
        };
        let window = self.started.elapsed() + Duration::from_secs(1);
        if let Some(m) = &route.mirror {
            let v = &route.versions[m.to];
            if let Some(w) = v.mirrored.as_ref().map(|s| s.window(window)) {
                println!(
                    "Mirror: {} copies of users' requests sent to {}; {} answered with another status than the client got ({:.1}%).",
                    w.requests,
                    v.name,
                    w.mismatched,
                    w.mismatch_rate().unwrap_or(0.0) * 100.0
                );
            }
        }
        let flagged: Vec<String> = route
            .versions
            .iter()
            .filter_map(|v| {
                let rate = v.stats.window(window).signal_rate(0)?;
                Some(format!("{} {:.1}%", v.name, rate * 100.0))
            })
            .collect();
        if let Some(s) = route.signals.first() {
            println!(
                "Quality: answers flagged by {} (flag_rate): {}.",
                s.header,
                flagged.join(", ")
            );
        }
    }

    pub(super) fn note(&mut self, text: &str) {
        let t = self.t();
        self.note_at(t, text);
    }

    /// A story line stamped `at` seconds into the demo.
    fn note_at(&mut self, at: f64, text: &str) {
        self.clear();
        println!("[{at:>5.1}s] {text}");
    }

    /// When `e` happened, in seconds on the demo's clock (the audit log's
    /// own time, not when the screen noticed it).
    fn at(&self, e: &serin_control::Event) -> f64 {
        humantime::parse_rfc3339(&e.time)
            .ok()
            .and_then(|t| t.duration_since(self.wall).ok())
            .map_or_else(|| self.t(), |d| d.as_secs_f64())
    }

    /// New events as story lines, then the table.
    pub(super) fn draw(&mut self) {
        for e in self.live.shared().events.since(self.seen, None) {
            self.seen = e.seq;
            let what = match e.kind.as_str() {
                "rollout_step" | "promoted" => e.reason.clone(),
                "level_breached" => format!("BREACH detected — {}", e.reason),
                "rollback_started" => format!("ROLLBACK started — {}", e.reason),
                "rollback_completed" => format!(
                    "ROLLBACK done: v2 weight 0, v1 gets its share ({})",
                    e.after
                ),
                "breaker_opened" => format!(
                    "breaker open on {} — {}",
                    e.version.as_deref().unwrap_or("?"),
                    e.reason
                ),
                "breaker_closed" => {
                    format!("breaker closed on {}", e.version.as_deref().unwrap_or("?"))
                }
                _ => continue,
            };
            let at = self.at(&e);
            self.note_at(at, &what);
        }
        let table = self.table();
        if self.tty {
            self.clear();
            print!("{table}");
            self.drawn = table.lines().count();
        } else if self
            .last_plain
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(4))
        {
            self.last_plain = Some(Instant::now());
            print!("{table}");
        }
        let _ = std::io::stdout().flush();
    }

    fn clear(&mut self) {
        if self.tty && self.drawn > 0 {
            // Up over the old table and clear to the end of the screen.
            print!("\x1b[{}A\x1b[J", self.drawn);
            self.drawn = 0;
        }
    }

    fn table(&mut self) -> String {
        let snap = self.live.snapshot();
        let now = Instant::now();
        let requests = self.progress.requests();
        let secs = (now - self.last_at).as_secs_f64().max(0.001);
        let client_rps = (requests - self.last_requests) as f64 / secs;
        self.last_requests = requests;
        self.last_at = now;
        let mut out = format!(
            "  t={:>5.1}s  clients: {} requests, {} errors, {:.0}/s\n",
            self.t(),
            requests,
            self.progress.errors(),
            client_rps
        );
        out.push_str("  version  weight    rps   errors   p50 ms   p99 ms  breaker   (rps to p99: last 2 s)\n");
        let Some(route) = snap.routes.first() else {
            return out;
        };
        for (i, v) in route.versions.iter().enumerate() {
            let w = v.stats.window(Duration::from_secs(2));
            let ms = |q: f64| {
                w.percentile(q)
                    .map_or("-".to_owned(), |d| format!("{:.1}", d.as_secs_f64() * 1e3))
            };
            out.push_str(&format!(
                "  {:<7} {:>6.1}% {:>6.0} {:>7.1}% {:>8} {:>8}  {}\n",
                v.name,
                route.pick.share(i) * 100.0,
                w.rps(),
                w.error_rate().unwrap_or(0.0) * 100.0,
                ms(50.0),
                ms(99.0),
                v.breaker.state().as_str()
            ));
        }
        out
    }

    /// The closing summary: what the clients saw and the incident timeline.
    pub(super) fn finish(&mut self, report: &Report) {
        self.draw();
        self.clear();
        print!("{}", self.table());
        println!(
            "\nClients: {} requests, {} errors, p50 {:.2} ms, p99 {:.2} ms — the fallback chain answered for v2.",
            report.requests, report.errors, report.p50_ms, report.p99_ms
        );
        self.quality();
        println!("\nIncident timeline (from the audit log):");
        let events = self.live.shared().events.since(0, None);
        for e in &events {
            let at = self.at(e);
            let label = match e.kind.as_str() {
                "rollout_step" | "promoted" => "deploy",
                "level_breached" => "breach",
                "rollback_started" | "rollback_completed" => "rollback",
                "breaker_opened" | "breaker_closed" => "breaker",
                "level_cleared" => "recovered",
                _ => continue,
            };
            println!("  +{at:>5.1}s  {label:<9} {:<18} {}", e.kind, e.reason);
            if e.kind == "rollback_completed" {
                let w = self
                    .live
                    .snapshot()
                    .routes
                    .first()
                    .map(|r| r.stats.window(Duration::from_secs(5)));
                let rate = w.and_then(|w| w.error_rate()).unwrap_or(0.0);
                println!(
                    "  +{at:>5.1}s  recovered all traffic on the stable version; client error rate now {:.1}%",
                    rate * 100.0
                );
            }
        }
        // The incident report, as `serin incidents ID` prints it (its
        // timeline is the one above).
        if let Some(i) = serin_control::incidents(&events).pop() {
            println!("\nIncident report (serin incidents {}):\n", i.id);
            let md = serin_control::incident_markdown(&i);
            let head = md.split("## Timeline").next().unwrap_or(&md);
            for line in head.lines() {
                println!("  {line}");
            }
        }
    }
}
