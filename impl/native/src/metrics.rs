//! Counters of the native host, served as `GET /metrics` in the Prometheus
//! text format. Counts only: no stream names, no secrets.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    /// Answers by status class (index 1 = 1xx … 5 = 5xx).
    responses: [AtomicU64; 6],
    pub streams_created: AtomicU64,
    pub streams_deleted: AtomicU64,
    pub appends: AtomicU64,
    pub appended_bytes: AtomicU64,
    pub append_errors: AtomicU64,
    pub subscriptions: AtomicU64,
    pub fanout_deliveries: AtomicU64,
    pub fanout_duplicates: AtomicU64,
    pub fanout_pruned: AtomicU64,
    pub estuaries_expired: AtomicU64,
}

/// Adds `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    pub fn response(&self, status: u16) {
        let class = usize::from(status / 100).min(5);
        add(&self.responses[class], 1);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP ds_http_responses_total HTTP answers by status class.");
        let _ = writeln!(out, "# TYPE ds_http_responses_total counter");
        for (class, counter) in self.responses.iter().enumerate().skip(1) {
            let _ = writeln!(out, "ds_http_responses_total{{class=\"{class}xx\"}} {}", get(counter));
        }
        let counters: [(&str, &str, &AtomicU64); 10] = [
            ("ds_streams_created_total", "Streams created.", &self.streams_created),
            ("ds_streams_deleted_total", "Streams deleted (expired ones included when swept).", &self.streams_deleted),
            ("ds_appends_total", "Appends that changed a stream (publishes).", &self.appends),
            ("ds_appended_bytes_total", "Bytes in those appends.", &self.appended_bytes),
            ("ds_append_errors_total", "Appends refused or failed.", &self.append_errors),
            ("ds_estuary_subscriptions_total", "Estuary subscriptions made.", &self.subscriptions),
            ("ds_fanout_deliveries_total", "Deliveries of published data to estuaries.", &self.fanout_deliveries),
            ("ds_fanout_duplicates_total", "Redeliveries recognised as duplicates.", &self.fanout_duplicates),
            ("ds_fanout_pruned_total", "Subscriptions dropped because their estuary is gone.", &self.fanout_pruned),
            ("ds_estuaries_expired_total", "Estuaries deleted when their lifetime ran out.", &self.estuaries_expired),
        ];
        for (name, help, counter) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", get(counter));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.response(204);
        m.response(404);
        add(&m.appends, 3);
        let text = m.render();
        assert!(text.contains("ds_http_responses_total{class=\"2xx\"} 1"));
        assert!(text.contains("ds_http_responses_total{class=\"4xx\"} 1"));
        assert!(text.contains("# TYPE ds_appends_total counter\nds_appends_total 3"));
    }
}
