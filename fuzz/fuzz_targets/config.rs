//! The config loader: YAML, `${VAR}` and `${VAR:-default}` interpolation against a fixed
//! environment, section-by-section reading and every validation, with durations and sizes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let environment = |name: &str| match name {
        "KEY" => Some("sk-secret".to_owned()),
        "EMPTY" => Some(String::new()),
        "PORT" => Some("8080".to_owned()),
        _ => None,
    };
    let _ = switchboard::Config::parse(text, &environment);
    let _ = switchboard::config::parse_duration(text);
});
