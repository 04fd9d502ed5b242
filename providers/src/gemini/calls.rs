//! Tool call ids, which Gemini does not have: generated `call_<n>` ids for the calls it makes,
//! carrying the call's thought signature so it can be handed back with the call next turn.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Separates the generated id from a thought signature inside one tool call id.
const SIGNATURE_MARK: &str = "__thought__";

/// A fresh id. The counter starts from the clock so ids stay distinct across restarts, since a
/// conversation outlives a gateway process.
pub fn new_id(signature: Option<&str>) -> String {
    static NEXT: OnceLock<AtomicU64> = OnceLock::new();
    let next = NEXT.get_or_init(|| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        AtomicU64::new(now.as_micros() as u64)
    });
    let n = next.fetch_add(1, Ordering::Relaxed);
    match signature {
        Some(signature) => format!("call_{n}{SIGNATURE_MARK}{signature}"),
        None => format!("call_{n}"),
    }
}

/// The thought signature carried in an id this adapter generated.
pub fn signature(id: &str) -> Option<&str> {
    id.split_once(SIGNATURE_MARK)
        .map(|(_, signature)| signature)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_carry_signatures() {
        let (a, b) = (new_id(None), new_id(None));
        assert_ne!(a, b);
        assert!(a.starts_with("call_"));
        assert_eq!(signature(&a), None);
        let signed = new_id(Some("CiQB0e2Kb+/x="));
        assert_eq!(signature(&signed), Some("CiQB0e2Kb+/x="));
        assert_eq!(signature("call_abc"), None);
    }
}
