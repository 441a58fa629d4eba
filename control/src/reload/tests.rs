//! The reloader against a real state directory (no sockets).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::{Outcome, ReloadError, Reloader};
use crate::event::{Actor, Draft, EventKind};
use crate::{Live, Shared};

fn text(dir: &Path, v2: u32) -> String {
    format!(
        "[listen]\nhttp = \"127.0.0.1:1\"\n[admin]\naddr = \"127.0.0.1:2\"\n[state]\ndir = \"{}\"\nkeep_revisions = 3\n\
         [[routes]]\nname = \"svc\"\n[[routes.versions]]\nname = \"v1\"\nurl = \"http://127.0.0.1:9001\"\nweight = 100\n\
         [[routes.versions]]\nname = \"v2\"\nurl = \"http://127.0.0.1:9002\"\nweight = {v2}\n",
        dir.join("state").display()
    )
}

fn start(dir: &Path, v2: u32) -> (Arc<Live>, Reloader) {
    let path = dir.join("serin.toml");
    std::fs::write(&path, text(dir, v2)).unwrap();
    let config = serin_config::load(&path).unwrap();
    let shared = Shared::open(&config.state.dir).unwrap();
    let live = Arc::new(Live::open(config, shared).unwrap());
    let reloader = Reloader::open(live.clone(), &path).unwrap();
    (live, reloader)
}

fn weight(live: &Live, version: &str) -> f64 {
    let snap = live.snapshot();
    snap.routes[0]
        .versions
        .iter()
        .find(|v| &*v.name == version)
        .unwrap()
        .weight
}

fn kinds(live: &Live) -> Vec<String> {
    live.shared()
        .events
        .since(0, None)
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

#[test]
fn applies_skips_and_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let (live, reloader) = start(dir.path(), 10);
    assert_eq!(live.state().revision, "r1");
    let path = reloader.path().to_owned();

    // A comment changes the bytes, not the meaning: no revision.
    std::fs::write(&path, format!("# hi\n{}", text(dir.path(), 10))).unwrap();
    assert!(matches!(
        reloader.reload(Actor::Api),
        Ok(Outcome::Unchanged { .. })
    ));
    assert!(
        reloader.reload_if_changed(Actor::File).is_none(),
        "bytes already seen"
    );

    std::fs::write(&path, text(dir.path(), 30)).unwrap();
    let Ok(Outcome::Applied { revision, event }) = reloader.reload(Actor::File) else {
        panic!("not applied")
    };
    assert_eq!(
        (revision.as_str(), live.state().revision.as_str()),
        ("r2", "r2")
    );
    assert_eq!(weight(&live, "v2"), 30.0);
    assert_eq!(event.after["weights"]["svc"]["v2"], 30);
    assert_eq!(live.snapshot().revision.as_ref(), "r2");

    std::fs::write(&path, "[[routes]]\nname = 1\n").unwrap();
    let Err(ReloadError::Rejected(why)) = reloader.reload(Actor::File) else {
        panic!("accepted a broken file")
    };
    assert!(why.contains("serin.toml:2:8:"), "{why}");
    assert_eq!(weight(&live, "v2"), 30.0, "the last good table serves");
    assert_eq!(
        kinds(&live).last().map(String::as_str),
        Some("config_rejected")
    );

    let listen = text(dir.path(), 30).replace("127.0.0.1:1", "127.0.0.1:3");
    std::fs::write(&path, listen).unwrap();
    let Err(ReloadError::Rejected(why)) = reloader.reload(Actor::Signal) else {
        panic!("applied a listener change")
    };
    assert!(why.contains("[listen] changed"), "{why}");
    assert_eq!(reloader.revisions().list().unwrap().len(), 2);
}

#[test]
fn live_weights_survive_where_the_file_did_not_change() {
    let dir = tempfile::tempdir().unwrap();
    let (live, reloader) = start(dir.path(), 10);
    let draft = Draft::new(Actor::Api, EventKind::WeightsChanged, "t");
    let w = BTreeMap::from([("v1".to_owned(), 50.0), ("v2".to_owned(), 50.0)]);
    live.set_weights("svc", &w, draft).unwrap();
    std::fs::write(reloader.path(), text(dir.path(), 20)).unwrap();
    let Ok(Outcome::Applied { event, .. }) = reloader.reload(Actor::Api) else {
        panic!("not applied")
    };
    assert_eq!(weight(&live, "v1"), 50.0, "v1 unchanged in the file");
    assert_eq!(weight(&live, "v2"), 20.0, "v2's file weight changed");
    assert!(
        event.reason.contains("v2 (file weight changed)"),
        "{}",
        event.reason
    );
}

