//! Any text as a rule expression: parsed or refused with a message, never a
//! panic; a parsed rule parses back from its own text to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(rule) = serin_config::parse_rule(text) {
        let again = serin_config::parse_rule(&rule.to_string()).expect("its own text parses");
        assert_eq!(again, rule);
    }
});
