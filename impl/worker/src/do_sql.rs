//! The engine's SQL executor over Durable Object SQLite.
//!
//! Statements run synchronously; `transaction` uses the storage's
//! `transactionSync`, so an engine operation that fails half-way leaves no
//! trace (raw `BEGIN`/`SAVEPOINT` SQL is rejected by the runtime).

use bytes::Bytes;
use durable_streams_engine::storage::{Row, SqlExecutor, Value};
use durable_streams_engine::StorageError;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use worker::{SqlStorage, SqlStorageValue};

/// SQL access of one Durable Object.
pub struct DoSql {
    sql: SqlStorage,
    storage: JsValue,
    transaction_sync: worker::js_sys::Function,
}

fn storage_error(error: impl std::fmt::Debug) -> StorageError {
    StorageError::new(format!("Durable Object SQL: {error:?}"))
}

impl DoSql {
    pub fn new(storage: &worker::Storage) -> Result<DoSql, StorageError> {
        let raw: JsValue = AsRef::<JsValue>::as_ref(storage.as_raw()).clone();
        let transaction_sync = worker::js_sys::Reflect::get(&raw, &JsValue::from_str("transactionSync"))
            .map_err(storage_error)?
            .dyn_into::<worker::js_sys::Function>()
            .map_err(storage_error)?;
        Ok(DoSql { sql: storage.sql(), storage: raw, transaction_sync })
    }

    fn bind(params: &[Value]) -> Vec<SqlStorageValue> {
        params
            .iter()
            .map(|value| match value {
                Value::Null => SqlStorageValue::Null,
                Value::Int(v) => SqlStorageValue::Integer(*v),
                Value::Text(v) => SqlStorageValue::String(v.clone()),
                Value::Blob(v) => SqlStorageValue::Blob(v.to_vec()),
            })
            .collect()
    }
}

impl SqlExecutor for DoSql {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, StorageError> {
        let cursor = self.sql.exec(sql, Self::bind(params)).map_err(storage_error)?;
        // Drain the cursor so the statement completes before we read its counters.
        for row in cursor.raw() {
            row.map_err(storage_error)?;
        }
        Ok(cursor.rows_written() as u64)
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StorageError> {
        let cursor = self.sql.exec(sql, Self::bind(params)).map_err(storage_error)?;
        let mut rows = Vec::new();
        for row in cursor.raw() {
            let row = row.map_err(storage_error)?;
            rows.push(Row(
                row.into_iter()
                    .map(|value| match value {
                        SqlStorageValue::Null => Value::Null,
                        SqlStorageValue::Boolean(v) => Value::Int(i64::from(v)),
                        SqlStorageValue::Integer(v) => Value::Int(v),
                        SqlStorageValue::Float(v) => Value::Int(v as i64),
                        SqlStorageValue::String(v) => Value::Text(v),
                        SqlStorageValue::Blob(v) => Value::Blob(Bytes::from(v)),
                    })
                    .collect(),
            ));
        }
        Ok(rows)
    }

    fn transaction<T, E: From<StorageError>>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let mut f = Some(f);
        let mut outcome: Option<Result<T, E>> = None;
        let mut body = || -> Result<JsValue, JsValue> {
            let Some(f) = f.take() else {
                return Err(JsValue::from_str("transaction body ran twice"));
            };
            let result = f();
            let failed = result.is_err();
            outcome = Some(result);
            if failed {
                // Throwing makes transactionSync roll back.
                Err(JsValue::from_str("rolled back"))
            } else {
                Ok(JsValue::UNDEFINED)
            }
        };
        let body: &mut dyn FnMut() -> Result<JsValue, JsValue> = &mut body;
        // SAFETY: transactionSync calls the callback synchronously and keeps no
        // reference to it; the Closure below is dropped before `body` goes out
        // of scope, so the erased lifetime never outlives the borrow.
        let body: &'static mut dyn FnMut() -> Result<JsValue, JsValue> = unsafe { std::mem::transmute(body) };
        let closure = Closure::wrap(Box::new(body) as Box<dyn FnMut() -> Result<JsValue, JsValue>>);
        let call = self.transaction_sync.call1(&self.storage, closure.as_ref());
        drop(closure);
        match (outcome, call) {
            (Some(Ok(value)), Ok(_)) => Ok(value),
            (Some(Ok(_)), Err(error)) => Err(storage_error(error).into()),
            (Some(Err(error)), _) => Err(error),
            (None, call) => Err(StorageError::new(format!("transactionSync did not run: {call:?}")).into()),
        }
    }
}
