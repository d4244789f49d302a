//! Estuaries on the native host: the API's operations as writer tasks, and
//! the fan-out loop that drains the transactional outbox.
//!
//! Every estuary stream lives in the same database as its sources, so a
//! drain delivers a batch of outbox entries *and* acknowledges them in one
//! transaction: after a crash, an entry is either delivered and
//! acknowledged or neither, and the restarted loop picks up where the
//! outbox says. The deliveries are idempotent-producer appends all the same
//! (the same rule as on Workers, where they cross objects).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use durable_streams_engine::estuary::{self, Estuary, Subscribed};
use durable_streams_engine::ProtocolError;
use durable_streams_service::estuaries::EstuaryHost;

use crate::service::Service;

/// Outbox entries delivered per writer task (each may go to many estuaries).
const DELIVERIES_PER_TASK: u64 = 2_048;
/// Sources drained per pass before looking again.
const SOURCES_PER_PASS: u64 = 64;
/// Expired estuaries removed per sweep.
const EXPIRED_PER_SWEEP: u64 = 256;

/// `Arc<Service>` as the estuary host.
#[derive(Clone)]
pub struct NativeEstuaries(pub Arc<Service>);

#[async_trait]
impl EstuaryHost for NativeEstuaries {
    async fn subscribe(
        &self,
        project: &str,
        estuary_id: &str,
        source_key: &str,
        expected_type: Option<String>,
    ) -> Result<Subscribed, ProtocolError> {
        let (project, estuary_id, source_key) = (project.to_owned(), estuary_id.to_owned(), source_key.to_owned());
        let ttl_ms = i64::try_from(self.0.config.estuary_ttl.as_millis()).unwrap_or(i64::MAX);
        self.0
            .writer
            .run(move |engine, conn, now| {
                let request = estuary::Subscribe {
                    project: &project,
                    estuary_id: &estuary_id,
                    source_key: &source_key,
                    expected_type: expected_type.as_deref(),
                    ttl_ms,
                };
                let result = estuary::subscribe(engine, conn, &request, now);
                let changed = result.as_ref().map(|s| vec![s.estuary_key.clone()]).unwrap_or_default();
                (result, changed)
            })
            .await
            .inspect(|_| crate::metrics::add(&self.0.metrics.subscriptions, 1))
    }

    async fn unsubscribe(&self, estuary_key: &str, source_key: &str) -> Result<(), ProtocolError> {
        let (estuary_key, source_key) = (estuary_key.to_owned(), source_key.to_owned());
        self.0.writer.run(move |_, conn, _| (estuary::unsubscribe(conn, &estuary_key, &source_key), Vec::new())).await
    }

    async fn estuary(&self, estuary_key: &str) -> Result<Option<Estuary>, ProtocolError> {
        let estuary_key = estuary_key.to_owned();
        self.0.readers.with(move |conn| Ok(estuary::load(conn, &estuary_key)?)).await
    }

    async fn touch_estuary(&self, estuary_key: &str) -> Result<i64, ProtocolError> {
        let (key, ttl_ms) = (estuary_key.to_owned(), self.ttl_ms());
        self.0.writer.run(move |_, conn, now| (estuary::touch(conn, &key, ttl_ms, now), Vec::new())).await
    }

    async fn delete_estuary(&self, estuary_key: &str) -> Result<(), ProtocolError> {
        let key = estuary_key.to_owned();
        let garbage = self
            .0
            .writer
            .run(move |engine, conn, now| {
                let result = estuary::delete(engine, conn, &key, now);
                (result, vec![key])
            })
            .await?;
        self.0.delete_segments(garbage);
        Ok(())
    }
}

impl NativeEstuaries {
    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.0.config.estuary_ttl.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Drains the outbox: woken after every commit that appended data, and
/// every second (a restart resumes whatever the outbox still holds).
pub async fn fanout_loop(service: Arc<Service>, hint: Arc<tokio::sync::Notify>) {
    let mut shutdown = service.shutdown_signal();
    loop {
        if let Err(error) = drain_all(&service).await {
            tracing::warn!(error = %error, "fan-out failed; will retry");
        }
        tokio::select! {
            _ = hint.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Delivers everything owed right now.
pub async fn drain_all(service: &Arc<Service>) -> Result<(), ProtocolError> {
    loop {
        let sources = service.readers.with(|conn| Ok(estuary::sources_with_pending(conn, SOURCES_PER_PASS)?)).await?;
        if sources.is_empty() {
            return Ok(());
        }
        for source in sources {
            let segments = service.segments.clone();
            let drained = service
                .writer
                .run(move |engine, conn, now| {
                    let mut cold = |key: &str| segments.get(key);
                    let result = estuary::drain_local(engine, conn, &source, DELIVERIES_PER_TASK, now, &mut cold);
                    let changed = result.as_ref().map(|d| d.delivered_to.clone()).unwrap_or_default();
                    (result, changed)
                })
                .await?;
            let m = &service.metrics;
            crate::metrics::add(&m.fanout_deliveries, drained.delivered as u64);
            crate::metrics::add(&m.fanout_duplicates, drained.duplicates);
            crate::metrics::add(&m.fanout_pruned, drained.pruned);
            if drained.pruned > 0 {
                tracing::debug!(pruned = drained.pruned, "subscriptions of deleted estuaries dropped");
            }
        }
    }
}

/// Deletes estuaries whose lifetime ran out (their subscriptions and streams).
pub async fn sweep_expired(service: &Arc<Service>) -> Result<usize, ProtocolError> {
    let now = crate::service::now_ms();
    let expired = service.readers.with(move |conn| Ok(estuary::expired(conn, now, EXPIRED_PER_SWEEP)?)).await?;
    let count = expired.len();
    let host = NativeEstuaries(service.clone());
    for key in expired {
        match host.delete_estuary(&key).await {
            Ok(()) | Err(ProtocolError::NotFound) => {}
            Err(error) => return Err(error),
        }
    }
    crate::metrics::add(&service.metrics.estuaries_expired, count as u64);
    Ok(count)
}
