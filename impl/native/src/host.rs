//! The native [`StreamHost`]: the generated streams API (implemented once in
//! `durable-streams-service`) runs over the group-commit [`Service`].

use std::sync::Arc;

use async_trait::async_trait;
use durable_streams_engine::{
    AppendOutcome, AppendRequest, CreateOutcome, CreateRequest, DeleteOutcome, HeadOutcome, ProtocolError, ReadFrom,
};
use durable_streams_service::{LongPoll, ReadChunk, SseStream, StreamHost};

use crate::service::Service;

/// `Arc<Service>` as the host of the generated streams API.
#[derive(Clone)]
pub struct NativeHost(pub Arc<Service>);

#[async_trait]
impl StreamHost for NativeHost {
    async fn create(&self, request: CreateRequest) -> Result<CreateOutcome, ProtocolError> {
        self.0.create(request).await
    }

    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, ProtocolError> {
        self.0.append(request).await
    }

    async fn delete(&self, key: String) -> Result<DeleteOutcome, ProtocolError> {
        self.0.delete(key).await
    }

    async fn head(&self, key: String) -> Result<HeadOutcome, ProtocolError> {
        self.0.head(key).await
    }

    async fn read(&self, key: &str, from: ReadFrom) -> Result<ReadChunk, ProtocolError> {
        self.0.read(key, from).await
    }

    async fn long_poll(&self, key: &str, from: ReadFrom) -> Result<LongPoll, ProtocolError> {
        self.0.long_poll(key, from).await
    }

    async fn sse(&self, key: &str, from: ReadFrom, client_cursor: Option<String>) -> Result<SseStream, ProtocolError> {
        let sse = self.0.sse(key, from, client_cursor).await?;
        let events = futures::stream::unfold(sse.events, |mut events| async move {
            events.recv().await.map(|bytes| (Ok(bytes), events))
        });
        Ok(SseStream { base64: sse.base64, events: Box::pin(events) })
    }

    fn cursor(&self, client: Option<&str>) -> String {
        self.0.cursor(client)
    }

    fn metrics(&self) -> Option<String> {
        Some(self.0.metrics.render())
    }
}
