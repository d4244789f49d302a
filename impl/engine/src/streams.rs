//! The domain API: create, append, read, head, delete, touch, sweep.
//!
//! Every operation takes an [`SqlExecutor`] and the current time (`now_ms`); writes run inside
//! [`SqlExecutor::transaction`], so the data, producer state, `Stream-Seq` and closure of one
//! request commit together or not at all. Nothing here waits: a read returns what is there (or
//! nothing, at the tail), and the host decides whether to wait for [`crate::Notifier`] news and
//! retry.

use bytes::{Bytes, BytesMut};

use crate::closure::ClosedBy;
use crate::content_type::{self, DEFAULT_CONTENT_TYPE};
use crate::error::{ProtocolError, StorageError};
use crate::fork::ForkSpec;
use crate::hot_log::{self, ForkLink, StoredMessage, StreamRow};
use crate::json_mode::{self, BodyKind};
use crate::offset::{Offset, ReadFrom};
use crate::producer::{self, Decision, ProducerHeaders};
use crate::segment::{self, SegmentStore};
use crate::storage::SqlExecutor;
use crate::stream_seq;
use crate::ttl::Expiry;

/// Limits of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// Largest append / initial body (413 above).
    pub max_append_bytes: u64,
    /// Target size of one read response (at least one message is always returned).
    pub read_chunk_bytes: u64,
    /// Binary bodies are stored in rows of at most this size (DO SQLite allows ≤ 2 MB values).
    /// A single JSON message larger than this is refused with 413.
    pub max_row_bytes: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig { max_append_bytes: 16 << 20, read_chunk_bytes: 1 << 20, max_row_bytes: 1 << 20 }
    }
}

/// Deepest fork chain followed by reads (protects against corrupt cycles).
const MAX_FORK_DEPTH: u32 = 64;
/// Rows fetched per query during a read.
const READ_ROWS_MAX: u64 = 4096;
/// Segments referenced per read.
const READ_SEGMENTS_MAX: u64 = 16;

/// `PUT`: create a stream (or confirm an identical one exists).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateRequest {
    pub key: String,
    /// `None`: `application/octet-stream`, or the source's type for a fork.
    pub content_type: Option<String>,
    pub expiry: Expiry,
    /// `Stream-Closed: true`: create already closed (the body is the final content).
    pub closed: bool,
    pub fork: Option<ForkSpec>,
    pub body: Bytes,
    /// `?public=`: readable without credentials; `None` takes `public_default`.
    /// Immutable: confirming an existing stream with a different flag conflicts.
    pub public: Option<bool>,
    /// The project's default for streams created without `?public=`.
    pub public_default: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateStatus {
    /// 201 (`Location` etc.).
    Created,
    /// 200: an identical stream already exists.
    Exists,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOutcome {
    pub status: CreateStatus,
    pub content_type: String,
    pub next_offset: Offset,
    pub closed: bool,
    /// Cold segments of a purged (expired) predecessor, for the host to delete.
    pub garbage: Vec<String>,
}

/// `POST`: append, close, or append-and-close.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppendRequest {
    pub key: String,
    /// The request's `Content-Type` (required when the body is non-empty).
    pub content_type: Option<String>,
    pub body: Bytes,
    /// `Stream-Closed: true`.
    pub close: bool,
    /// `Stream-Seq`.
    pub stream_seq: Option<String>,
    pub producer: Option<ProducerHeaders>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendStatus {
    /// New data written (and the stream closed if asked). 200 with producer headers, else 204.
    Appended,
    /// Close-only request closed the stream: 204 (also with producer headers).
    Closed,
    /// Close-only on an already closed stream: 204.
    AlreadyClosed,
    /// Producer retry of something already written: 204, nothing written.
    Duplicate,
}

/// `Producer-Epoch` / `Producer-Seq` to echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerAck {
    pub epoch: u64,
    /// Highest accepted seq for this producer and epoch.
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    pub status: AppendStatus,
    pub next_offset: Offset,
    /// `Stream-Closed: true` (closed by this request or before).
    pub closed: bool,
    pub producer: Option<ProducerAck>,
    /// This append recorded an outbox entry: the source's estuaries are owed it.
    pub owes_estuaries: bool,
}

