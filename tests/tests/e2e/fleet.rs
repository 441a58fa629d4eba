//! Fleet mode (`[cluster]`): three `serin` processes share live state
//! through a real etcd.

use bytes::Bytes;
use serde_json::{json, Value};
use serin_control::{Actor, Draft, EtcdStore, EventKind, Events, LiveState, Store, StoreError};
use serin_loadtest::{FakeHandle, FakeVersion, LoadConfig, Report};
use serin_tests::client::TestClient;
use serin_tests::etcd::Etcd;
use serin_tests::process::SerinProcess;
use serin_tests::{assert_eventually, BEARER, TOKEN};

fn cluster(etcd: &Etcd, prefix: &str, node: &str) -> serin_config::Cluster {
    serin_config::Cluster {
        etcd: vec![etcd.url()],
        prefix: prefix.to_owned(),
        node: node.to_owned(),
        partition_after: std::time::Duration::from_secs(10),
    }
}

/// A replica's routing file: `[cluster]` and one route over v1/v2 (a
/// chain v2 → v1, and a rollback rule on v2's error rate).
fn routes(etcd: &Etcd, prefix: &str, node: &str, v1: &FakeHandle, v2: &FakeHandle) -> String {
    routes_with(
        etcd,
        prefix,
        node,
        v1,
        v2,
        (90, 10),
        "critical = [\"error_rate > 10%\"]",
    )
}

/// As [`routes`], with the weights and the rollback rules given.
fn routes_with(
    etcd: &Etcd,
    prefix: &str,
    node: &str,
    v1: &FakeHandle,
    v2: &FakeHandle,
    weights: (u32, u32),
    rules: &str,
) -> String {
    routes_at(&etcd.url(), prefix, node, v1, v2, weights, rules)
}

/// As [`routes_with`], reaching etcd at `etcd_url`.
fn routes_at(
    etcd_url: &str,
    prefix: &str,
    node: &str,
    v1: &FakeHandle,
    v2: &FakeHandle,
    weights: (u32, u32),
    rules: &str,
) -> String {
    format!(
        r#"[cluster]
etcd = ["{etcd_url}"]
prefix = "{prefix}"
node = "{node}"
partition_after = "2s"

[[routes]]
name = "svc"
  [[routes.versions]]
  name = "v1"
  url = "{}"
  weight = {}
  [[routes.versions]]
  name = "v2"
  url = "{}"
  weight = {}
  [routes.fallback]
  chain = ["v2", "v1"]
  [routes.rollback]
  stable = "v1"
  window = "3s"
  confirm = "1s"
  min_requests = 10
  {rules}
"#,
        v1.url(),
        weights.0,
        v2.url(),
        weights.1
    )
}

/// `rate` requests/s for `secs` to replica `i`'s data plane.
fn load(fleet: &Fleet, i: usize, rate: f64, secs: u64) -> tokio::task::JoinHandle<Report> {
    let cfg = LoadConfig {
        rate,
        duration: std::time::Duration::from_secs(secs),
        connections: 8,
        ..LoadConfig::new(
            format!("http://{}/", fleet.replicas[i].http)
                .parse()
                .unwrap(),
        )
    };
    tokio::spawn(async move { serin_loadtest::run(cfg).await.unwrap() })
}

struct Fleet {
    replicas: Vec<SerinProcess>,
    dirs: Vec<tempfile::TempDir>,
}

impl Fleet {
    fn start(etcd: &Etcd, prefix: &str, v1: &FakeHandle, v2: &FakeHandle) -> Self {
        Self::start_with(|node| routes(etcd, prefix, node, v1, v2))
    }

    /// Three replicas `a`, `b`, `c`, each from `file(node)`.
    fn start_with(file: impl Fn(&str) -> String) -> Self {
        let mut replicas = Vec::new();
        let mut dirs = Vec::new();
        for node in ["a", "b", "c"] {
            let dir = tempfile::tempdir().unwrap();
            let file = file(node);
            replicas.push(SerinProcess::spawn_with_env(
                dir.path(),
                &file,
                &[("SERIN_ADMIN_TOKEN", TOKEN)],
            ));
            dirs.push(dir);
        }
        Self { replicas, dirs }
    }

    fn admin(&self, i: usize, path: &str) -> String {
        format!("http://{}{path}", self.replicas[i].admin)
    }

