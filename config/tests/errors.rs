//! Every kind of bad routing file gives `line:col: message` at the
//! offending value. Positions here are worked out by hand from the text.

use serin_config::parse;

/// A one-route file. `route_line` lands on line 3 (after `name`), and
/// `tail` starts on line 8, inside the `[[routes.versions]]` table unless it
/// opens a new table.
fn file(route_line: &str, tail: &str) -> String {
    format!(
        "[[routes]]\nname = \"api\"\n{route_line}\n[[routes.versions]]\nname = \"v1\"\nurl = \"http://127.0.0.1:9001\"\nweight = 1\n{tail}\n"
    )
}

/// Every error of `text` as `line:col: message`.
fn errors(text: &str) -> Vec<String> {
    let errors = parse(text, "t.toml")
        .expect_err("the file should be rejected")
        .0;
    errors
        .iter()
        .map(|e| {
            assert_eq!(e.file, "t.toml");
            format!("{}:{}: {}", e.line, e.col, e.message)
        })
        .collect()
}

/// Asserts exactly one error, at `at` (`line:col`), whose message contains `needle`.
#[track_caller]
fn assert_one(text: &str, at: &str, needle: &str) {
    let all = errors(text);
    assert_eq!(all.len(), 1, "expected one error, got {all:#?}");
    let prefix = format!("{at}: ");
    assert!(
        all[0].starts_with(&prefix) && all[0].contains(needle),
        "got {:?}, want {at}: …{needle}…",
        all[0]
    );
}

#[test]
fn the_base_file_is_valid() {
    parse(&file("", ""), "t.toml").unwrap();
}

#[test]
fn toml_errors_keep_their_one_line_message() {
    assert_one("[listen\nhttp = 1\n", "1:8", "unclosed table");
    assert_one(
        "[listen]\nhtps = \"x\"\n",
        "2:1",
        "unknown field `htps`, expected one of `http`",
    );
    assert_one(
        "[listen]\nhttp = 8080\n",
        "2:8",
        "invalid type: integer `8080`, expected a string",
    );
    assert_one(&file("", "bogus = 2"), "8:1", "unknown field `bogus`");
    assert_one(
        &file("", "[routes.breakr]"),
        "8:9",
        "unknown field `breakr`",
    );
    assert_one(
        &file("", "").replace("weight = 1", "weight = \"1\""),
        "7:10",
        "expected a number (integer or float)",
    );
    assert_one(
        "[[routes]]\npath_prefix = \"/\"\n",
        "1:1",
        "missing field `name`",
    );
    // A serde error stops parsing: the bad address on line 3 is not reached.
    let all = errors("[listen]\nbogus = 1\nhttp = \"x\"\n");
    assert_eq!(all.len(), 1, "{all:?}");
}

#[test]
fn names_must_be_unique() {
    let twice = format!("{}{}", file("", ""), file("", ""));
    assert_one(&twice, "10:8", "duplicate route name `api`");
    let version = "[[routes.versions]]\nname = \"v1\"\nurl = \"http://127.0.0.1:9002\"\nweight = 1";
    assert_one(&file("", version), "9:8", "duplicate version name `v1`");
    assert_one(
        &file("", "").replace("name = \"v1\"", "name = \"v 1\""),
        "5:8",
        "version name `v 1` must be non-empty",
    );
}

#[test]
fn weights() {
    let with = |w: &str| file("", "").replace("weight = 1", &format!("weight = {w}"));
    assert_one(
        &with("-1"),
        "7:10",
        "weight must be a finite number >= 0, got -1",
    );
    assert_one(&with("nan"), "7:10", "weight must be a finite number >= 0");
    assert_one(
        &with("inf"),
        "7:10",
        "weight must be a finite number >= 0, got inf",
    );
    assert_one(
        &with("0"),
        "7:10",
        "every weight of route `api` is 0; at least one must be above 0",
    );
    assert_eq!(
        parse(&with("2.5"), "t.toml").unwrap().routes[0].versions[0].weight,
        2.5
    );
}

