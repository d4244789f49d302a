//! Analytics Engine data points (`METRICS` binding; none are written when
//! it is not bound). One point per event, in seven categories:
//!
//! | category | blobs | doubles |
//! |---|---|---|
//! | `http` | category, method, status, project | duration ms, status |
//! | `publish` | category, stream | bytes, 1 |
//! | `publish_error` | category, stream, status | 1 |
//! | `fanout` | category, mode (`inline`, `queued`, `job`, `dead_letter`), source | deliveries, failures, pruned, duration ms |
//! | `subscription` | category, action (`subscribe`, `unsubscribe`), source, estuary | 1 |
//! | `estuary` | category, action (`created`, `deleted`), estuary | 1 |
//! | `cleanup` | category, what (`estuary_expired`, `stream_expired`), key | count |
//!
//! `ANALYTICS=0` turns the writes off (local runs: `wrangler dev` forwards
//! every point to a local service, which costs each request a round trip).
//! The index of every point is its category. With `TEST_HOOKS=1` the
//! points are also kept in memory (the newest [`RECORDED_MAX`] of each
//! category) and served at `/_test/analytics`, so tests can see what was
//! written.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};

use worker::{AnalyticsEngineDataPointBuilder, Env};

/// The Analytics Engine dataset binding.
pub const BINDING: &str = "METRICS";
/// Points kept in memory per category for the test hook.
pub const RECORDED_MAX: usize = 2_000;

/// The categories of data points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Http,
    Publish,
    PublishError,
    Fanout,
    Subscription,
    Estuary,
    Cleanup,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Http => "http",
            Category::Publish => "publish",
            Category::PublishError => "publish_error",
            Category::Fanout => "fanout",
            Category::Subscription => "subscription",
            Category::Estuary => "estuary",
            Category::Cleanup => "cleanup",
        }
    }
}

thread_local! {
    static RECORDED: RefCell<BTreeMap<&'static str, VecDeque<serde_json::Value>>> = const { RefCell::new(BTreeMap::new()) };
}

/// Writes one data point: `blobs` after the category, then `doubles`.
pub fn write(env: &Env, category: Category, blobs: &[&str], doubles: &[f64]) {
    let enabled = !env.var("ANALYTICS").is_ok_and(|v| v.to_string() == "0");
    if let Some(dataset) = enabled.then(|| env.analytics_engine(BINDING).ok()).flatten() {
        let mut point = AnalyticsEngineDataPointBuilder::new().indexes([category.as_str()]).add_blob(category.as_str());
        for blob in blobs {
            point = point.add_blob(*blob);
        }
        for double in doubles {
            point = point.add_double(*double);
        }
        if let Err(error) = dataset.write_data_point(&point.build()) {
            worker::console_warn!("writing a {} data point failed: {error}", category.as_str());
        }
    }
    if test_hooks(env) {
        RECORDED.with(|recorded| {
            let mut recorded = recorded.borrow_mut();
            let recorded = recorded.entry(category.as_str()).or_default();
            if recorded.len() >= RECORDED_MAX {
                recorded.pop_front();
            }
            recorded.push_back(serde_json::json!({
                "category": category.as_str(),
                "blobs": blobs,
                "doubles": doubles,
            }));
        });
    }
}

fn test_hooks(env: &Env) -> bool {
    env.var("TEST_HOOKS").is_ok_and(|v| v.to_string() == "1")
}

/// The points recorded in this isolate (`TEST_HOOKS=1` only).
pub fn recorded() -> Vec<serde_json::Value> {
    RECORDED.with(|recorded| recorded.borrow().values().flat_map(|points| points.iter().cloned()).collect())
}