    async fn weights(&self, i: usize) -> Value {
        TestClient::http1()
            .get(&self.admin(i, "/api/v1/routes/svc"), &[])
            .await
            .json()["weights"]
            .clone()
    }

    async fn set(&self, i: usize, weights: Value) -> serin_tests::client::Reply {
        let body = json!({"weights": weights, "reason": "fleet test"}).to_string();
        TestClient::http1()
            .send(
                "PUT",
                &self.admin(i, "/api/v1/routes/svc/weights"),
                &[
                    ("authorization", BEARER),
                    ("content-type", "application/json"),
                ],
                Bytes::from(body),
            )
            .await
    }

    /// Replica `i`'s events (`query`: e.g. `?route=svc`).
    async fn events(&self, i: usize, query: &str) -> Value {
        TestClient::http1()
            .get(&self.admin(i, &format!("/api/v1/events{query}")), &[])
            .await
            .json()
    }

    /// The leader every live replica (those in `alive`) agrees on.
    async fn leader(&self, alive: &[usize]) -> Option<String> {
        let mut seen = Vec::new();
        for &i in alive {
            seen.push(
                self.status(i).await["cluster"]["leader"]
                    .as_str()
                    .map(str::to_owned),
            );
        }
        seen.dedup();
        match seen.as_slice() {
            [Some(l)] => Some(l.clone()),
            _ => None,
        }
    }