#[test]
fn restore_writes_the_file_back_and_drops_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let (live, reloader) = start(dir.path(), 10);
    let first = std::fs::read(reloader.path()).unwrap();
    for v2 in [20, 30, 40] {
        std::fs::write(reloader.path(), text(dir.path(), v2)).unwrap();
        reloader.reload(Actor::File).unwrap();
    }
    assert_eq!(weight(&live, "v2"), 40.0);
    // keep_revisions = 3: r1 is gone.
    assert!(matches!(
        reloader.restore("r1", Actor::Api),
        Err(ReloadError::NoRevision(_))
    ));
    let draft = Draft::new(Actor::Api, EventKind::WeightsChanged, "t");
    live.set_weights("svc", &BTreeMap::from([("v1".to_owned(), 7.0)]), draft)
        .unwrap();
    let kept = reloader.revisions().bytes("r2").unwrap().unwrap();
    let Ok(Outcome::Applied { revision, .. }) = reloader.restore("r2", Actor::Api) else {
        panic!("not restored")
    };
    assert_eq!(revision, "r5");
    assert_eq!((weight(&live, "v1"), weight(&live, "v2")), (100.0, 20.0));
    assert_eq!(reloader.revisions().bytes("r5").unwrap().unwrap(), kept);
    assert_eq!(std::fs::read(reloader.path()).unwrap(), kept);
    let mut bak = reloader.path().as_os_str().to_owned();
    bak.push(".bak");
    assert_eq!(std::fs::read(bak).unwrap(), text(dir.path(), 40).as_bytes());
    assert_ne!(first, kept);
}

#[test]
fn a_file_changed_while_stopped_is_a_new_revision() {
    let dir = tempfile::tempdir().unwrap();
    let (live, reloader) = start(dir.path(), 10);
    let draft = Draft::new(Actor::Api, EventKind::WeightsChanged, "t");
    live.set_weights("svc", &BTreeMap::from([("v2".to_owned(), 0.0)]), draft)
        .unwrap();
    drop((live, reloader));
    let (live, reloader) = start(dir.path(), 20);
    assert_eq!(live.state().revision, "r2");
    assert_eq!(
        weight(&live, "v2"),
        20.0,
        "the file's new weight is new intent"
    );
    assert_eq!(reloader.revisions().list().unwrap().len(), 2);
    drop((live, reloader));
    let (live, _) = start(dir.path(), 20);
    assert_eq!(live.state().revision, "r2", "same file, same revision");
}

#[test]
fn weights_by_hand_bring_a_rolled_back_canary_back_under_the_engine() {
    use crate::engine::{rollback, RollbackMode};
    use crate::persist::Phase;
    let dir = tempfile::tempdir().unwrap();
    let (live, _reloader) = start(dir.path(), 10);
    rollback(&live, "svc", RollbackMode::Immediate, Actor::Api, "drill").unwrap();
    assert_eq!(live.state().routes["svc"].phase, Phase::RolledBack);
    assert_eq!(weight(&live, "v2"), 0.0);

    // Weights that leave the canary at 0 keep the route rolled back.
    let draft = Draft::new(Actor::Api, EventKind::WeightsChanged, "more v1");
    live.set_weights("svc", &BTreeMap::from([("v1".to_owned(), 50.0)]), draft)
        .unwrap();
    assert_eq!(live.state().routes["svc"].phase, Phase::RolledBack);

    let draft = Draft::new(Actor::Api, EventKind::WeightsChanged, "fixed in v2.0.1");
    let event = live
        .set_weights("svc", &BTreeMap::from([("v2".to_owned(), 5.0)]), draft)
        .unwrap();
    assert_eq!(weight(&live, "v2"), 5.0);
    assert!(
        !live.state().routes.contains_key("svc"),
        "the route is stable again: the engine judges v2 from the next tick"
    );
    assert_eq!(
        event.reason,
        "fixed in v2.0.1; v2 back from rolled_back: the engine judges it again"
    );
}

#[test]
fn a_change_whose_audit_line_a_crash_lost_is_appended_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("state/audit.log");
    let (live, reloader) = start(dir.path(), 10);
    let draft = Draft::new(Actor::Api, EventKind::WeightsChanged, "first");
    live.set_weights("svc", &BTreeMap::from([("v2".to_owned(), 0.0)]), draft)
        .unwrap();
    let one_change = std::fs::read_to_string(&log).unwrap();
    let draft = Draft::new(Actor::Api, EventKind::WeightsChanged, "second");
    let second = live
        .set_weights("svc", &BTreeMap::from([("v2".to_owned(), 5.0)]), draft)
        .unwrap();
    drop((live, reloader));
    // kill -9 after the second change's state was saved, before its line.
    std::fs::write(&log, &one_change).unwrap();
    let lines = |log: &Path| std::fs::read_to_string(log).unwrap().lines().count();
    let before = lines(&log);

    let (live, reloader) = start(dir.path(), 10);
    assert_eq!(weight(&live, "v2"), 5.0, "the saved state is what runs");
    assert_eq!(lines(&log), before + 1, "the lost line is back");
    let events = live.shared().events.since(second.seq - 1, None);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].seq, events[0].reason.as_str()),
        (second.seq, "second")
    );
    assert_eq!(events[0].after, second.after);
    assert_eq!(
        crate::audit::verify(&log).unwrap(),
        lines(&log),
        "the chain verifies"
    );
    drop((live, reloader));
    let _ = start(dir.path(), 10);
    assert_eq!(lines(&log), before + 1, "appended once, not at every start");
}
