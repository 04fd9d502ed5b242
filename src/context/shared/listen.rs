//! Every replica's context changes, heard through Redis pub/sub and relayed to this replica's
//! subscribers. A change published while this replica was cut off from Redis is not replayed:
//! on reconnecting, subscribers are told that changes may have been missed (a list-changed, and
//! an update for every document they subscribed to), so a client re-reads what it watches.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;

use crate::context::Change;
use crate::state::redis::Redis;

/// Listens on `channel` until the gateway stops, reconnecting with a backoff.
pub async fn listen(redis: Arc<Redis>, channel: String, changes: broadcast::Sender<Change>) {
    let mut attempts = 0u32;
    let mut pause = Duration::from_millis(100);
    loop {
        if let Ok(mut pubsub) = redis.pubsub().await
            && pubsub.subscribe(&channel).await.is_ok()
        {
            if attempts > 0 {
                // Whatever was published while this replica was away is lost to it.
                let _ = changes.send(Change::missed());
            }
            pause = Duration::from_millis(100);
            let mut messages = pubsub.on_message();
            while let Some(message) = messages.next().await {
                if let Some(change) = parse(message.get_payload_bytes()) {
                    let _ = changes.send(change);
                }
            }
            tracing::warn!("lost the Redis subscription to context changes: reconnecting");
        }
        attempts += 1;
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// `namespace\nkey\nlisted` as the scripts publish it; anything else is ignored.
pub fn parse(payload: &[u8]) -> Option<Change> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut parts = text.splitn(3, '\n');
    let (namespace, key, listed) = (parts.next()?, parts.next()?, parts.next()?);
    if !super::super::valid_name(namespace) || !super::super::valid_name(key) {
        return None;
    }
    Some(Change {
        namespace: namespace.to_owned(),
        key: key.to_owned(),
        listed: listed == "1",
        missed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_changes_are_relayed() {
        let change = parse(b"ns\nkey\n1").unwrap();
        assert_eq!(
            (change.namespace.as_str(), change.key.as_str()),
            ("ns", "key")
        );
        assert!(change.listed && !change.missed);
        assert!(!parse(b"ns\nkey\n0").unwrap().listed);
        for bad in [&b"ns\nkey"[..], b"\nkey\n1", b"ns\n../x\n1", b"\xff\nk\n1"] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }
}