    async fn status(&self, i: usize) -> Value {
        TestClient::http1()
            .get(&self.admin(i, "/api/v1/status"), &[])
            .await
            .json()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_replica_is_in_force_on_every_replica() {
    let etcd = Etcd::start();
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let fleet = Fleet::start(&etcd, "/serin/propagate", &v1, &v2);
    // Every replica sees the fleet: three nodes present.
    for i in 0..3 {
        assert_eventually!(
            fleet.status(i).await["cluster"]["nodes"]
                .as_array()
                .is_some_and(|n| n.len() == 3),
            10,
            "replica {i}: {}",
            fleet.status(i).await
        );
    }
    let s = fleet.status(1).await;
    assert_eq!(s["cluster"]["node"], "b");
    assert_eq!(s["cluster"]["connected"], true);
    // One leader, the same for all.
    assert_eventually!(
        fleet.leader(&[0, 1, 2]).await.is_some(),
        10,
        "no leader agreed on"
    );
    // `serin status` shows the fleet.
    let out = std::process::Command::new(serin_tests::serin_bin())
        .args(["status", "--admin", &fleet.admin(1, "")])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("fleet: this replica b") && table.contains("(leader)"),
        "{table}"
    );

    // A change on A: in force on B and C, recorded there as A's.
    let r = fleet.set(0, json!({"v1": 70, "v2": 30})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    for i in 1..3 {
        assert_eventually!(
            fleet.weights(i).await == json!({"v1": 70, "v2": 30}),
            5,
            "replica {i}: {}",
            fleet.weights(i).await
        );
    }
    let events = fleet.events(2, "?route=svc").await;
    let mirrored = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "weights_changed")
        .cloned()
        .unwrap_or_else(|| panic!("{events}"));
    assert_eq!(mirrored["actor"], "api");
    assert!(
        mirrored["reason"].as_str().unwrap().ends_with("(on a)"),
        "{mirrored}"
    );

    // And back the other way, from C.
    let r = fleet.set(2, json!({"v1": 100, "v2": 0})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    for i in 0..2 {
        assert_eventually!(
            fleet.weights(i).await == json!({"v1": 100, "v2": 0}),
            5,
            "replica {i}"
        );
    }
    // The data plane follows: A sends nobody to v2 now.
    let a = &fleet.replicas[0];
    for _ in 0..20 {
        let r = TestClient::http1()
            .get(&format!("http://{}/", a.http), &[])
            .await;
        assert_eq!(r.text().trim(), "v1");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_conflicting_changes_exactly_one_wins() {
    let etcd = Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = (
        EtcdStore::start(&cluster(&etcd, "/serin/cas", "x"), &dir.path().join("x"), 5).unwrap(),
        EtcdStore::start(&cluster(&etcd, "/serin/cas", "y"), &dir.path().join("y"), 5).unwrap(),
    );
    let events = Events::new(16);
    let event = events.record(Draft::new(Actor::Api, EventKind::WeightsChanged, "t"));
    let state = |w: f64| {
        let mut s = LiveState::default();
        s.weights
            .entry("svc".into())
            .or_default()
            .insert("v2".into(), w);
        s
    };
    let (x, y) = tokio::task::spawn_blocking(move || {
        // Both read the same state, both change it: one is applied.
        let base = x.load().unwrap().map_or(0, |s| s.version);
        assert_eq!(y.load().unwrap().map_or(0, |s| s.version), base);
        let won = x.save(base, &state(30.0), &event).unwrap();
        assert!(won > base);
        match y.save(base, &state(50.0), &event) {
            Err(StoreError::Conflict { current }) => {
                assert_eq!(current.version, won);
                assert_eq!(current.node.as_deref(), Some("x"));
                assert_eq!(current.saved.state, state(30.0));
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        // Based on what won, y's next change is applied.
        let next = y.save(won, &state(50.0), &event).unwrap();
        assert!(next > won);
        (x, y)
    })
    .await
    .unwrap();
    drop((x, y));
    // The fleet's chain did not fork: y's entry follows x's, and the chain
    // reaches the head the state records.
    let chain = serin_control::verify_cluster(&cluster(&etcd, "/serin/cas", "z")).await;
    assert_eq!(chain, Ok(2), "{chain:?}");

    // Over the API: two replicas changing the same route at once, many
    // times: every answer is 200 or 409 with the state that won, and the
    // fleet ends on one state.
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let fleet = Fleet::start(&etcd, "/serin/conflicts", &v1, &v2);
    let mut conflicts = 0;
    for round in 0..20u32 {
        let (a, b) = tokio::join!(
            fleet.set(0, json!({"v2": round})),
            fleet.set(1, json!({"v2": 50 + round}))
        );
        let codes = (a.status.as_u16(), b.status.as_u16());
        assert!(
            matches!(codes, (200, 200) | (200, 409) | (409, 200)),
            "round {round}: {codes:?} {} {}",
            a.text(),
            b.text()
        );
        for r in [&a, &b] {
            if r.status == 409 {
                conflicts += 1;
                let body = r.json();
                assert!(body["current"]["weights"]["svc"].is_object(), "{body}");
            }
        }
    }
    let last = fleet.weights(0).await;
    for i in 1..3 {
        assert_eventually!(fleet.weights(i).await == last, 5, "replica {i} differs");
    }
    eprintln!("conflicts over 20 simultaneous pairs: {conflicts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_canary_with_traffic_on_every_replica_is_rolled_back_on_all() {
    let etcd = Etcd::start();
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let fleet = Fleet::start(&etcd, "/serin/rollback", &v1, &v2);
    let traffic: Vec<_> = (0..3).map(|i| load(&fleet, i, 80.0, 10)).collect();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    v2.faults().set_error_rate(1.0);
    for i in 0..3 {
        assert_eventually!(
            fleet.weights(i).await["v2"] == 0,
            8,
            "replica {i} still sends to v2: {}",
            fleet.weights(i).await
        );
    }
    for i in 0..3 {
        let s = fleet.status(i).await;
        assert_eq!(s["routes"][0]["state"], "rolled_back", "replica {i}: {s}");
    }
    // The fallback chain answered every failed v2 attempt from v1.
    for (i, t) in traffic.into_iter().enumerate() {
        let r = t.await.unwrap();
        assert_eq!(r.errors, 0, "replica {i}: {r:?}");
        assert!(r.ok > 500, "replica {i}: {r:?}");
    }
    // One decision for the fleet: one rollback event written by an engine,
    // mirrored by the others.
    let mut own = 0;
    for i in 0..3 {
        let e = fleet.events(i, "?route=svc").await;
        let done: Vec<&Value> = e["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "rollback_completed")
            .collect();
        assert_eq!(done.len(), 1, "replica {i}: {e}");
        if !done[0]["reason"].as_str().unwrap().contains("(on ") {
            own += 1;
        }
    }
    assert_eq!(own, 1, "exactly one replica decided");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_away_for_10s_costs_no_request_and_the_fleet_converges_after() {
    let mut etcd = Etcd::start();
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let fleet = Fleet::start(&etcd, "/serin/outage", &v1, &v2);
    for i in 0..3 {
        assert_eventually!(
            fleet.status(i).await["cluster"]["connected"] == true,
            10,
            "replica {i} never connected"
        );
    }
    let traffic: Vec<_> = (0..3).map(|i| load(&fleet, i, 50.0, 18)).collect();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    etcd.stop();
    // Changes are refused while etcd is away; nothing is applied.
    let r = fleet.set(0, json!({"v1": 50, "v2": 50})).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(fleet.weights(0).await, json!({"v1": 90, "v2": 10}));
    assert_eventually!(
        fleet.status(1).await["cluster"]["connected"] == false,
        5,
        "replica b still says connected"
    );
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    etcd.resume();
    // Back: a change is applied and in force everywhere.
    assert_eventually!(
        fleet.set(0, json!({"v1": 60, "v2": 40})).await.status == 200,
        10,
        "changes still refused after etcd came back"
    );
    for i in 0..3 {
        assert_eventually!(
            fleet.weights(i).await == json!({"v1": 60, "v2": 40}),
            8,
            "replica {i} did not converge: {}",
            fleet.weights(i).await
        );
    }
    for (i, t) in traffic.into_iter().enumerate() {
        let r = t.await.unwrap();
        assert_eq!(
            r.errors, 0,
            "replica {i} failed requests while etcd was away: {r:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_mid_rollback_is_replaced_and_the_rollback_goes_on_from_its_step() {
    let etcd = Etcd::start();
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let rules = "warning = [\"error_rate > 5%\"]\n  on_warning = \"gradual\"\n  \
                 gradual = { steps = [\"25%\", \"10%\", \"0%\"], every = \"3s\" }";
    let mut fleet = Fleet::start_with(|node| {
        routes_with(&etcd, "/serin/failover", node, &v1, &v2, (50, 50), rules)
    });
    assert_eventually!(fleet.leader(&[0, 1, 2]).await.is_some(), 10, "no leader");
    let first = fleet.leader(&[0, 1, 2]).await.unwrap();
    let dead = ["a", "b", "c"].iter().position(|n| *n == first).unwrap();
    let alive: Vec<usize> = (0..3).filter(|i| *i != dead).collect();
    let traffic: Vec<_> = alive.iter().map(|&i| load(&fleet, i, 80.0, 25)).collect();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    v2.faults().set_error_rate(0.2);
    // The first step, decided by the first leader; then it dies.
    assert_eventually!(
        fleet.weights(alive[0]).await["v2"] == 25,
        8,
        "no first step: {}",
        fleet.weights(alive[0]).await
    );
    fleet.replicas[dead].child.kill().unwrap();
    let _ = fleet.replicas[dead].child.wait();
    // Another leader within the lease's 5 s (and a heartbeat) ...
    assert_eventually!(
        fleet.leader(&alive).await.is_some_and(|l| l != first),
        8,
        "no new leader"
    );
    // ... finishes the rollback from the step reached.
    for &i in &alive {
        assert_eventually!(
            fleet.weights(i).await["v2"] == 0,
            15,
            "replica {i} never reached 0: {}",
            fleet.weights(i).await
        );
    }
    let e = fleet.events(alive[0], "?route=svc").await;
    let steps: Vec<Value> = e["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            matches!(
                e["kind"].as_str(),
                Some("rollback_started" | "rollback_step" | "rollback_completed")
            ) && e["after"]["v2"].is_number()
        })
        .map(|e| e["after"]["v2"].clone())
        .collect();
    // Each step once, in order: none repeated, none lost.
    assert_eq!(steps, [json!(25), json!(10), json!(0)], "{e}");
    for (i, t) in traffic.into_iter().enumerate() {
        let r = t.await.unwrap();
        assert_eq!(r.errors, 0, "load on replica {}: {r:?}", alive[i]);
    }
}

/// Replica C (index 2, reaching etcd through `relay`) is cut off past
/// `partition_after`; v2 then fails all of C's users for `secs` seconds of
/// load on C, and C pulls v2 by itself, with no client error.
async fn c_cut_off_pulls_v2(
    fleet: &Fleet,
    relay: &serin_tests::relay::Relay,
    v2: &FakeHandle,
    secs: u64,
) {
    for i in 0..3 {
        assert_eventually!(
            fleet.status(i).await["cluster"]["connected"] == true,
            10,
            "replica {i} never connected"
        );
    }
    relay.cut();
    assert_eventually!(
        fleet.status(2).await["cluster"]["partitioned"] == true,
        8,
        "c never saw itself partitioned: {}",
        fleet.status(2).await["cluster"]
    );
    // Only C's users, and v2 fails them all (the chain answers from v1).
    v2.faults().set_error_rate(1.0);
    let traffic = load(fleet, 2, 80.0, secs);
    assert_eventually!(
        fleet.weights(2).await["v2"] == 0,
        8,
        "c did not pull v2: {}",
        fleet.weights(2).await
    );
    let r = traffic.await.unwrap();
    assert_eq!(r.errors, 0, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_replica_pulls_a_failing_canary_by_itself_and_writes_it_back() {
    let etcd = Etcd::start();
    let relay = serin_tests::relay::Relay::start(etcd.addr()).await;
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let rules = "critical = [\"error_rate > 10%\"]";
    // C reaches etcd through the relay; A and B directly.
    let fleet = Fleet::start_with(|node| {
        let url = if node == "c" { relay.url() } else { etcd.url() };
        routes_at(&url, "/serin/partition", node, &v1, &v2, (90, 10), rules)
    });
    c_cut_off_pulls_v2(&fleet, &relay, &v2, 10).await;
    // The fleet does not know yet.
    assert_eq!(fleet.weights(0).await["v2"], 10);

    // Back in touch: the fleet had not changed, so C's decision is written
    // back and in force everywhere.
    relay.restore();
    for i in 0..2 {
        assert_eventually!(
            fleet.weights(i).await["v2"] == 0,
            10,
            "replica {i} never got c's rollback: {}",
            fleet.weights(i).await
        );
    }
    // C says which way it went (recorded once its write-back returns).
    let events = || async { fleet.events(2, "").await };
    assert_eventually!(
        events().await["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "fleet_rejoined"),
        5,
        "c never recorded fleet_rejoined"
    );
    let e = events().await;
    let kinds: Vec<&str> = e["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    let at = |k: &str| kinds.iter().position(|x| *x == k);
    let (cut, pulled, back) = (
        at("fleet_partitioned").expect("fleet_partitioned"),
        at("rollback_completed").expect("rollback_completed"),
        at("fleet_rejoined").expect("fleet_rejoined"),
    );
    assert!(cut < pulled && pulled < back, "{kinds:?}");
    let rejoined = &e["events"][back];
    assert!(
        rejoined["reason"]
            .as_str()
            .unwrap()
            .contains("is the fleet's now"),
        "{rejoined}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_taken_while_partitioned_survives_a_restart_and_is_written_back() {
    decision_survives_restart(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_survives_a_restart_still_cut_off_and_is_written_back_once_etcd_is_back() {
    decision_survives_restart(true).await;
}

/// C pulls v2 while cut off, dies before its write-back and restarts:
/// with etcd reachable again, or (`still_cut`) still cut off, etcd back
/// only after the restart. Either way the fleet has not changed meanwhile.
async fn decision_survives_restart(still_cut: bool) {
    let etcd = Etcd::start();
    let relay = serin_tests::relay::Relay::start(etcd.addr()).await;
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let rules = "critical = [\"error_rate > 10%\"]";
    let file = |node: &str| {
        let url = if node == "c" { relay.url() } else { etcd.url() };
        routes_at(&url, "/serin/pending", node, &v1, &v2, (90, 10), rules)
    };
    let mut fleet = Fleet::start_with(file);
    c_cut_off_pulls_v2(&fleet, &relay, &v2, 6).await;
    // C dies before it can write its decision back.
    fleet.replicas[2].child.kill().unwrap();
    let _ = fleet.replicas[2].child.wait();
    assert_eq!(
        fleet.weights(0).await["v2"],
        10,
        "the fleet cannot know yet"
    );
    if !still_cut {
        relay.restore();
    }
    fleet.replicas[2] = SerinProcess::spawn_with_env(
        fleet.dirs[2].path(),
        &file("c"),
        &[("SERIN_ADMIN_TOKEN", TOKEN)],
    );
    assert_eq!(
        fleet.weights(2).await["v2"],
        0,
        "c restarted on its own decision, not on the fleet's older state"
    );
    if still_cut {
        relay.restore();
    }
    for i in 0..2 {
        assert_eventually!(
            fleet.weights(i).await["v2"] == 0,
            10,
            "replica {i} never got the rollback c decided before its restart: {}",
            fleet.weights(i).await
        );
    }
    assert_eventually!(
        fleet.events(2, "").await["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "fleet_rejoined"
                && e["reason"].as_str().unwrap().contains("is the fleet's now")),
        5,
        "c never said its decision was written back"
    );
    assert!(
        !fleet.dirs[2]
            .path()
            .join("state/fleet-pending.json")
            .exists(),
        "the written-back decision is no longer kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_replica_under_a_taken_node_name_stands_aside_until_the_name_is_free() {
    let etcd = Etcd::start();
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    // The third replica's file was copied from the first's and kept its
    // node name. The first started first: the name is its.
    let name = |node: &str| if node == "c" { "a" } else { node }.to_owned();
    let mut fleet = Fleet::start_with(|node| routes(&etcd, "/serin/dup", &name(node), &v1, &v2));
    let conflict = |v: &Value| v["cluster"]["conflict"].as_str().map(str::to_owned);
    assert_eventually!(
        conflict(&fleet.status(2).await)
            .is_some_and(|c| c.contains("another live replica runs as node \"a\"")),
        10,
        "the copy never stood aside: {}",
        fleet.status(2).await["cluster"]
    );
    let first = fleet.status(0).await;
    assert_eq!(conflict(&first), None, "{}", first["cluster"]);
    let names = |v: &Value| {
        let mut n: Vec<String> = v["cluster"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&fleet.status(1).await), ["a", "b"]);
    // The copy's users are still served, on the fleet's state.
    assert_eq!(fleet.weights(2).await["v2"], 10);

    // The first dies: once its lease runs out, the name is the copy's.
    fleet.replicas[0].child.kill().unwrap();
    let _ = fleet.replicas[0].child.wait();
    assert_eventually!(
        conflict(&fleet.status(2).await).is_none() && names(&fleet.status(2).await) == ["a", "b"],
        15,
        "the copy never took the free name: {}",
        fleet.status(2).await["cluster"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_state_a_replica_cannot_apply_is_said_in_its_status_and_the_next_one_heals_it() {
    let etcd = Etcd::start();
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let fleet = Fleet::start(&etcd, "/serin/behind", &v1, &v2);
    let dir = tempfile::tempdir().unwrap();
    let other = EtcdStore::start(&cluster(&etcd, "/serin/behind", "newer"), dir.path(), 5).unwrap();
    let based_on = tokio::task::spawn_blocking({
        let other = other.clone();
        move || other.load().unwrap().map_or(0, |s| s.version)
    })
    .await
    .unwrap();
    // A replica running a newer serin publishes a routing file these
    // replicas cannot parse.
    let unparsable: LiveState = serde_json::from_value(json!({
        "revision": "r9",
        "routing": {"revision": "r9", "sha256": "00", "text": "[routes\nname = "}
    }))
    .unwrap();
    let event = Events::new(8).record(Draft::new(
        Actor::Api,
        EventKind::ConfigApplied,
        "newer file",
    ));
    let saved = tokio::task::spawn_blocking({
        let other = other.clone();
        move || other.save(based_on, &unparsable, &event).unwrap()
    })
    .await
    .unwrap();
    for i in 0..3 {
        assert_eventually!(
            fleet.status(i).await["cluster"]["behind"]
                .as_str()
                .is_some_and(|b| b.contains(&format!("(version {saved}) is not in force here"))),
            5,
            "replica {i} does not say it is behind: {}",
            fleet.status(i).await["cluster"]
        );
        // Still serving the table it had.
        assert_eq!(fleet.weights(i).await["v2"], 10);
    }
    // The next change the fleet makes applies: behind no more.
    assert_eq!(
        fleet.set(0, json!({"v2": 0})).await.status,
        409,
        "based on a state not in force here"
    );
    let healed: LiveState = serde_json::from_value(json!({
        "revision": "r1",
        "weights": {"svc": {"v2": 0.0}}
    }))
    .unwrap();
    let event = Events::new(8).record(Draft::new(Actor::Api, EventKind::WeightsChanged, "back"));
    tokio::task::spawn_blocking(move || other.save(saved, &healed, &event).unwrap())
        .await
        .unwrap();
    for i in 0..3 {
        assert_eventually!(
            fleet.status(i).await["cluster"]["behind"].is_null()
                && fleet.weights(i).await["v2"] == 0,
            5,
            "replica {i} still behind: {}",
            fleet.status(i).await["cluster"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_on_one_replica_is_the_fleets_routing_file_and_the_others_drift() {
    let etcd = Etcd::start();
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let fleet = Fleet::start(&etcd, "/serin/revisions", &v1, &v2);
    // One routing file for the fleet, the first replica's: none drifts.
    for i in 0..3 {
        assert_eventually!(
            fleet.status(i).await["config_drift"] == false,
            10,
            "replica {i}: {}",
            fleet.status(i).await
        );
    }
    let r1 = fleet.status(0).await["revision"].clone();
    for i in 1..3 {
        assert_eq!(fleet.status(i).await["revision"], r1);
    }

    // B's file gains a route; reloaded there, it is every replica's.
    let extra = format!(
        "{}\n[[routes]]\nname = \"extra\"\npath_prefix = \"/extra\"\n  [[routes.versions]]\n  name = \"v2\"\n  url = \"{}\"\n  weight = 1\n",
        routes(&etcd, "/serin/revisions", "b", &v1, &v2),
        v2.url()
    );
    fleet.replicas[1].write_routes(&extra);
    let r = TestClient::http1()
        .send(
            "POST",
            &fleet.admin(1, "/api/v1/reload"),
            &[("authorization", BEARER)],
            Bytes::new(),
        )
        .await;
    assert!(r.status == 200, "{}", r.text());
    let r2 = fleet.status(1).await["revision"].clone();
    assert_ne!(r2, r1);
    for i in [0, 2] {
        assert_eventually!(
            fleet.status(i).await["revision"] == r2,
            5,
            "replica {i} still on {}",
            fleet.status(i).await["revision"]
        );
        let s = fleet.status(i).await;
        assert!(
            s["routes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == "extra"),
            "{s}"
        );
        // Its own file still says otherwise.
        assert_eq!(s["config_drift"], true, "{s}");
        // And its data plane routes by the fleet's file.
        let got = TestClient::http1()
            .get(&format!("http://{}/extra", fleet.replicas[i].http), &[])
            .await;
        assert_eq!(got.text().trim(), "v2");
    }
    assert_eq!(fleet.status(1).await["config_drift"], false);

    // Restoring the first revision on C, which did not publish it: C kept
    // it when it put it in force, and the restore is the fleet's.
    let restore = format!("/api/v1/revisions/{}/restore", r1.as_str().unwrap());
    let r = TestClient::http1()
        .send(
            "POST",
            &fleet.admin(2, &restore),
            &[("authorization", BEARER)],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    for i in 0..3 {
        assert_eventually!(
            !fleet.status(i).await["routes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["name"] == "extra"),
            5,
            "replica {i} still routes /extra"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_audit_chain_for_the_fleet_mirrored_everywhere_and_a_deleted_head_shows() {
    let etcd = Etcd::start();
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let prefix = "/serin/chain";
    let fleet = Fleet::start(&etcd, prefix, &v1, &v2);
    for i in 0..3 {
        assert_eventually!(
            fleet.status(i).await["cluster"]["connected"] == true,
            10,
            "replica {i}"
        );
    }
    // Changes on all three replicas: one chain.
    for (i, w) in [(0, 20), (1, 30), (2, 40)] {
        let r = fleet.set(i, json!({"v2": w})).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eventually!(
            fleet.weights((i + 1) % 3).await["v2"] == w,
            5,
            "change {w} not in force"
        );
    }
    let mirror = |i: usize| fleet.dirs[i].path().join("state/fleet-audit.log");
    let read = |i: usize| std::fs::read_to_string(mirror(i)).unwrap_or_default();
    // Every replica's mirror is the same chain, whole.
    assert_eventually!(
        read(0).lines().count() >= 3 && read(0) == read(1) && read(1) == read(2),
        5,
        "mirrors differ:\n{}\n--\n{}\n--\n{}",
        read(0),
        read(1),
        read(2)
    );
    let entries = read(0).lines().count();
    for i in 0..3 {
        assert_eq!(
            serin_control::verify_audit_log(&mirror(i)).unwrap(),
            entries
        );
    }
    let verify = || {
        std::process::Command::new(serin_tests::serin_bin())
            .args(["audit", "verify", "--cluster", "-c"])
            .arg(&fleet.replicas[0].config)
            .output()
            .unwrap()
    };
    let ok = verify();
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.contains(&format!("OK, {entries} entries")), "{out}");

    // The last entry deleted in etcd: the head in the state says so.
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let key = format!("{prefix}/audit/{entries:020}");
    let r = TestClient::http1()
        .send(
            "POST",
            &format!("{}/v3/kv/deleterange", etcd.url()),
            &[("content-type", "application/json")],
            Bytes::from(json!({"key": b64(&key)}).to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["deleted"], "1", "{}", r.text());
    let bad = verify();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("ends at seq {}", entries - 1)),
        "{err}"
    );
}