impl AppendOutcome {
    /// Did this request change the stream (so live readers must be woken)?
    pub fn changed(&self) -> bool {
        matches!(self.status, AppendStatus::Appended | AppendStatus::Closed)
    }
}

/// `GET`: one catch-up chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    pub key: String,
    pub from: ReadFrom,
}

/// Part of a read: messages already loaded, or a range of a cold segment to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Loaded(Vec<StoredMessage>),
    Cold(ColdRef),
}

/// The part `[from, to)` of the segment stored under `object_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColdRef {
    pub object_key: String,
    pub from: u64,
    pub to: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOutcome {
    pub content_type: String,
    /// Where this read started (after resolving `-1` / `now`).
    pub start: Offset,
    /// `Stream-Next-Offset`.
    pub next_offset: Offset,
    /// The stream's tail when read.
    pub tail: Offset,
    /// `Stream-Up-To-Date: true`: this response reaches the tail.
    pub up_to_date: bool,
    /// `Stream-Closed: true`: the stream is closed and this response reaches the final offset.
    pub closed: bool,
    /// The stream has a sliding TTL: the host must [`Engine::touch`] it for this read.
    pub needs_touch: bool,
    /// The stream is readable without credentials.
    pub public: bool,
    pub pieces: Vec<Piece>,
}

impl ReadOutcome {
    /// Does the response carry data?
    pub fn has_data(&self) -> bool {
        self.next_offset > self.start
    }

    pub fn is_json(&self) -> bool {
        content_type::is_json(&self.content_type)
    }

    /// Fetch cold pieces from `store` and return the messages in order.
    pub fn messages(&self, store: &dyn SegmentStore) -> Result<Vec<StoredMessage>, StorageError> {
        self.messages_with(|key| store.get(key))
    }

    /// The messages in order, taking each cold segment's bytes from `segment`
    /// (hosts with asynchronous stores fetch [`ReadOutcome::cold_keys`] first).
    pub fn messages_with(
        &self,
        mut segment: impl FnMut(&str) -> Result<Bytes, StorageError>,
    ) -> Result<Vec<StoredMessage>, StorageError> {
        let mut out = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Loaded(m) => out.extend(m.iter().cloned()),
                Piece::Cold(c) => out.extend(resolve_cold(&segment(&c.object_key)?, c)?),
            }
        }
        Ok(out)
    }

    /// The distinct segment objects this read needs, in read order.
    pub fn cold_keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = Vec::new();
        for piece in &self.pieces {
            if let Piece::Cold(c) = piece {
                if !keys.contains(&c.object_key.as_str()) {
                    keys.push(&c.object_key);
                }
            }
        }
        keys
    }

    /// The response body: bytes concatenated, or one JSON array for JSON streams.
    pub fn body(&self, store: &dyn SegmentStore) -> Result<Bytes, StorageError> {
        Ok(render_body(self.is_json(), &self.messages(store)?))
    }

    /// [`ReadOutcome::body`] with segment bytes from `segment`.
    pub fn body_with(&self, segment: impl FnMut(&str) -> Result<Bytes, StorageError>) -> Result<Bytes, StorageError> {
        Ok(render_body(self.is_json(), &self.messages_with(segment)?))
    }
}

/// Decode the messages of `cold` out of the segment bytes (for hosts that fetch asynchronously).
pub fn resolve_cold(segment_bytes: &[u8], cold: &ColdRef) -> Result<Vec<StoredMessage>, StorageError> {
    let mut out = Vec::new();
    for m in segment::decode(segment_bytes)? {
        if let Some(c) = clip(&m, cold.from, cold.to) {
            out.push(c);
        }
    }
    if out.first().map(|m| m.start) != Some(cold.from) && cold.to > cold.from {
        return Err(StorageError::new("segment does not cover the requested range"));
    }
    Ok(out)
}

