//! Writes whose results nobody reads, gathered and sent together. On SQLite the statements
//! travel as one multi-statement query (the SQLite driver binds `$n` across the whole text),
//! so the tail of a transaction costs one round trip to the connection's thread instead of
//! one per statement. PostgreSQL runs them one by one.

use sqlx::Any;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

use crate::{Conn, Result};

/// Most values bound in one SQLite query, under its limit of 32 766.
const SQLITE_MAX_ARGS: usize = 30_000;

/// A value to bind, typed so that a NULL is typed too (PostgreSQL needs to know).
#[derive(Debug, Clone)]
pub enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_owned()))
    }
}

impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(Some(v.clone()))
    }
}

impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::Text(v.map(str::to_owned))
    }
}

impl From<&Option<String>> for Arg {
    fn from(v: &Option<String>) -> Self {
        Arg::Text(v.clone())
    }
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}

/// Statements numbered `$1…` each, run in the order pushed.
#[derive(Debug, Default)]
pub struct Batch {
    statements: Vec<(String, Vec<Arg>)>,
}

impl Batch {
    pub fn push(&mut self, sql: String, args: Vec<Arg>) {
        self.statements.push((sql, args));
    }

    /// Runs every statement inside the caller's transaction.
    pub async fn run(self, conn: &mut Conn) -> Result<()> {
        if conn.backend_name() != "SQLite" {
            for (sql, args) in &self.statements {
                bind_all(sqlx::query(sql), args).execute(&mut *conn).await?;
            }
            return Ok(());
        }
        let mut sql = String::new();
        let mut args: Vec<&Arg> = Vec::new();
        for (text, own) in &self.statements {
            if !args.is_empty() && args.len() + own.len() > SQLITE_MAX_ARGS {
                bind_all(sqlx::query(&sql), args.drain(..))
                    .execute(&mut *conn)
                    .await?;
                sql.clear();
            }
            renumber_into(&mut sql, text, args.len());
            sql.push_str(";\n");
            args.extend(own);
        }
        bind_all(sqlx::query(&sql), args)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

fn bind_all<'q>(
    mut q: Query<'q, Any, AnyArguments<'q>>,
    args: impl IntoIterator<Item = &'q Arg>,
) -> Query<'q, Any, AnyArguments<'q>> {
    for arg in args {
        q = match arg {
            Arg::Text(v) => q.bind(v.as_deref()),
            Arg::Int(v) => q.bind(*v),
        };
    }
    q
}

/// Appends `sql` with every placeholder `$n` shifted to `$(n + offset)`. The statements here
/// hold no `$` outside placeholders (no string literals with one).
fn renumber_into(out: &mut String, sql: &str, offset: usize) {
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_shift_by_the_offset() {
        let mut out = String::new();
        renumber_into(
            &mut out,
            "UPDATE t SET a = $1, b = $12 WHERE c IN ($2, $3)",
            10,
        );
        assert_eq!(out, "UPDATE t SET a = $11, b = $22 WHERE c IN ($12, $13)");
        let mut same = String::new();
        renumber_into(&mut same, "SELECT $1", 0);
        assert_eq!(same, "SELECT $1");
    }
}
