//! Where a statement runs: through sqlx (`Pooled`, both engines; on SQLite every statement
//! is a hop to the connection's own thread and back) or on the direct SQLite write
//! connection (`Direct`, see `direct`), in the caller's thread with no hop at all. The
//! functions of the hot write paths take a `Db` and run the same SQL on either.

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use sqlx::any::AnyRow;
use sqlx::pool::PoolConnection;
use sqlx::{Any, Row as _};

use crate::batch::{bind_all, positional_into};
use crate::{Arg, Conn, Engine, Result, StoreError, Tx};

pub enum Db<'c> {
    Pooled(&'c mut Conn),
    Direct(&'c mut rusqlite::Connection),
}

impl<'c> From<&'c mut Conn> for Db<'c> {
    fn from(conn: &'c mut Conn) -> Self {
        Db::Pooled(conn)
    }
}

impl<'c> From<&'c mut Tx> for Db<'c> {
    fn from(tx: &'c mut Tx) -> Self {
        Db::Pooled(tx)
    }
}

impl<'c> From<&'c mut PoolConnection<Any>> for Db<'c> {
    fn from(conn: &'c mut PoolConnection<Any>) -> Self {
        Db::Pooled(conn)
    }
}

impl<'c, 'd: 'c> From<&'c mut Db<'d>> for Db<'c> {
    fn from(db: &'c mut Db<'d>) -> Self {
        match db {
            Db::Pooled(conn) => Db::Pooled(conn),
            Db::Direct(conn) => Db::Direct(conn),
        }
    }
}

impl Db<'_> {
    pub fn engine(&self) -> Engine {
        match self {
            Db::Pooled(conn) if conn.backend_name() == "PostgreSQL" => Engine::Postgres,
            _ => Engine::Sqlite,
        }
    }

    /// Every row `sql` returns, its `$n` placeholders bound to `args[n - 1]`.
    pub async fn fetch(&mut self, sql: &str, args: &[Arg]) -> Result<Vec<Row>> {
        match self {
            Db::Pooled(conn) => Ok(bind_all(sqlx::query(sql), args)
                .fetch_all(&mut **conn)
                .await?
                .into_iter()
                .map(Row::Pooled)
                .collect()),
            Db::Direct(conn) => {
                let (sql, args) = positional(sql, args);
                let mut stmt = conn.prepare_cached(&sql)?;
                let columns = stmt.column_count();
                let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    let values = (0..columns)
                        .map(|i| row.get::<_, Value>(i))
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    out.push(Row::Direct(values));
                }
                Ok(out)
            }
        }
    }

    /// The one row `sql` returns.
    pub async fn fetch_one(&mut self, sql: &str, args: &[Arg]) -> Result<Row> {
        self.fetch(sql, args)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Corrupt(format!("no row from: {sql}")))
    }

    /// Runs `sql`; how many rows it changed.
    pub async fn execute(&mut self, sql: &str, args: &[Arg]) -> Result<u64> {
        match self {
            Db::Pooled(conn) => Ok(bind_all(sqlx::query(sql), args)
                .execute(&mut **conn)
                .await?
                .rows_affected()),
            Db::Direct(conn) => {
                let (sql, args) = positional(sql, args);
                let changed = conn
                    .prepare_cached(&sql)?
                    .execute(rusqlite::params_from_iter(args))?;
                Ok(changed as u64)
            }
        }
    }
}

/// SQLite binds anonymous `?` by position without looking a name up.
fn positional<'a>(sql: &str, args: &'a [Arg]) -> (String, Vec<&'a Arg>) {
    let mut out = String::with_capacity(sql.len());
    let mut bound = Vec::with_capacity(args.len());
    positional_into(&mut out, &mut bound, sql, args);
    (out, bound)
}

impl rusqlite::ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Arg::Text(Some(s)) => ValueRef::Text(s.as_bytes()),
            Arg::Int(Some(i)) => ValueRef::Integer(*i),
            Arg::Text(None) | Arg::Int(None) => ValueRef::Null,
        }))
    }
}

/// A row of either kind, read by column index.
pub enum Row {
    Pooled(AnyRow),
    Direct(Vec<Value>),
}

impl Row {
    pub fn get<T: Column>(&self, i: usize) -> Result<T> {
        match self {
            Row::Pooled(row) => T::pooled(row, i),
            Row::Direct(values) => values
                .get(i)
                .and_then(T::direct)
                .ok_or_else(|| StoreError::Corrupt(format!("column {i} is not {}", T::NAME))),
        }
    }
}

/// A type a column decodes to.
pub trait Column: Sized {
    const NAME: &'static str;
    fn pooled(row: &AnyRow, i: usize) -> Result<Self>;
    fn direct(value: &Value) -> Option<Self>;
}

impl Column for i64 {
    const NAME: &'static str = "an integer";
    fn pooled(row: &AnyRow, i: usize) -> Result<Self> {
        Ok(row.try_get(i)?)
    }
    fn direct(value: &Value) -> Option<Self> {
        match value {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }
}

impl Column for String {
    const NAME: &'static str = "text";
    fn pooled(row: &AnyRow, i: usize) -> Result<Self> {
        Ok(row.try_get(i)?)
    }
    fn direct(value: &Value) -> Option<Self> {
        match value {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl<T: Column> Column for Option<T>
where
    for<'r> Option<T>: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    const NAME: &'static str = T::NAME;
    fn pooled(row: &AnyRow, i: usize) -> Result<Self> {
        Ok(row.try_get(i)?)
    }
    fn direct(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            v => T::direct(v).map(Some),
        }
    }
}