/// Concatenate (binary) or render as one JSON array.
pub fn render_body(json: bool, messages: &[StoredMessage]) -> Bytes {
    if json {
        Bytes::from(json_mode::render_array(messages.iter().map(|m| &m.data[..])))
    } else {
        let mut b = BytesMut::with_capacity(messages.iter().map(|m| m.data.len()).sum());
        for m in messages {
            b.extend_from_slice(&m.data);
        }
        b.freeze()
    }
}

/// The part of `m` inside `[from, to)`, if any.
fn clip(m: &StoredMessage, from: u64, to: u64) -> Option<StoredMessage> {
    let start = m.start.max(from);
    let end = m.end().min(to);
    if start >= end {
        return None;
    }
    let data = m.data.slice((start - m.start) as usize..(end - m.start) as usize);
    Some(StoredMessage { start, data })
}

/// `HEAD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadOutcome {
    pub content_type: String,
    pub next_offset: Offset,
    pub closed: bool,
    /// The stream is readable without credentials.
    pub public: bool,
    pub expiry: Expiry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteStatus {
    /// Gone for good (and so may be its soft-deleted ancestors).
    Deleted,
    /// It still has forks: soft-deleted (410 from now on, data kept for the forks).
    SoftDeleted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteOutcome {
    pub status: DeleteStatus,
    /// Cold segments to delete from the segment store.
    pub garbage: Vec<String>,
    /// Streams removed (this one and cascaded ancestors): wake their readers.
    pub removed: Vec<String>,
}

/// Result of [`Engine::sweep_expired`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SweepOutcome {
    pub removed: Vec<String>,
    pub garbage: Vec<String>,
}

/// The protocol engine. Stateless apart from its limits: all state is in the hot log.
#[derive(Debug, Clone, Copy, Default)]
pub struct Engine {
    pub config: EngineConfig,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Engine {
        Engine { config }
    }

    /// Create a stream, confirm an identical one, or create a fork.
    pub fn create(&self, db: &impl SqlExecutor, req: CreateRequest, now_ms: i64) -> Result<CreateOutcome, ProtocolError> {
        self.check_size(req.body.len())?;
        db.transaction(|| self.create_tx(db, req, now_ms))
    }

