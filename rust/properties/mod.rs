//! Property tests of every parser in the core, one file per module they exercise: no input
//! panics, encodings round-trip, and each parser agrees with a plain reference written here.
//! Case counts are bounded so `cargo test` stays quick on a shared two-core machine.

mod apop;
mod cram;
mod ct;
mod sasl;
mod schemes;

use proptest::prelude::*;

/// Cases for the cheap pure-logic properties.
const CASES: u32 = 512;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Shrinking a failure of a cheap property is fast; cap it anyway so CI time is bounded.
        max_shrink_iters: 2048,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Arbitrary octets, biased towards the bytes parsers treat specially.
fn octets(max_len: usize) -> impl Strategy<Value = Vec<u8>> {
    let interesting = prop::sample::select(&b"\x00\r\n =*+/.$:{}\\Aa0\x7f\x80\xc3\xa9\xff"[..]);
    prop::collection::vec(prop_oneof![3 => any::<u8>(), 2 => interesting], 0..=max_len)
}
