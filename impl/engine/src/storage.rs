//! Storage abstractions.
//!
//! The hot log lives in SQL with one schema and one set of query strings shared by every host
//! ([`crate::hot_log`]). Hosts provide a [`SqlExecutor`]:
//!
//! * natively, rusqlite (feature `sqlite`; [`SqlExecutor::transaction`] is a `SAVEPOINT`, so it
//!   nests inside a group-commit batch transaction);
//! * in a Durable Object, the DO's synchronous SQLite, where `transaction` is simply "run the
//!   closure without awaiting" (calls between awaits are atomic there).
//!
//! The queries respect the DO limits: at most a handful of bound parameters, integers below
//! 2^53, values below 2 MB (bodies are split into rows of at most `max_row_bytes`), no
//! `BEGIN`/`SAVEPOINT` in the shared SQL.

use bytes::Bytes;

use crate::error::StorageError;

/// A bound parameter or a column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Blob(Bytes),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<Bytes> for Value {
    fn from(v: Bytes) -> Self {
        Value::Blob(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One result row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn get(&self, i: usize) -> Result<&Value, StorageError> {
        self.0.get(i).ok_or_else(|| StorageError::new(format!("missing column {i}")))
    }
    pub fn int(&self, i: usize) -> Result<i64, StorageError> {
        match self.get(i)? {
            Value::Int(v) => Ok(*v),
            other => Err(StorageError::new(format!("column {i}: expected integer, got {other:?}"))),
        }
    }
    pub fn uint(&self, i: usize) -> Result<u64, StorageError> {
        u64::try_from(self.int(i)?).map_err(|_| StorageError::new(format!("column {i}: negative")))
    }
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, StorageError> {
        match self.get(i)? {
            Value::Null => Ok(None),
            _ => self.int(i).map(Some),
        }
    }
    pub fn text(&self, i: usize) -> Result<String, StorageError> {
        match self.get(i)? {
            Value::Text(v) => Ok(v.clone()),
            other => Err(StorageError::new(format!("column {i}: expected text, got {other:?}"))),
        }
    }
    pub fn opt_text(&self, i: usize) -> Result<Option<String>, StorageError> {
        match self.get(i)? {
            Value::Null => Ok(None),
            _ => self.text(i).map(Some),
        }
    }
    pub fn blob(&self, i: usize) -> Result<Bytes, StorageError> {
        match self.get(i)? {
            Value::Blob(v) => Ok(v.clone()),
            Value::Text(v) => Ok(Bytes::copy_from_slice(v.as_bytes())),
            Value::Null => Ok(Bytes::new()),
            other => Err(StorageError::new(format!("column {i}: expected blob, got {other:?}"))),
        }
    }
}

/// Minimal synchronous SQL access.
pub trait SqlExecutor {
    /// Run a statement; returns the number of changed rows.
    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, StorageError>;
    /// Run a query and collect its rows.
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StorageError>;
    /// Run `f` atomically: all of its statements take effect, or (if it returns `Err`) none.
    fn transaction<T, E: From<StorageError>>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, E>;
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use rusqlite::types::{ToSqlOutput, ValueRef};

    fn err(e: rusqlite::Error) -> StorageError {
        StorageError::new(e.to_string())
    }

    impl rusqlite::ToSql for Value {
        fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
            Ok(match self {
                Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
                Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
                Value::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
                Value::Blob(v) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
            })
        }
    }

    /// rusqlite: `transaction` is a SAVEPOINT, so it nests inside an outer batch transaction.
    impl SqlExecutor for rusqlite::Connection {
        fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, StorageError> {
            let mut stmt = self.prepare_cached(sql).map_err(err)?;
            let n = stmt.execute(rusqlite::params_from_iter(params.iter())).map_err(err)?;
            Ok(n as u64)
        }

        fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, StorageError> {
            let mut stmt = self.prepare_cached(sql).map_err(err)?;
            let cols = stmt.column_count();
            let mut rows = stmt.query(rusqlite::params_from_iter(params.iter())).map_err(err)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(err)? {
                let mut row = Vec::with_capacity(cols);
                for i in 0..cols {
                    row.push(match r.get_ref(i).map_err(err)? {
                        ValueRef::Null => Value::Null,
                        ValueRef::Integer(v) => Value::Int(v),
                        ValueRef::Real(v) => Value::Int(v as i64),
                        ValueRef::Text(v) => Value::Text(String::from_utf8_lossy(v).into_owned()),
                        ValueRef::Blob(v) => Value::Blob(Bytes::copy_from_slice(v)),
                    });
                }
                out.push(Row(row));
            }
            Ok(out)
        }

        fn transaction<T, E: From<StorageError>>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
            self.execute_batch("SAVEPOINT ds_tx").map_err(err)?;
            match f() {
                Ok(v) => {
                    self.execute_batch("RELEASE ds_tx").map_err(err)?;
                    Ok(v)
                }
                Err(e) => {
                    let _ = self.execute_batch("ROLLBACK TO ds_tx; RELEASE ds_tx");
                    Err(e)
                }
            }
        }
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    #[test]
    fn transaction_rolls_back_on_error() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        SqlExecutor::execute(&db, "CREATE TABLE t (v INTEGER)", &[]).unwrap();
        let r: Result<(), StorageError> = SqlExecutor::transaction(&db, || {
            SqlExecutor::execute(&db, "INSERT INTO t VALUES (?1)", &[Value::Int(1)])?;
            Err(StorageError::new("boom"))
        });
        assert!(r.is_err());
        let ok: Result<(), StorageError> = SqlExecutor::transaction(&db, || {
            SqlExecutor::execute(&db, "INSERT INTO t VALUES (?1)", &[Value::Int(2)])?;
            Ok(())
        });
        assert!(ok.is_ok());
        let rows = SqlExecutor::query(&db, "SELECT v FROM t", &[]).unwrap();
        assert_eq!(rows, vec![Row(vec![Value::Int(2)])]);
    }
}
