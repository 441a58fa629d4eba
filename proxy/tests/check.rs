//! `serin check`: a good file exits 0 with a summary; each kind of bad file
//! exits 1 and points at the right `file:line:col`.
//!
//! This test lives in the package that owns the `serin` binary on purpose:
//! an integration test here is what makes `cargo test --workspace` build
//! `target/<profile>/serin`, which serin-tests' end-to-end tests spawn.

use std::process::Command;

const GOOD: &str = r#"[listen]
http = "127.0.0.1:8080"

[[routes]]
name = "svc"
sticky = "header:x-user-id"

  [[routes.versions]]
  name = "v1"
  url = "http://127.0.0.1:9001"
  weight = 90
  timeout = "10s"

  [[routes.versions]]
  name = "v2"
  url = "http://127.0.0.1:9003"
  weight = 10
  timeout = "3s"

  [routes.fallback]
  chain = ["v2", "v1"]

  [routes.rollback]
  stable = "v1"
  critical = ["error_rate > 10%"]
"#;

fn check(toml: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serin.toml");
    std::fs::write(&path, toml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_serin"))
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    let path = path.display().to_string();
    let text = String::from_utf8_lossy(&out.stderr).replace(&path, "FILE");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).replace(&path, "FILE"),
        text,
    )
}

/// Replaces the first occurrence of `from` in the good file.
fn bad(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from} not in GOOD");
    GOOD.replacen(from, to, 1)
}

#[test]
fn good_file_passes() {
    let (code, out, err) = check(GOOD);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("FILE: ok: 1 route(s), 2 version(s)"),
        "{out}"
    );
}

#[test]
fn each_bad_file_points_at_its_place() {
    let dup_version = bad("name = \"v2\"", "name = \"v1\"");
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "unknown field",
            bad("sticky = ", "colour = \"red\"\nsticky = "),
            "FILE:6:1:",
            "colour",
        ),
        (
            "negative weight",
            bad("weight = 10", "weight = -10"),
            "FILE:17:12:",
            "weight",
        ),
        (
            "bad url",
            bad("http://127.0.0.1:9003", "ftp://127.0.0.1:9003"),
            "FILE:16:9:",
            "url",
        ),
        (
            "bad duration",
            bad("\"3s\"", "\"3 parsecs\""),
            "FILE:18:13:",
            "unit",
        ),
        (
            "unknown chain version",
            bad("[\"v2\", \"v1\"]", "[\"v2\", \"v9\"]"),
            "FILE:21:18:",
            "v9",
        ),
        (
            "stable not a version",
            bad("stable = \"v1\"", "stable = \"v7\""),
            "FILE:24:12:",
            "v7",
        ),
        ("duplicate version", dup_version, "FILE:15:10:", "duplicate"),
        (
            "bad rule",
            bad("error_rate > 10%", "error_rate >> 10%"),
            "FILE:25:",
            "rule",
        ),
        (
            "syntax",
            bad("weight = 90", "weight = = 90"),
            "FILE:11:",
            " ",
        ),
        (
            "bad sticky",
            bad("header:x-user-id", "query:uid"),
            "FILE:6:10:",
            "sticky",
        ),
    ];
    for (what, toml, place, word) in cases {
        let (code, _, err) = check(&toml);
        assert_eq!(code, 1, "{what}: exit code; stderr: {err}");
        let first = err.lines().next().unwrap_or("");
        assert!(
            first.starts_with(place),
            "{what}: want {place}..., got: {err}"
        );
        assert!(
            first.to_lowercase().contains(word),
            "{what}: message lacks {word:?}: {err}"
        );
    }
}

#[test]
fn all_zero_weights_and_duplicate_routes_are_refused() {
    let zero = bad("weight = 90", "weight = 0").replacen("weight = 10", "weight = 0", 1);
    let (code, _, err) = check(&zero);
    assert_eq!(code, 1);
    assert!(err.starts_with("FILE:"), "{err}");
    assert!(err.contains("every weight"), "{err}");

    let two = format!("{GOOD}\n[[routes]]\nname = \"svc\"\n[[routes.versions]]\nname = \"a\"\nurl = \"http://127.0.0.1:1\"\nweight = 1\n");
    let (code, _, err) = check(&two);
    assert_eq!(code, 1);
    assert!(err.starts_with("FILE:28:8:"), "{err}");
    assert!(err.contains("duplicate"), "{err}");
}