#[test]
fn version_urls() {
    let with = |url: &str| file("", "").replace("http://127.0.0.1:9001", url);
    assert_one(
        &with("ftp://127.0.0.1:21"),
        "6:7",
        "must look like http://host:port",
    );
    assert_one(
        &with("127.0.0.1:9001"),
        "6:7",
        "must look like http://host:port",
    );
    assert_one(
        &with("http://127.0.0.1:9001/api"),
        "6:7",
        "must have no path or query",
    );
    assert_one(
        &with("http://127.0.0.1:9001/?a=1"),
        "6:7",
        "must have no path or query",
    );
    assert_one(&with("http://user:pw@127.0.0.1:9001"), "6:7", "credentials");
    assert_one(&with("http://"), "6:7", "is not a URL");
    parse(&with("https://backend.internal/"), "t.toml").unwrap();
}

#[test]
fn durations() {
    assert_one(
        &file("", "timeout = \"10\""),
        "8:11",
        "timeout: `10` has no unit: write e.g. 10s or 10ms",
    );
    assert_one(&file("", "timeout = \"10 s\""), "8:11", "timeout");
    assert_one(
        &file("", "timeout = \"0s\""),
        "8:11",
        "timeout must be above zero",
    );
    assert_one(
        &file("", "timeout = \"3d\""),
        "8:11",
        "unknown duration unit `d`",
    );
}

#[test]
fn engine_tick() {
    let with_tick = |tick: &str| format!("[engine]\ntick = \"{tick}\"\n{}", file("", ""));
    assert_one(
        &with_tick("10ms"),
        "2:8",
        "tick must be at least 20ms, got 10ms",
    );
    assert_one(&with_tick("soon"), "2:8", "tick: ");
    let config = parse(&with_tick("250ms"), "t.toml").unwrap();
    assert_eq!(config.engine.tick, std::time::Duration::from_millis(250));
    let config = parse(&file("", ""), "t.toml").unwrap();
    assert_eq!(config.engine.tick, std::time::Duration::from_millis(100));
}

#[test]
fn windows_longer_than_the_telemetry_keeps_are_refused() {
    assert_one(
        &file("", "[routes.breaker]\nwindow = \"16m\""),
        "9:10",
        "window 16m is longer than the 15 minutes of telemetry serin keeps",
    );
    assert_one(
        &file(
            "",
            "[routes.rollback]\nstable = \"v1\"\nwindow = \"1h\"\ncritical = [\"error_rate > 10%\"]",
        ),
        "10:10",
        "window 1h is longer than the 15 minutes",
    );
    parse(&file("", "[routes.breaker]\nwindow = \"15m\""), "t.toml").unwrap();
}

#[test]
fn fallback_chain() {
    let chain = "[routes.fallback]\nchain = [\"v2\", \"v1\", \"v1\"]";
    assert_eq!(
        errors(&file("", chain)),
        [
            "9:10: fallback chain names `v2`, which is not a version of this route",
            "9:22: fallback chain names `v1` twice",
        ]
    );
    assert_one(
        &file("", "[routes.fallback]\nchain = []"),
        "9:9",
        "at least one version",
    );
    let with = |line: &str| file("", &format!("[routes.fallback]\nchain = [\"v1\"]\n{line}"));
    assert_one(
        &with("on = [\"connect\", \"retry\"]"),
        "10:18",
        "unknown fallback trigger `retry`",
    );
    assert_one(&with("on = []"), "10:6", "on must list at least one");
    assert_one(
        &with("final_status = 600"),
        "10:16",
        "final_status must be an HTTP status in 100..=599, got 600",
    );
    assert_one(&with("final_status = 99"), "10:16", "got 99");
    assert_one(
        &with("max_replay_body = \"64 parsecs\""),
        "10:19",
        "unknown size unit",
    );
    assert_one(
        &with("deadline = \"soon\""),
        "10:12",
        "deadline: `soon` is not a duration",
    );
}