    fn create_tx(&self, db: &impl SqlExecutor, req: CreateRequest, now_ms: i64) -> Result<CreateOutcome, ProtocolError> {
        let requested_type = req.content_type.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let mut garbage = Vec::new();
        if let Some(existing) = hot_log::load_stream(db, &req.key)? {
            let expired = existing.is_expired(now_ms);
            if existing.soft_deleted || (expired && hot_log::fork_refcount(db, &req.key)? > 0) {
                return Err(ProtocolError::ConfigMismatch("the path belongs to a soft-deleted stream".into()));
            }
            if expired {
                let (g, _) = purge_cascade(db, &req.key, now_ms)?;
                garbage = g;
            } else {
                return self.confirm_existing(db, &existing, &req, requested_type, now_ms);
            }
        }

        let mut content_type = requested_type.unwrap_or(DEFAULT_CONTENT_TYPE).to_owned();
        let mut expiry = req.expiry.clone();
        let mut fork_link = None;
        let mut tail = 0;
        if let Some(spec) = &req.fork {
            let source = match hot_log::load_stream(db, &spec.source)? {
                None => return Err(ProtocolError::NotFound),
                Some(s) if s.soft_deleted => {
                    return Err(ProtocolError::ConfigMismatch("fork source is soft-deleted".into()))
                }
                Some(s) if s.is_expired(now_ms) => {
                    return Err(if hot_log::fork_refcount(db, &spec.source)? > 0 {
                        ProtocolError::ConfigMismatch("fork source is gone".into())
                    } else {
                        ProtocolError::NotFound
                    })
                }
                Some(s) => s,
            };
            if let Some(t) = requested_type {
                if !content_type::matches(t, &source.content_type) {
                    return Err(ProtocolError::ContentTypeMismatch { stream: source.content_type });
                }
            }
            content_type = source.content_type.clone();
            let offset = spec.offset.unwrap_or(Offset::at(source.tail));
            if offset.read_seq != 0 || offset.byte > source.tail {
                return Err(ProtocolError::bad_request("fork offset beyond the source's tail"));
            }
            let fork_pos = if spec.sub_offset > 0 {
                resolve_sub_offset(db, &source, offset.byte, spec.sub_offset)?
            } else {
                offset.byte
            };
            if expiry == Expiry::Never {
                expiry = source.expiry.clone();
            }
            tail = fork_pos;
            fork_link = Some(ForkLink {
                source: source.key.clone(),
                fork_pos,
                requested_offset: spec.offset,
                sub_offset: spec.sub_offset,
            });
            // A read of the source renews its sliding TTL; so does forking from it.
            if source.expiry.is_sliding() {
                hot_log::touch(db, &source.key, now_ms)?;
            }
        }

        let mut row = StreamRow {
            key: req.key.clone(),
            incarnation: hot_log::next_counter(db, "incarnation")?,
            content_type,
            expiry,
            last_access_ms: now_ms,
            created_ms: now_ms,
            closed: false,
            tail,
            fork: fork_link,
            soft_deleted: false,
            last_stream_seq: None,
            closed_by: None,
            public: req.public.unwrap_or(req.public_default),
        };
        let messages = self.split_body(&row.content_type, &req.body, BodyKind::Create)?;
        hot_log::insert_stream(db, &row)?;
        for m in messages {
            row.tail = hot_log::insert_message(db, &row.key, row.tail, m)?;
        }
        row.closed = req.closed;
        hot_log::update_after_write(db, &row)?;
        crate::registry::record_insert(db, &row.key, &row.content_type, now_ms)?;
        Ok(CreateOutcome {
            status: CreateStatus::Created,
            content_type: row.content_type,
            next_offset: Offset::at(row.tail),
            closed: row.closed,
            garbage,
        })
    }

    fn confirm_existing(
        &self,
        db: &impl SqlExecutor,
        existing: &StreamRow,
        req: &CreateRequest,
        requested_type: Option<&str>,
        now_ms: i64,
    ) -> Result<CreateOutcome, ProtocolError> {
        let type_ok = match requested_type {
            Some(t) => content_type::matches(t, &existing.content_type),
            None => existing.fork.is_some() || content_type::matches(DEFAULT_CONTENT_TYPE, &existing.content_type),
        };
        let expiry_ok = existing.expiry.same_config(&req.expiry)
            || (req.expiry == Expiry::Never && existing.fork.is_some());
        let fork_ok = match (&existing.fork, &req.fork) {
            (None, None) => true,
            (Some(have), Some(want)) => {
                have.source == want.source
                    && (want.offset.is_none() || want.offset == have.requested_offset)
                    && have.sub_offset == want.sub_offset
            }
            _ => false,
        };
        let public_ok = req.public.is_none_or(|public| public == existing.public);
        if !type_ok || !expiry_ok || !fork_ok || !public_ok || existing.closed != req.closed {
            return Err(ProtocolError::ConfigMismatch("stream exists with a different configuration".into()));
        }
        if existing.expiry.is_sliding() {
            hot_log::touch(db, &existing.key, now_ms)?;
        }
        Ok(CreateOutcome {
            status: CreateStatus::Exists,
            content_type: existing.content_type.clone(),
            next_offset: Offset::at(existing.tail),
            closed: existing.closed,
            garbage: Vec::new(),
        })
    }

    /// Append, close, or append-and-close.
    pub fn append(&self, db: &impl SqlExecutor, req: AppendRequest, now_ms: i64) -> Result<AppendOutcome, ProtocolError> {
        self.check_size(req.body.len())?;
        db.transaction(|| self.append_tx(db, req, now_ms))
    }

