//! Any header lines through serin's header hygiene and framing checks:
//! never a panic, never a hop-by-hop header left (see
//! `serin_proxy::fuzzing::headers`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    serin_proxy::fuzzing::headers(data);
});
