//! Per-stream wake-ups for live readers. The writer calls [`Waiters::notify`] after a commit
//! that changed a stream; long-poll and SSE loops subscribe *before* reading, so a change
//! between their read and their wait is never missed.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

#[derive(Default)]
pub struct Waiters {
    streams: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// Streams appended to since the rotation loop last looked.
    appended: Mutex<std::collections::HashSet<String>>,
}

impl Waiters {
    /// Subscribe to changes of `key`. `None` if `max` readers already wait on it.
    pub fn subscribe(&self, key: &str, max: usize) -> Option<watch::Receiver<u64>> {
        let mut map = self.streams.lock().ok()?;
        let tx = map.entry(key.to_owned()).or_insert_with(|| watch::channel(0).0);
        if tx.receiver_count() >= max {
            return None;
        }
        Some(tx.subscribe())
    }

    /// Wake every reader of `key`; forget streams nobody waits on.
    pub fn notify(&self, key: &str) {
        let Ok(mut map) = self.streams.lock() else { return };
        if let Some(tx) = map.get(key) {
            if tx.receiver_count() == 0 {
                map.remove(key);
            } else {
                tx.send_modify(|v| *v += 1);
            }
        }
    }

    /// How many changes `key` has seen while someone waited on it (0 when nobody waits).
    pub fn version(&self, key: &str) -> u64 {
        let Ok(map) = self.streams.lock() else { return 0 };
        map.get(key).map_or(0, |tx| *tx.borrow())
    }

    /// Remembers that `key` grew (for the rotation loop).
    pub fn mark_appended(&self, key: &str) {
        if let Ok(mut appended) = self.appended.lock() {
            if !appended.contains(key) {
                appended.insert(key.to_owned());
            }
        }
    }

    /// Takes the streams that grew since the last call.
    pub fn take_appended(&self) -> Vec<String> {
        self.appended.lock().map(|mut appended| appended.drain().collect()).unwrap_or_default()
    }

    /// Drop entries without receivers (called periodically).
    pub fn prune(&self) {
        if let Ok(mut map) = self.streams.lock() {
            map.retain(|_, tx| tx.receiver_count() > 0);
        }
    }
}

impl durable_streams_engine::Notifier for Waiters {
    fn stream_changed(&self, stream_key: &str) {
        self.notify(stream_key);
    }
}