    fn append_tx(&self, db: &impl SqlExecutor, req: AppendRequest, now_ms: i64) -> Result<AppendOutcome, ProtocolError> {
        let mut s = live_stream(db, &req.key, now_ms)?;
        let close_only = req.body.is_empty();
        if close_only && !req.close {
            return Err(ProtocolError::bad_request("empty body (send Stream-Closed: true to close)"));
        }
        let producer_state = match &req.producer {
            Some(p) => hot_log::load_producer(db, &s.key, &p.id)?,
            None => None,
        };
        if let Some(p) = &req.producer {
            producer::check_epoch(producer_state, p)?;
        }
        let tail = Offset::at(s.tail);
        if s.closed {
            if let (Some(p), Some(by)) = (&req.producer, &s.closed_by) {
                if by.producer_id == p.id && by.epoch == p.epoch && by.seq == p.seq {
                    return Ok(AppendOutcome {
                        status: AppendStatus::Duplicate,
                        next_offset: tail,
                        closed: true,
                        producer: Some(ProducerAck { epoch: by.epoch, seq: by.seq }),
                        owes_estuaries: false,
                    });
                }
            }
            if close_only {
                if s.expiry.is_sliding() {
                    hot_log::touch(db, &s.key, now_ms)?;
                }
                let ack = producer_state.map(|st| ProducerAck { epoch: st.epoch, seq: st.last_seq });
                return Ok(AppendOutcome {
                    status: AppendStatus::AlreadyClosed,
                    next_offset: tail,
                    closed: true,
                    producer: ack,
                    owes_estuaries: false,
                });
            }
            return Err(ProtocolError::StreamClosed { next_offset: tail });
        }
        if !close_only {
            match req.content_type.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                None => return Err(ProtocolError::bad_request("Content-Type is required with a body")),
                Some(t) if !content_type::matches(t, &s.content_type) => {
                    return Err(ProtocolError::ContentTypeMismatch { stream: s.content_type.clone() })
                }
                Some(_) => {}
            }
        }
        let mut ack = None;
        if let Some(p) = &req.producer {
            match producer::validate(producer_state, p)? {
                Decision::Duplicate { epoch, highest_seq } => {
                    return Ok(AppendOutcome {
                        status: AppendStatus::Duplicate,
                        next_offset: tail,
                        closed: s.closed,
                        producer: Some(ProducerAck { epoch, seq: highest_seq }),
                        owes_estuaries: false,
                    });
                }
                Decision::Accept { new_state } => {
                    hot_log::save_producer(db, &s.key, &p.id, new_state, now_ms)?;
                    ack = Some(ProducerAck { epoch: new_state.epoch, seq: new_state.last_seq });
                }
            }
        }
        if let Some(seq) = &req.stream_seq {
            stream_seq::check(s.last_stream_seq.as_deref(), seq)?;
            s.last_stream_seq = Some(seq.clone());
        }
        let messages = if close_only { Vec::new() } else { self.split_body(&s.content_type, &req.body, BodyKind::Append)? };
        let published_from = s.tail;
        for m in messages {
            s.tail = hot_log::insert_message(db, &s.key, s.tail, m)?;
        }
        // Estuaries: owed to the source's subscribers, in this same transaction.
        let owes_estuaries = crate::estuary::record_publish(db, &s.key, published_from, s.tail)?;
        if req.close {
            s.closed = true;
            s.closed_by = req.producer.as_ref().map(|p| ClosedBy { producer_id: p.id.clone(), epoch: p.epoch, seq: p.seq });
        }
        s.last_access_ms = now_ms;
        hot_log::update_after_write(db, &s)?;
        Ok(AppendOutcome {
            status: if close_only { AppendStatus::Closed } else { AppendStatus::Appended },
            next_offset: Offset::at(s.tail),
            closed: s.closed,
            producer: ack,
            owes_estuaries,
        })
    }

    /// Read one chunk. Does not renew the TTL: if [`ReadOutcome::needs_touch`], call
    /// [`Engine::touch`] (a write) too.
    pub fn read(&self, db: &impl SqlExecutor, req: &ReadRequest, now_ms: i64) -> Result<ReadOutcome, ProtocolError> {
        let s = live_stream(db, &req.key, now_ms)?;
        let start = match req.from {
            ReadFrom::Start => 0,
            ReadFrom::Now => s.tail,
            ReadFrom::At(o) if o.read_seq != 0 => s.tail,
            ReadFrom::At(o) => o.byte.min(s.tail),
        };
        let mut pieces = Vec::new();
        let mut budget = self.config.read_chunk_bytes.max(1);
        let reached = collect(db, &s, start, s.tail, &mut budget, &mut pieces, 0)?;
        let up_to_date = reached >= s.tail;
        Ok(ReadOutcome {
            content_type: s.content_type.clone(),
            start: Offset::at(start),
            next_offset: Offset::at(reached),
            tail: Offset::at(s.tail),
            up_to_date,
            closed: s.closed && up_to_date,
            needs_touch: s.expiry.is_sliding(),
            public: s.public,
            pieces,
        })
    }

    /// Exactly the data in `[start, end)` of a stream (estuary deliveries);
    /// no chunk limit, no TTL renewal.
    pub fn read_range(
        &self,
        db: &impl SqlExecutor,
        key: &str,
        start: u64,
        end: u64,
        now_ms: i64,
    ) -> Result<ReadOutcome, ProtocolError> {
        let s = live_stream(db, key, now_ms)?;
        let end = end.min(s.tail);
        let start = start.min(end);
        let mut pieces = Vec::new();
        let mut budget = u64::MAX;
        let reached = collect(db, &s, start, end, &mut budget, &mut pieces, 0)?;
        if reached != end {
            return Err(ProtocolError::Storage(StorageError::new("a ranged read stopped short")));
        }
        Ok(ReadOutcome {
            content_type: s.content_type.clone(),
            start: Offset::at(start),
            next_offset: Offset::at(end),
            tail: Offset::at(s.tail),
            up_to_date: end >= s.tail,
            closed: s.closed && end >= s.tail,
            needs_touch: false,
            public: s.public,
            pieces,
        })
    }

    /// Metadata; does not renew the TTL.
    pub fn head(&self, db: &impl SqlExecutor, key: &str, now_ms: i64) -> Result<HeadOutcome, ProtocolError> {
        let s = live_stream(db, key, now_ms)?;
        Ok(HeadOutcome {
            content_type: s.content_type,
            next_offset: Offset::at(s.tail),
            closed: s.closed,
            expiry: s.expiry,
            public: s.public,
        })
    }

    /// Renew a sliding TTL (reads). Fails like a read if the stream is missing or expired.
    pub fn touch(&self, db: &impl SqlExecutor, key: &str, now_ms: i64) -> Result<(), ProtocolError> {
        db.transaction(|| {
            let s = live_stream(db, key, now_ms)?;
            if s.expiry.is_sliding() {
                hot_log::touch(db, key, now_ms)?;
            }
            Ok(())
        })
    }

    /// Delete; soft-delete if forks still reference the stream.
    pub fn delete(&self, db: &impl SqlExecutor, key: &str, now_ms: i64) -> Result<DeleteOutcome, ProtocolError> {
        db.transaction(|| {
            live_stream(db, key, now_ms)?;
            if hot_log::fork_refcount(db, key)? > 0 {
                hot_log::set_soft_deleted(db, key)?;
                crate::registry::record_delete(db, key)?;
                return Ok(DeleteOutcome { status: DeleteStatus::SoftDeleted, garbage: Vec::new(), removed: vec![key.to_owned()] });
            }
            let (garbage, removed) = purge_cascade(db, key, now_ms)?;
            Ok(DeleteOutcome { status: DeleteStatus::Deleted, garbage, removed })
        })
    }

    /// Remove up to `limit` expired streams nobody forks from (cascading to released sources).
    pub fn sweep_expired(&self, db: &impl SqlExecutor, now_ms: i64, limit: u64) -> Result<SweepOutcome, ProtocolError> {
        db.transaction(|| {
            let mut out = SweepOutcome::default();
            for key in hot_log::expired_streams(db, now_ms, limit)? {
                if hot_log::fork_refcount(db, &key)? == 0 && hot_log::load_stream(db, &key)?.is_some() {
                    let (g, r) = purge_cascade(db, &key, now_ms)?;
                    out.garbage.extend(g);
                    out.removed.extend(r);
                }
            }
            Ok(out)
        })
    }

    fn check_size(&self, len: usize) -> Result<(), ProtocolError> {
        if len as u64 > self.config.max_append_bytes {
            return Err(ProtocolError::PayloadTooLarge { limit_bytes: self.config.max_append_bytes });
        }
        Ok(())
    }

    /// Split a body into stored rows: JSON messages, or binary chunks of ≤ `max_row_bytes`.
    fn split_body(&self, content_type: &str, body: &Bytes, kind: BodyKind) -> Result<Vec<Bytes>, ProtocolError> {
        let row_max = self.config.max_row_bytes.max(1) as usize;
        if content_type::is_json(content_type) {
            if body.is_empty() && kind == BodyKind::Create {
                return Ok(Vec::new());
            }
            let messages = json_mode::flatten(body, kind)?;
            if messages.iter().any(|m| m.len() > row_max) {
                return Err(ProtocolError::PayloadTooLarge { limit_bytes: row_max as u64 });
            }
            return Ok(messages);
        }
        let mut out = Vec::with_capacity(body.len() / row_max + 1);
        let mut at = 0;
        while at < body.len() {
            let end = (at + row_max).min(body.len());
            out.push(body.slice(at..end));
            at = end;
        }
        Ok(out)
    }
}