#[test]
fn route_matching() {
    assert_one(
        &file("path_prefix = \"api\"", ""),
        "3:15",
        "path_prefix must start with '/', got `api`",
    );
    assert_one(
        &file("sticky = \"query:x\"", ""),
        "3:10",
        "sticky must be \"header:NAME\" or \"cookie:NAME\"",
    );
    assert_one(
        &file("sticky = \"header:bad header\"", ""),
        "3:10",
        "`bad header` is not a valid header name",
    );
    assert_one(
        &file("sticky = \"cookie:\"", ""),
        "3:10",
        "is not a valid cookie name",
    );
    assert_one(
        &file("sticky = \"x-user-id\"", ""),
        "3:10",
        "got `x-user-id`",
    );
    assert_eq!(
        errors(&file("hosts = [\"*\", \"bad host\", \"*.ok.com\", \"a..b\"]", "")),
        [
            "3:15: `bad host` is not a host pattern: use \"*\", \"api.example.com\" or \"*.example.com\"",
            "3:39: `a..b` is not a host pattern: use \"*\", \"api.example.com\" or \"*.example.com\"",
        ]
    );
    assert_one(
        &file("hosts = [\"api.example.com:8080\"]", ""),
        "3:10",
        "hosts match without the port",
    );
    assert_one(
        &file("hosts = [\"*.\"]", ""),
        "3:10",
        "is not a host pattern",
    );
    assert_one(&file("hosts = []", ""), "3:9", "hosts must not be empty");
    assert_one(
        "[[routes]]\nname = \"api\"\n",
        "2:8",
        "route `api` has no versions",
    );
}

#[test]
fn listen_and_admin() {
    assert_one(
        "[listen]\nhttp = \"localhost:8080\"\n",
        "2:8",
        "`localhost:8080` is not an address like 127.0.0.1:8080",
    );
    assert_one(
        "[admin]\naddr = \"9901\"\n",
        "2:8",
        "`9901` is not an address",
    );
    assert_one(
        "[listen]\nhttps = \"0.0.0.0:8443\"\ntls_cert = \"c.pem\"\n",
        "2:9",
        "https needs tls_key in [listen]",
    );
    assert_one(
        "[listen]\nhttps = \"0.0.0.0:8443\"\n",
        "2:9",
        "https needs tls_cert and tls_key",
    );
    assert_one(
        "[listen]\nhttp = \"127.0.0.1:80\"\ntls_key = \"k.pem\"\n",
        "3:11",
        "no https address",
    );
    assert_one(
        "[listen]\n",
        "1:1",
        "[listen] needs an http or https address",
    );
    assert_one(
        "[admin]\naddr = \"127.0.0.1:8080\"\n",
        "2:8",
        "admin address 127.0.0.1:8080 is also a [listen] address",
    );
    assert_one(
        "[admin]\ntoken_env = \"\"\n",
        "2:13",
        "not an environment variable name",
    );
    assert_one("[state]\ndir = \"\"\n", "2:7", "dir must not be empty");
    assert_one(
        "[state]\nkeep_revisions = 0\n",
        "2:18",
        "keep_revisions must be at least 1, got 0",
    );
}

#[test]
fn breaker() {
    let text = file(
        "",
        "[routes.breaker]\nerror_rate = \"0%\"\nmin_requests = 0\nhalf_open_probes = 0\nwindow = \"0s\"\nopen_for = \"30\"",
    );
    assert_eq!(
        errors(&text),
        [
            "9:14: error_rate must be above 0% and at most 100%, got 0%",
            "10:16: min_requests must be at least 1, got 0",
            "11:20: half_open_probes must be at least 1, got 0",
            "12:10: window must be above zero",
            "13:12: open_for: `30` has no unit: write e.g. 30s or 30ms (units: ms, s, m, h)",
        ]
    );
    assert_one(
        &file("", "[routes.breaker]\nerror_rate = \"150%\""),
        "9:14",
        "got 150%",
    );
    assert_one(
        &file("", "[routes.breaker]\nerror_rate = \"50\""),
        "9:14",
        "`50` is not a percentage",
    );
}

#[test]
fn health_check() {
    let text = file(
        "",
        "[routes.health_check]\nunhealthy_after = 0\nhealthy_after = -2\npath = \"health\"",
    );
    assert_eq!(
        errors(&text),
        [
            "9:19: unhealthy_after must be at least 1, got 0",
            "10:17: healthy_after must be at least 1, got -2",
            "11:8: health check path must start with '/', got `health`",
        ]
    );
}

