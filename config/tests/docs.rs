//! `docs/routing-file.md` cannot drift from the parser: every TOML block in
//! it is a routing file serin accepts, and every key the parser knows is
//! named in it.

use std::path::Path;

fn doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/routing-file.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The ```toml blocks, with the line each starts on.
fn toml_blocks(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match (&mut current, line.trim_end()) {
            (None, "```toml") => current = Some((i + 2, String::new())),
            (Some(_), "```") => out.extend(current.take()),
            (Some((_, block)), line) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    out
}

#[test]
fn every_toml_block_is_a_valid_routing_file() {
    let text = doc();
    let blocks = toml_blocks(&text);
    assert!(blocks.len() >= 10, "only {} blocks", blocks.len());
    for (line, block) in blocks {
        if let Err(e) = serin_config::parse(&block, "routing-file.md") {
            panic!("the block at docs/routing-file.md:{line} is refused:\n{e}\n{block}");
        }
    }
}

#[test]
fn every_key_the_parser_knows_is_documented() {
    let text = doc();
    let raw = include_str!("../src/raw.rs");
    let mut missing = Vec::new();
    for line in raw.lines() {
        let Some(rest) = line.trim().strip_prefix("pub(crate) ") else {
            continue;
        };
        let Some((field, _)) = rest.split_once(':') else {
            continue;
        };
        if field.contains(' ') || field.contains('(') {
            continue;
        }
        // Serde renames `force` to the file's `override`.
        let key = if field == "force" { "override" } else { field };
        let written = [
            format!("`{key}`"),
            format!("[{key}]"),
            format!("[[{key}]]"),
            format!("[routes.{key}]"),
            format!("[[routes.{key}]]"),
        ];
        if !written.iter().any(|w| text.contains(w.as_str())) {
            missing.push(key.to_owned());
        }
    }
    assert!(
        missing.is_empty(),
        "keys not in docs/routing-file.md: {missing:?}"
    );
}
