//! Property tests: the routing-file parser and the rule-expression parser
//! never panic, whatever the input — arbitrary text, text built from their
//! own vocabulary, and valid files cut, spliced and shuffled.
//!
//! `PROPTEST_CASES` raises the case count for a longer local run.

use proptest::prelude::*;
use proptest::test_runner::Config as RunConfig;
use serin_config::{parse, parse_rule};

const SPEC: &str = include_str!("fixtures/spec.toml");

/// 2000 cases per property by default: each file parse takes well under a
/// millisecond, so the whole file stays within a few seconds in CI.
fn cases() -> RunConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    RunConfig {
        cases: n,
        failure_persistence: None,
        ..RunConfig::default()
    }
}

/// Tokens of the rule grammar and their near misses.
fn rule_token() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "error_rate",
            "availability",
            "p50",
            "p90",
            "p95",
            "p99",
            "p999",
            "mean",
            "rps",
            "breaker_open",
            "unhealthy",
            "baseline",
            ">",
            ">=",
            "<",
            "<=",
            "=",
            "*",
            "+",
            "-",
            "%",
            "ms",
            "s",
            "m",
            "h",
            "(",
            ")",
            "1e309",
            "NaN",
            "inf",
            "-0",
            ".",
            "",
        ])
        .prop_map(str::to_owned),
        "[0-9]{0,25}(\\.[0-9]{0,10})?(%|ms|s|m|h|us|)",
        "\\PC{0,4}",
    ]
}

/// Pieces of the routing-file vocabulary, valid or nearly.
fn toml_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "[listen]\n",
            "[admin]\n",
            "[state]\n",
            "[limits]\n",
            "[[routes]]\n",
            "[[routes.versions]]\n",
            "[routes.fallback]\n",
            "[routes.breaker]\n",
            "[routes.rollback]\n",
            "[routes.rollout]\n",
            "[routes.health_check]\n",
            "[[notify]]\n",
            "name = \"v1\"\n",
            "name = \"v2\"\n",
            "url = \"http://127.0.0.1:9001\"\n",
            "weight = 10\n",
            "weight = -1\n",
            "weight = 1e400\n",
            "timeout = \"3s\"\n",
            "chain = [\"v2\", \"v1\"]\n",
            "stable = \"v1\"\n",
            "critical = [\"p99 > baseline * 1.5\"]\n",
            "steps = [\"1%\", \"100%\"]\n",
            "every = \"10m\"\n",
            "hosts = [\"*.example.com\"]\n",
            "sticky = \"cookie:s\"\n",
            "trusted_proxies = [\"10.0.0.0/8\"]\n",
            "max_header_bytes = \"64KiB\"\n",
            "https = \"127.0.0.1:8443\"\n",
            "gradual = { steps = [\"25%\", \"0%\"], every = \"1m\" }\n",
            "\"",
            "'''",
            "=",
            "\n",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,12} = \"\\PC{0,12}\"\n",
        "\\PC{0,16}",
    ]
}

/// One edit of a file's text: (kind, position, length, insert).
fn edit() -> impl Strategy<Value = (u8, usize, usize, String)> {
    (0u8..4, any::<usize>(), 0usize..64, toml_piece())
}

/// Applies `edits` to `text`: delete a range, insert a piece, duplicate a
/// line, or swap two lines. Positions snap to char boundaries.
fn mutate(text: &str, edits: &[(u8, usize, usize, String)]) -> String {
    let mut s = text.to_owned();
    for (kind, pos, len, piece) in edits {
        let at = floor_char(&s, pos % (s.len() + 1));
        match kind {
            0 => {
                let end = floor_char(&s, (at + len).min(s.len()));
                s.replace_range(at..end, "");
            }
            1 => s.insert_str(at, piece),
            _ => {
                let mut lines: Vec<&str> = s.lines().collect();
                if lines.is_empty() {
                    continue;
                }
                let (i, j) = (pos % lines.len(), (pos / 7 + len) % lines.len());
                if *kind == 2 {
                    lines.insert(j, lines[i]);
                } else {
                    lines.swap(i, j);
                }
                s = lines.join("\n");
            }
        }
    }
    s
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn any_text_parses_or_fails_cleanly(text in "\\PC{0,300}") {
        let _ = parse(&text, "t.toml");
    }

    #[test]
    fn vocabulary_soup_parses_or_fails_cleanly(pieces in prop::collection::vec(toml_piece(), 0..40)) {
        let text = pieces.concat();
        if let Err(errors) = parse(&text, "t.toml") {
            // Every error names a real position in the text.
            let lines = text.lines().count().max(1);
            for e in &errors.0 {
                prop_assert!(e.line <= lines + 1, "{e} past the end of {lines} lines");
            }
        }
    }

    #[test]
    fn mutated_spec_file_parses_or_fails_cleanly(edits in prop::collection::vec(edit(), 1..6)) {
        let text = mutate(SPEC, &edits);
        let first = parse(&text, "t.toml");
        // Deterministic: the same text gives the same verdict.
        let again = parse(&text, "t.toml");
        prop_assert_eq!(first.is_ok(), again.is_ok());
    }

    #[test]
    fn any_rule_text_parses_or_fails_cleanly(text in "\\PC{0,60}") {
        let _ = parse_rule(&text);
    }

    #[test]
    fn rule_token_soup_parses_or_fails_cleanly(tokens in prop::collection::vec(rule_token(), 0..8), sep in prop::sample::select(vec![" ", "", "  ", "\t"])) {
        let text = tokens.join(sep);
        if let Ok(rule) = parse_rule(&text) {
            // A rule prints as written and parses back to itself.
            let again = parse_rule(&rule.to_string()).expect("its own text parses");
            prop_assert_eq!(again, rule);
        }
    }
}