#[test]
fn rollback_levels() {
    let with = |lines: &str| file("", &format!("[routes.rollback]\nstable = \"v1\"\n{lines}"));
    assert_one(
        &file("", "[routes.rollback]\nstable = \"v9\""),
        "9:10",
        "stable `v9` is not a version of this route",
    );
    assert_one(
        &with("on_critical = \"rollback\""),
        "10:15",
        "unknown action `rollback`; expected \"immediate\"",
    );
    assert_one(
        &with("on_warning = \"gradual\""),
        "10:14",
        "\"gradual\" needs a schedule",
    );
    assert_one(&with("window = \"5\""), "10:10", "window: `5` has no unit");
    assert_one(
        &with("min_requests = -1"),
        "10:16",
        "min_requests must be at least 0, got -1",
    );
    let gradual = "gradual = { steps = [\"5%\", \"25%\"], every = \"10m\" }";
    assert_one(
        &with(gradual),
        "10:28",
        "steps must decrease: `25%` does not",
    );
    let gradual = "gradual = { steps = [\"150%\"], every = \"0s\", abort_if = \"p99 > 5%\" }";
    assert_eq!(
        errors(&with(gradual)),
        [
            "10:22: step must be between 0% and 100%, got 150%",
            "10:39: every must be above zero",
            "10:63: rule `p99 > 5%`: p99 needs a duration like 500ms, got 5%",
        ]
    );
}

#[test]
fn rollout_steps() {
    let text = file(
        "",
        "[routes.rollout]\nsteps = [\"10%\", \"5%\", \"150%\", \"0%\"]\nevery = \"10m\"",
    );
    assert_eq!(
        errors(&text),
        [
            "9:17: steps must increase: `5%` does not",
            "9:23: step must be above 0% and at most 100%, got 150%",
            "9:31: step must be above 0% and at most 100%, got 0%",
        ]
    );
    assert_one(
        &file("", "[routes.rollout]\nsteps = []\nevery = \"1m\""),
        "9:9",
        "at least one percentage",
    );
}

#[test]
fn rule_errors_point_inside_the_string() {
    let with = |line: &str| file("", &format!("[routes.rollback]\nstable = \"v1\"\n{line}"));
    assert_one(
        &with("critical = [\"error_rate > 10%\", \"p99 > 10%\"]"),
        "10:40",
        "rule `p99 > 10%`: p99 needs a duration like 500ms, got 10%",
    );
    assert_one(
        &with("warning = ['p98 > 1s']"),
        "10:13",
        "rule `p98 > 1s`: unknown metric `p98`",
    );
    assert_one(
        &with("watch = [\"error_rate >\"]"),
        "10:23",
        "missing value after `error_rate >`",
    );
    assert_one(
        &with("shadow = [\"rps > 5%\"]"),
        "10:18",
        "rps needs a plain number",
    );
    // With an escape the string's text differs from its value: point at the string.
    assert_one(
        &with("critical = [\"p\\u0039\\u0039 > 10%\"]"),
        "10:13",
        "p99 needs a duration",
    );
}

#[test]
fn notify() {
    assert_one(
        "[[notify]]\nwebhook = \"ftp://hooks/\"\n",
        "2:11",
        "must be an http:// or https:// URL",
    );
    assert_one(
        "[[notify]]\nwebhook = \"/hooks\"\n",
        "2:11",
        "must be an http:// or https:// URL",
    );
    assert_one(
        "[[notify]]\nwebhook = \"http://h/\"\nevents = [\"Rollback!\"]\n",
        "3:11",
        "not an event kind",
    );
}

#[test]
fn all_errors_are_collected_in_file_order() {
    let text = format!(
        "[listen]\nhttp = \"nope\"\n\n{}",
        file(
            "path_prefix = \"x\"",
            "timeout = \"1\"\n[routes.rollback]\nstable = \"v7\""
        )
    );
    let all = parse(&text, "t.toml").unwrap_err();
    let lines: Vec<_> = all
        .to_string()
        .lines()
        .map(|l| l.split(": ").next().unwrap().to_owned())
        .collect();
    assert_eq!(
        lines,
        ["t.toml:2:8", "t.toml:6:15", "t.toml:11:11", "t.toml:13:10"]
    );
}

#[test]
fn two_bad_addresses_are_two_errors_not_a_collision() {
    let all = errors("[listen]\nhttp = \"x\"\n[admin]\naddr = \"y\"\n");
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all.iter().all(|e| e.contains("is not an address")),
        "{all:?}"
    );
}

