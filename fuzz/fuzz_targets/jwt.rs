//! What the gateway reads of a bearer JWT before and after verifying it: the header's key id
//! (any text gives one or none, never a panic) and a claim's globs (any JSON value compiles to
//! some globs or is refused, never a panic; a list of plain names always compiles).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    token: &'a str,
    claim: &'a [u8],
    names: Vec<String>,
}

fuzz_target!(|input: Input| {
    let _ = switchboard::fuzzing::jwt_kid(input.token);
    let header = format!("eyJ{}", input.token);
    let _ = switchboard::fuzzing::jwt_kid(&header);
    if let Ok(claim) = serde_json::from_slice::<Value>(input.claim) {
        let _ = switchboard::fuzzing::jwt_claim_globs(&claim);
    }
    let plain: Vec<Value> = input
        .names
        .iter()
        .filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .map(|n| Value::String(n.clone()))
        .collect();
    let count = plain.len();
    assert_eq!(
        switchboard::fuzzing::jwt_claim_globs(&Value::Array(plain)),
        Some(count)
    );
});
