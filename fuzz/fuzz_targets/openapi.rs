//! `mcp.openapi` specs: any text read as an OpenAPI document, every operation described
//! (parameters, bodies, `$ref`s inlined with cycles through `$defs`), without a panic and
//! with every input schema a JSON object.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = switchboard::config::openapi::read(text) {
        for operation in &spec.operations {
            assert!(operation.input_schema.is_object());
            assert!(!operation.id.is_empty());
        }
    }
});