/// A version at `url` with `keys` after its weight (line 8 on).
fn tls_file(url: &str, keys: &str) -> String {
    format!(
        "[[routes]]\nname = \"api\"\n\n[[routes.versions]]\nname = \"v1\"\nurl = \"{url}\"\nweight = 1\n{keys}\n"
    )
}

#[test]
fn tls_keys_of_a_version_are_checked_where_they_stand() {
    let dir = tempfile::tempdir().unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.cert.pem()).unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let ca_line = format!("tls_ca = \"{}\"", ca_path.display());

    // Only https versions take them.
    assert_one(
        &tls_file("http://127.0.0.1:9001", "tls_ca = \"ca.pem\""),
        "8:10",
        "tls_ca applies only to an https:// url",
    );
    assert_one(
        &tls_file("h2c://127.0.0.1:9001", "tls_server_name = \"a\""),
        "8:19",
        "tls_server_name applies only to an https:// url",
    );
    assert_one(
        &tls_file("ftp://127.0.0.1:9001", ""),
        "6:7",
        "must look like http://host:port",
    );
    // Files are read and must hold what they are named for.
    assert_one(
        &tls_file("https://127.0.0.1:9001", "tls_ca = \"/nonexistent/ca.pem\""),
        "8:10",
        "cannot read /nonexistent/ca.pem",
    );
    assert_one(
        &tls_file(
            "https://127.0.0.1:9001",
            &format!("tls_ca = \"{}\"", junk.display()),
        ),
        "8:10",
        "no PEM certificate",
    );
    assert_one(
        &tls_file(
            "https://127.0.0.1:9001",
            &format!("{ca_line}\ntls_client_cert = \"{}\"", ca_path.display()),
        ),
        "9:19",
        "tls_client_cert needs tls_client_key",
    );
    assert_one(
        &tls_file(
            "https://127.0.0.1:9001",
            &format!(
                "{ca_line}\ntls_client_cert = \"{}\"\ntls_client_key = \"{}\"",
                ca_path.display(),
                junk.display()
            ),
        ),
        "10:18",
        "no PEM private key",
    );
    assert_one(
        &tls_file(
            "https://127.0.0.1:9001",
            &format!("{ca_line}\ntls_server_name = \"a b\""),
        ),
        "9:19",
        "not a DNS name or an IP address",
    );
    // A good one, and an h2c version.
    let ok = parse(
        &tls_file(
            "https://localhost:9443",
            &format!("{ca_line}\ntls_server_name = \"v2.internal\""),
        ),
        "t.toml",
    )
    .unwrap();
    let tls = ok.routes[0].versions[0]
        .tls
        .as_ref()
        .expect("https has TLS");
    assert_eq!(tls.ca(), Some(ca_path.as_path()));
    assert!(!tls.has_client_cert());
    assert_eq!(
        tls.client.alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    let h2c = parse(&tls_file("h2c://127.0.0.1:9001", ""), "t.toml").unwrap();
    assert!(h2c.routes[0].versions[0].tls.is_none());
}

#[test]
fn quality_signals() {
    let signal = |name: &str, header: &str| {
        format!("[[routes.signals]]\nname = \"{name}\"\nheader = \"{header}\"")
    };
    // Line 8 opens the table; name on 9 (col 8), header on 10 (col 10).
    assert_one(
        &file("", &signal("Bad Name", "x-q")),
        "9:8",
        "signal name `Bad Name`: use lower-case letters",
    );
    assert_one(
        &file("", &signal("error", "x-q")),
        "9:8",
        "`error_rate` is already a built-in metric",
    );
    assert_one(
        &file("", &signal("q", "bad header")),
        "10:10",
        "`bad header` is not a valid header name",
    );
    let five: Vec<String> = (0..5).map(|i| signal(&format!("s{i}"), "x-q")).collect();
    assert_one(&file("", &five.join("\n")), "20:1", "at most 4 signals");
    // A rule may read a declared signal, and only a declared one.
    let rollback = "[routes.rollback]\nstable = \"v1\"\ncritical = [\"hallucination_rate > 15%\"]";
    let ok = file(
        "",
        &format!("{}\n{rollback}", signal("hallucination", "x-q")),
    );
    let config = parse(&ok, "t.toml").unwrap();
    assert_eq!(config.routes[0].signals[0].header.as_str(), "x-q");
    assert!(!config.routes[0].signals[0].keep);
    assert_one(
        &file("", rollback),
        "10:14",
        "unknown metric `hallucination_rate`",
    );
}

