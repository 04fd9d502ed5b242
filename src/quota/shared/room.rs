//! What one key had left under its limits when this replica last reserved for it: whether its
//! next reservation may be made alongside the provider call instead of before it.
//!
//! Far from every limit, Redis cannot refuse the next request unless other replicas use up the
//! room in the moment, so waiting for its answer before calling the provider only adds Redis's
//! round trip to the client's latency. The answer still gates the response (see `charge`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::quota::Estimate;

/// How long a reservation's figures vouch for the next request: past it, other replicas may
/// have used the room since, so the next reservation comes first again.
const FRESH: Duration = Duration::from_secs(1);

/// What was left under each limit the key has (`None`: no such limit), after the reservation
/// that reported it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Left {
    pub requests: Option<u64>,
    pub slots: Option<u64>,
    pub minute_tokens: Option<u64>,
    pub day_tokens: Option<u64>,
    pub money: Option<u64>,
}

/// One key's last figures on this replica, less what requests made alongside took since.
#[derive(Debug, Default)]
pub struct Room {
    last: Mutex<Option<(Instant, Left)>>,
}

impl Room {
    /// Keeps what a reservation said was left.
    pub fn saw(&self, left: Left) {
        *self.lock() = Some((Instant::now(), left));
    }

    /// Forgets it after a refusal or a Redis failure: the next reservation comes first.
    pub fn forget(&self) {
        *self.lock() = None;
    }

    /// Whether the key has room for `headroom` more requests like `estimate` under every limit,
    /// as of a reservation less than a second old. If so, this request's share is taken from the
    /// figures, so concurrent requests on this replica do not count the same room twice.
    pub fn take(&self, headroom: u64, estimate: Estimate) -> bool {
        if headroom == 0 {
            return false;
        }
        let mut last = self.lock();
        let Some((at, left)) = last.as_mut() else {
            return false;
        };
        if at.elapsed() > FRESH {
            return false;
        }
        let fits = |have: Option<u64>, each: u64| {
            have.is_none_or(|have| have >= headroom.saturating_mul(each))
        };
        let roomy = fits(left.requests, 1)
            && fits(left.slots, 1)
            && fits(left.minute_tokens, estimate.tokens)
            && fits(left.day_tokens, estimate.tokens)
            && fits(left.money, estimate.cost);
        if roomy {
            let less = |have: &mut Option<u64>, used: u64| {
                if let Some(have) = have {
                    *have = have.saturating_sub(used);
                }
            };
            less(&mut left.requests, 1);
            less(&mut left.slots, 1);
            less(&mut left.minute_tokens, estimate.tokens);
            less(&mut left.day_tokens, estimate.tokens);
            less(&mut left.money, estimate.cost);
        }
        roomy
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Left)>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: Estimate = Estimate {
        tokens: 100,
        cost: 1_000,
    };

    fn room(left: Left) -> Room {
        let room = Room::default();
        room.saw(left);
        room
    }

    #[test]
    fn nothing_seen_or_no_headroom_means_reserving_first() {
        assert!(!Room::default().take(10, CALL));
        assert!(!room(Left::default()).take(0, CALL));
    }

    #[test]
    fn each_request_made_alongside_takes_its_share_of_the_room() {
        let room = room(Left {
            requests: Some(12),
            ..Left::default()
        });
        // 12, 11 and 10 requests left are room for 10 more; the 9 left after three are not.
        assert!(room.take(10, CALL));
        assert!(room.take(10, CALL));
        assert!(room.take(10, CALL));
        assert!(!room.take(10, CALL));
    }

    #[test]
    fn every_limit_must_have_room_for_headroom_requests_like_this_one() {
        let roomy = Left {
            requests: Some(1_000),
            slots: Some(1_000),
            minute_tokens: Some(1_000_000),
            day_tokens: Some(1_000_000),
            money: Some(1_000_000),
        };
        assert!(room(roomy).take(10, CALL));
        let tight = [
            Left {
                slots: Some(9),
                ..roomy
            },
            Left {
                minute_tokens: Some(999),
                ..roomy
            },
            Left {
                day_tokens: Some(999),
                ..roomy
            },
            Left {
                money: Some(9_999),
                ..roomy
            },
            Left {
                requests: Some(9),
                ..roomy
            },
        ];
        for left in tight {
            assert!(!room(left).take(10, CALL), "{left:?}");
        }
    }

    #[test]
    fn a_refusal_forgets_the_room() {
        let room = room(Left::default());
        room.forget();
        assert!(!room.take(1, CALL));
    }
}
