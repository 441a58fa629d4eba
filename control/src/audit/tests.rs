use super::*;
use crate::event::{Actor, Draft, EventKind, Events};

fn write_log(dir: &Path, n: usize) -> PathBuf {
    let events = Events::open(dir).unwrap();
    for i in 0..n {
        events.record(
            Draft::new(Actor::Api, EventKind::WeightsChanged, format!("change {i}")).route("svc"),
        );
    }
    dir.join("audit.log")
}

#[test]
fn a_real_log_verifies_and_reopens_in_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 5);
    assert_eq!(verify(&path).unwrap(), 5);
    // Reopening continues the chain and the sequence.
    let events = Events::open(dir.path()).unwrap();
    let e = events.record(Draft::new(Actor::Engine, EventKind::Paused, "x"));
    assert_eq!(e.seq, 6);
    events.flush();
    assert_eq!(verify(&path).unwrap(), 6);
    assert_eq!(events.since(0, None).len(), 6);
}

#[test]
fn edits_deletions_and_reorders_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 4);
    let good = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = good.lines().collect();

    let edited = good.replacen("change 2", "change 9", 1);
    std::fs::write(&path, edited).unwrap();
    let e = verify(&path).unwrap_err().to_string();
    assert!(e.starts_with("line 3: hash"), "{e}");

    let deleted = [lines[0], lines[2], lines[3]].join("\n") + "\n";
    std::fs::write(&path, deleted).unwrap();
    let e = verify(&path).unwrap_err().to_string();
    assert!(e.starts_with("line 2: prev_hash"), "{e}");

    let reordered = [lines[0], lines[2], lines[1], lines[3]].join("\n") + "\n";
    std::fs::write(&path, reordered).unwrap();
    assert!(verify(&path)
        .unwrap_err()
        .to_string()
        .starts_with("line 2:"));
}

#[test]
fn a_torn_last_line_is_dropped_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 2);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"seq\":3,\"ti");
    std::fs::write(&path, text).unwrap();
    let events = Events::open(dir.path()).unwrap();
    assert_eq!(events.since(0, None).len(), 2);
    events.record(Draft::new(Actor::Api, EventKind::Resumed, "after a crash"));
    events.flush();
    assert_eq!(verify(&path).unwrap(), 3);
}

#[test]
fn events_recorded_from_many_threads_make_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let events = std::sync::Arc::new(Events::open(dir.path()).unwrap());
    let path = dir.path().join("audit.log");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (events, path) = (events.clone(), path.clone());
            std::thread::spawn(move || {
                for i in 0..50 {
                    let draft = Draft::new(Actor::Engine, EventKind::Alert, format!("{t}/{i}"));
                    if i % 5 == 0 {
                        // A state change's record: on disk when it returns.
                        let (e, ()) = events.record_durably(draft, |_| Ok::<(), ()>(())).unwrap();
                        let log = std::fs::read_to_string(&path).unwrap_or_default();
                        assert!(log.contains(&e.hash), "seq {} not on disk", e.seq);
                    } else {
                        events.record(draft);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    events.flush();
    assert_eq!(verify(&path).unwrap(), 200);
    drop(events);
    let reopened = Events::open(dir.path()).unwrap();
    let next = reopened.record(Draft::new(Actor::Api, EventKind::Paused, "after"));
    assert_eq!(next.seq, 201);
}
