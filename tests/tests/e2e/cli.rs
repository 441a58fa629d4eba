//! The `serin` REST client against a running serin: tables, `--json`,
//! and exit codes (0 done, 1 refused, 2 unreachable or usage).

use std::process::Output;

use serde_json::Value;
use serin_loadtest::FakeVersion;
use serin_tests::{one_route, serin_bin, TestEnv, TOKEN};

async fn serin(env_admin: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(serin_bin())
        .args(args)
        .args(["--admin", env_admin])
        .env_remove("SERIN_ADMIN_TOKEN")
        .env_remove("SERIN_ADMIN")
        .output()
        .await
        .expect("run serin")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_then_status_and_exit_codes() {
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let env = TestEnv::start(&one_route(
        &[("v1", &v1.url(), 90.0), ("v2", &v2.url(), 10.0)],
        "",
    ))
    .await;
    let admin = env.admin_url("");

    let o = serin(
        &admin,
        &[
            "weights", "svc", "v1=75", "v2=25", "--reason", "cli test", "--token", TOKEN,
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("weights_changed"), "{}", stdout(&o));

    let o = serin(&admin, &["status", "--json"]).await;
    assert_eq!(o.status.code(), Some(0));
    let status: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(status["routes"][0]["weights"]["v2"], 25);

    let o = serin(&admin, &["status"]).await;
    let table = stdout(&o);
    assert!(
        table.contains("revision r1") && table.contains("VERSION"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("v2") && l.contains("25.0%")),
        "{table}"
    );

    let o = serin(&admin, &["events", "--route", "svc"]).await;
    assert!(
        stdout(&o).contains("weights_changed svc") && stdout(&o).contains("cli test"),
        "{}",
        stdout(&o)
    );

    // Refused by the server: exit 1 with its message.
    let o = serin(&admin, &["weights", "nope", "v1=1", "--token", TOKEN]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("404") && stderr(&o).contains("no route named"),
        "{}",
        stderr(&o)
    );
    let o = serin(
        &admin,
        &["weights", "svc", "v1=0", "v2=0", "--token", TOKEN],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "all-zero is refused");
    let o = serin(&admin, &["weights", "svc", "v1=1"]).await;
    assert_eq!(o.status.code(), Some(1), "no token: 401");
    assert!(stderr(&o).contains("401"), "{}", stderr(&o));

    // Usage errors and an unreachable serin: exit 2.
    let o = serin(&admin, &["weights", "svc", "v1"]).await;
    assert_eq!(o.status.code(), Some(2));
    let nothing = format!("http://{}", serin_tests::process::free_addr());
    let o = serin(&nothing, &["status"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot reach serin"), "{}", stderr(&o));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_revisions_reload_and_rollback() {
    let (v1, v2) = (
        FakeVersion::start("v1").unwrap(),
        FakeVersion::start("v2").unwrap(),
    );
    let env = TestEnv::start(&one_route(
        &[("v1", &v1.url(), 90.0), ("v2", &v2.url(), 10.0)],
        "",
    ))
    .await;
    let admin = env.admin_url("");
    let t = ["--token", TOKEN];

    let o = serin(
        &admin,
        &["maintenance", "on", "-m", "upgrading", t[0], t[1]],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("maintenance ON: upgrading"),
        "{}",
        stdout(&o)
    );
    assert!(env.live.snapshot().maintenance.is_some());
    let o = serin(&admin, &["maintenance", "off", t[0], t[1]]).await;
    assert_eq!(o.status.code(), Some(0));
    assert!(env.live.snapshot().maintenance.is_none());

    let o = serin(&admin, &["reload", t[0], t[1]]).await;
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("unchanged: revision r1"),
        "{}",
        stdout(&o)
    );
    let o = serin(&admin, &["revisions"]).await;
    assert!(
        stdout(&o)
            .lines()
            .any(|l| l.starts_with('*') && l.contains("r1")),
        "{}",
        stdout(&o)
    );
    let o = serin(&admin, &["restore", "r9", t[0], t[1]]).await;
    assert_eq!(o.status.code(), Some(1));

    let o = serin(
        &admin,
        &["rollback", "svc", "--reason", "pager", t[0], t[1]],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("rolled_back"), "{}", stdout(&o));
    let o = serin(&admin, &["resume", "svc", "--json", t[0], t[1]]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["route"]["weights"]["v2"], 10);

    let o = serin(
        &admin,
        &["rollback", "svc", "--to", "v1", "--json", t[0], t[1]],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["event"]["after"]["v1"], 100);
    assert_eq!(
        j["event"]["reason"],
        "rolled back by hand; all traffic to v1"
    );
    let o = serin(&admin, &["resume", "svc", t[0], t[1]]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // The first drill of the process is d1; --id prints its report again.
    let o = serin(
        &admin,
        &[
            "drill",
            "svc",
            "v2",
            "--duration",
            "2s",
            "--no-wait",
            t[0],
            t[1],
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("drill d1 (running): inject_errors on svc/v2"),
        "{}",
        stdout(&o)
    );
    let o = serin(&admin, &["drill", "--id", "d1"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("client errors"), "{}", stdout(&o));
    let o = serin(&admin, &["drill", "--id", "d9"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    env.stop().await;
}

#[tokio::test]
async fn no_token_and_a_public_admin_address_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serin.toml");
    // Never bound: serin checks the token before it binds anything.
    let text = format!(
        "[listen]\nhttp = \"127.0.0.1:1\"\n[admin]\naddr = \"0.0.0.0:2\"\n[state]\ndir = \"{}\"\n{}",
        dir.path().join("state").display(),
        "[[routes]]\nname = \"svc\"\n[[routes.versions]]\nname = \"v1\"\nurl = \"http://127.0.0.1:3\"\nweight = 1\n"
    );
    std::fs::write(&path, text).unwrap();
    let o = tokio::process::Command::new(serin_bin())
        .args(["run", "--config"])
        .arg(&path)
        .env_remove("SERIN_ADMIN_TOKEN")
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not loopback and no token is set"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_finds_the_admin_address_and_token_in_the_routing_file() {
    let v1 = FakeVersion::start("v1").unwrap();
    let env = TestEnv::start(&one_route(&[("v1", &v1.url(), 1.0)], "")).await;
    // The file an operator runs serin with: where the admin API listens
    // (a wildcard address is called on loopback) and which variable holds
    // the token.
    let port = env
        .admin_url("")
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let file = env.dir.path().join("ops.toml");
    std::fs::write(
        &file,
        one_route(&[("v1", &v1.url(), 1.0)], "").replace(
            "addr = \"127.0.0.1:2\"",
            &format!("addr = \"0.0.0.0:{port}\"\ntoken_env = \"OPS_TOKEN\""),
        ),
    )
    .unwrap();
    let run = |token: Option<&str>, args: &[&str]| {
        let mut cmd = tokio::process::Command::new(serin_bin());
        cmd.args(args)
            .env_remove("SERIN_ADMIN_TOKEN")
            .env_remove("SERIN_ADMIN")
            .env_remove("OPS_TOKEN");
        if let Some(t) = token {
            cmd.env("OPS_TOKEN", t);
        }
        cmd.output()
    };
    let f = file.to_str().unwrap();
    let o = run(None, &["status", "--json", "-c", f]).await.unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(Some(TOKEN), &["weights", "svc", "v1=2", "--config", f])
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // No token in the variable the file names: refused by serin.
    let o = run(None, &["weights", "svc", "v1=3", "-c", f])
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("401"), "{}", stderr(&o));
    // An exported SERIN_ADMIN does not send a `-c` call elsewhere.
    let o = tokio::process::Command::new(serin_bin())
        .args(["status", "--json", "-c", f])
        .env("SERIN_ADMIN", "http://127.0.0.1:1")
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // A file that does not parse: a usage error naming it.
    let o = run(None, &["status", "-c", "/nonexistent/serin.toml"])
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--config"), "{}", stderr(&o));
    env.stop().await;
}

/// The first stderr line of `serin run` (loopback admin, no token: it
/// warns at start) with `extra` arguments; the process is stopped by PID.
async fn first_log_line(extra: &[&str]) -> String {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serin.toml");
    // Two free loopback ports (a file cannot name port 0 twice).
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let text = format!(
        "[listen]\nhttp = \"127.0.0.1:{}\"\n[admin]\naddr = \"127.0.0.1:{}\"\n[state]\ndir = \"{}\"\n{}",
        free(),
        free(),
        dir.path().join("state").display(),
        "[[routes]]\nname = \"svc\"\n[[routes.versions]]\nname = \"v1\"\nurl = \"http://127.0.0.1:3\"\nweight = 1\n"
    );
    std::fs::write(&path, text).unwrap();
    let mut child = tokio::process::Command::new(serin_bin())
        .args(extra)
        .args(["run", "--config"])
        .arg(&path)
        .env_remove("SERIN_ADMIN_TOKEN")
        .env_remove("SERIN_LOG")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
        .await
        .expect("serin logs within 20 s")
        .unwrap()
        .expect("a log line");
    child.kill().await.unwrap();
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_to_a_file_carry_no_colour_and_json_logs_are_json() {
    let text = first_log_line(&[]).await;
    assert!(text.contains("WARN"), "{text}");
    assert!(!text.contains('\u{1b}'), "colour codes in a pipe: {text:?}");
    let json = first_log_line(&["--log-format", "json"]).await;
    let v: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(v["level"], "WARN", "{v}");
    assert!(
        v["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("no admin token"),
        "{v}"
    );
}