/// Load a stream that is visible to clients: missing or expired → 404; soft-deleted, or expired
/// while forks still need it → 410.
fn live_stream(db: &impl SqlExecutor, key: &str, now_ms: i64) -> Result<StreamRow, ProtocolError> {
    let s = hot_log::load_stream(db, key)?.ok_or(ProtocolError::NotFound)?;
    if s.soft_deleted {
        return Err(ProtocolError::Gone);
    }
    if s.is_expired(now_ms) {
        return Err(if hot_log::fork_refcount(db, key)? > 0 { ProtocolError::Gone } else { ProtocolError::NotFound });
    }
    Ok(s)
}

/// Delete a stream's rows, then its source if that was only kept for forks and has none left.
fn purge_cascade(db: &impl SqlExecutor, key: &str, now_ms: i64) -> Result<(Vec<String>, Vec<String>), StorageError> {
    let mut garbage = Vec::new();
    let mut removed = Vec::new();
    let mut next = Some(key.to_owned());
    let mut depth = 0;
    while let Some(k) = next.take() {
        let Some(s) = hot_log::load_stream(db, &k)? else { break };
        if !s.soft_deleted {
            // A soft-deleted stream was announced when it was deleted.
            crate::registry::record_delete(db, &k)?;
        }
        garbage.extend(hot_log::delete_stream(db, &k)?);
        removed.push(k);
        depth += 1;
        if depth > MAX_FORK_DEPTH {
            break;
        }
        if let Some(f) = s.fork {
            if let Some(src) = hot_log::load_stream(db, &f.source)? {
                if (src.soft_deleted || src.is_expired(now_ms)) && hot_log::fork_refcount(db, &src.key)? == 0 {
                    next = Some(src.key);
                }
            }
        }
    }
    Ok((garbage, removed))
}

