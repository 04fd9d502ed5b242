//! The SSE framer, fed the input in pieces cut where the first byte says: no input, however
//! cut, may panic, and the events must not depend on where the cuts fall.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_providers::sse_frames::SseSplitter;

fuzz_target!(|data: &[u8]| {
    let Some((&step, bytes)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let mut whole = SseSplitter::new();
    let mut at_once = Vec::new();
    let whole_ok = whole.feed(bytes, &mut at_once).is_ok();
    let mut cut = SseSplitter::new();
    let mut piecewise = Vec::new();
    let mut cut_ok = true;
    for piece in bytes.chunks(step) {
        if cut.feed(piece, &mut piecewise).is_err() {
            cut_ok = false;
            break;
        }
    }
    if whole_ok && cut_ok {
        assert_eq!(at_once.len(), piecewise.len());
    }
});
