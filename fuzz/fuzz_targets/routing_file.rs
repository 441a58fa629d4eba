//! Any bytes as a routing file: `serin_config::parse` returns a config or
//! located errors, never panics; every error's line is inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(errors) = serin_config::parse(text, "fuzz.toml") {
        let lines = text.lines().count().max(1);
        for e in &errors.0 {
            assert!(e.line <= lines + 1, "{e} is past the end of {lines} lines");
        }
    }
});