/// Resolve a sub-offset: `sub` bytes (binary) or messages (JSON) past `base` in `source`'s
/// chain. Overshooting the data → 400.
fn resolve_sub_offset(db: &impl SqlExecutor, source: &StreamRow, base: u64, sub: u64) -> Result<u64, ProtocolError> {
    let json = content_type::is_json(&source.content_type);
    if !json {
        if base + sub > source.tail {
            return Err(ProtocolError::bad_request("Stream-Fork-Sub-Offset overshoots the source data"));
        }
        return Ok(base + sub);
    }
    let mut pos = base;
    let mut remaining = sub;
    while remaining > 0 {
        let mut pieces = Vec::new();
        let mut budget = u64::MAX;
        collect(db, source, pos, source.tail, &mut budget, &mut pieces, 0)?;
        if pieces.is_empty() {
            return Err(ProtocolError::bad_request("Stream-Fork-Sub-Offset overshoots the source messages"));
        }
        let mut progressed = false;
        for piece in &pieces {
            let msgs = match piece {
                Piece::Loaded(m) => m.clone(),
                // Message boundaries inside cold segments are not indexed; a JSON sub-offset
                // into archived data is refused rather than guessed.
                Piece::Cold(_) => {
                    return Err(ProtocolError::bad_request("Stream-Fork-Sub-Offset into archived data is not supported"));
                }
            };
            for m in msgs {
                pos = m.end();
                remaining -= 1;
                progressed = true;
                if remaining == 0 {
                    return Ok(pos);
                }
            }
        }
        if !progressed {
            break;
        }
    }
    if remaining == 0 {
        Ok(pos)
    } else {
        Err(ProtocolError::bad_request("Stream-Fork-Sub-Offset overshoots the source messages"))
    }
}