#[test]
fn mirror() {
    let mirror = |body: &str| file("", &format!("[routes.mirror]\n{body}"));
    // The table opens on line 8; its first key is on line 9.
    assert_one(
        &mirror("to = \"v9\"\npercent = 5"),
        "9:6",
        "mirror to `v9`, which is not a version of this route",
    );
    assert_one(
        &mirror("to = \"v1\"\npercent = 0"),
        "10:11",
        "mirror percent must be above 0 and at most 100",
    );
    assert_one(
        &mirror("to = \"v1\"\npercent = 5\ncompare = [\"status\", \"bytes\"]"),
        "11:22",
        "compare `bytes`: expected \"status\", \"body\" or \"header:NAME\"",
    );
    assert_one(
        &mirror("to = \"v1\"\npercent = 5\nqueue = 0"),
        "11:9",
        "queue must be at least 1",
    );
    let config = parse(
        &mirror("to = \"v1\"\npercent = 2.5\ncompare = [\"body\", \"header:Content-Type\"]"),
        "t.toml",
    )
    .unwrap();
    let m = config.routes[0].mirror.as_ref().unwrap();
    assert_eq!((m.share, m.max_body, m.queue), (0.025, 64 * 1024, 64));
    assert!(m.compare.body && !m.compare.status);
    assert_eq!(m.compare.headers[0].as_str(), "content-type");
}

#[test]
fn mirror_rules_without_a_mirror_are_warned_about() {
    let rule = "[routes.rollback]\nstable = \"v1\"\ncritical = [\"mirror_mismatch_rate > 5%\"]";
    let config = parse(&file("", rule), "t.toml").unwrap();
    let warnings = serin_config::warnings(&config);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("no [routes.mirror]: it never holds"),
        "{warnings:?}"
    );
    let mirrored = format!("{rule}\n[routes.mirror]\nto = \"v1\"\npercent = 1");
    let config = parse(&file("", &mirrored), "t.toml").unwrap();
    let warnings = serin_config::warnings(&config);
    assert!(
        warnings[0].contains("copies to the stable version `v1`"),
        "{warnings:?}"
    );
}

#[test]
fn cluster_and_tracing_values_are_checked_where_they_stand() {
    // `tail` starts on line 8; a new table there.
    let f = |t: &str| file("", t);
    assert_one(
        &f("[cluster]\netcd = [\"grpc://127.0.0.1:2379\"]"),
        "9:9",
        "must be http://HOST:PORT",
    );
    assert_one(&f("[cluster]\netcd = []"), "8:1", "lists no endpoint");
    assert_one(
        &f("[cluster]\netcd = [\"http://127.0.0.1:2379\"]\nprefix = \"serin/\""),
        "10:10",
        "must start with /",
    );
    assert_one(
        &f("[cluster]\netcd = [\"http://127.0.0.1:2379\"]\nnode = \"edge a\""),
        "10:8",
        "letters, digits",
    );
    assert_one(
        &f("[tracing]\notlp = \"https://collector:4318/v1/traces\""),
        "9:8",
        "must be an http:// URL",
    );
    assert_one(
        &f("[tracing]\notlp = \"http://127.0.0.1:4318/v1/traces\"\nsample = \"150%\""),
        "10:10",
        "between 0% and 100%",
    );
    let ok = parse(
        &f("[cluster]\netcd = [\"http://127.0.0.1:2379/\"]\nnode = \"edge-a\"\npartition_after = \"3s\""),
        "t.toml",
    )
    .unwrap();
    let c = ok.cluster.unwrap();
    assert_eq!(c.etcd, ["http://127.0.0.1:2379"]);
    assert_eq!((c.prefix.as_str(), c.node.as_str()), ("/serin", "edge-a"));
    assert_eq!(c.partition_after, std::time::Duration::from_secs(3));
}