/// Gather pieces of `s`'s chain covering `[from, cap)` within `budget` bytes; returns the
/// position reached.
fn collect(
    db: &impl SqlExecutor,
    s: &StreamRow,
    from: u64,
    cap: u64,
    budget: &mut u64,
    pieces: &mut Vec<Piece>,
    depth: u32,
) -> Result<u64, StorageError> {
    if depth > MAX_FORK_DEPTH {
        return Err(StorageError::new("fork chain too deep"));
    }
    let mut pos = from;
    if let Some(f) = &s.fork {
        if pos < f.fork_pos {
            let source = hot_log::load_stream(db, &f.source)?
                .ok_or_else(|| StorageError::new(format!("fork source {} missing", f.source)))?;
            let inherited_cap = cap.min(f.fork_pos);
            pos = collect(db, &source, pos, inherited_cap, budget, pieces, depth + 1)?;
            if pos < inherited_cap {
                return Ok(pos);
            }
        }
    }
    let own_cap = cap.min(s.tail);
    if pos >= own_cap {
        return Ok(pos);
    }
    let segments = hot_log::segments_overlapping(db, &s.key, pos, own_cap, READ_SEGMENTS_MAX)?;
    let all_segments = (segments.len() as u64) < READ_SEGMENTS_MAX;
    for seg in segments {
        if *budget == 0 && !pieces.is_empty() {
            return Ok(pos);
        }
        if seg.start > pos {
            return Err(StorageError::new("gap before cold segment"));
        }
        let to = seg.end.min(own_cap);
        pieces.push(Piece::Cold(ColdRef { object_key: seg.object_key, from: pos, to }));
        *budget = budget.saturating_sub(to - pos);
        pos = to;
    }
    if !all_segments || pos >= own_cap {
        return Ok(pos);
    }
    let mut loaded = Vec::new();
    for m in hot_log::hot_messages(db, &s.key, pos, own_cap, READ_ROWS_MAX)? {
        if *budget == 0 && !(pieces.is_empty() && loaded.is_empty()) {
            break;
        }
        if m.start > pos {
            return Err(StorageError::new("gap in hot log"));
        }
        let Some(c) = clip(&m, pos, own_cap) else { continue };
        *budget = budget.saturating_sub(c.data.len() as u64);
        pos = c.end();
        loaded.push(c);
    }
    if !loaded.is_empty() {
        pieces.push(Piece::Loaded(loaded));
    }
    Ok(pos)
}
