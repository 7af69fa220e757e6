//! Writes whose results nobody reads, gathered and sent together. On a pooled SQLite
//! connection the statements travel as one multi-statement query with anonymous
//! placeholders bound in order, so the tail of a transaction costs one round trip to the
//! connection's thread instead of one per statement. A direct connection (no round trips)
//! and PostgreSQL run them one by one.

use sqlx::Any;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

use crate::{Conn, Db, Engine, Result};

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

impl From<&ami_tenant::AccountId> for Arg {
    fn from(v: &ami_tenant::AccountId) -> Self {
        Arg::Text(Some(v.as_str().to_owned()))
    }
}

impl From<&ami_tenant::MidId> for Arg {
    fn from(v: &ami_tenant::MidId) -> Self {
        Arg::Text(Some(v.as_str().to_owned()))
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

    /// Runs every statement inside the caller's transaction: one by one on a direct
    /// connection (no hop to save) and on PostgreSQL, as one query on a pooled SQLite one.
    pub async fn run(self, db: impl Into<Db<'_>>) -> Result<()> {
        let mut db = db.into();
        if let (Engine::Sqlite, Db::Pooled(conn)) = (db.engine(), &mut db) {
            return self.run_as_one(conn).await;
        }
        for (sql, args) in &self.statements {
            db.execute(sql, args).await?;
        }
        Ok(())
    }

    async fn run_as_one(self, conn: &mut Conn) -> Result<()> {
        let mut sql = String::new();
        let mut args: Vec<&Arg> = Vec::new();
        for (text, own) in &self.statements {
            if !args.is_empty() && args.len() + placeholders(text) > SQLITE_MAX_ARGS {
                bind_all(sqlx::query(&sql), args.drain(..))
                    .execute(&mut *conn)
                    .await?;
                sql.clear();
            }
            positional_into(&mut sql, &mut args, text, own);
            sql.push_str(";\n");
        }
        bind_all(sqlx::query(&sql), args)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

pub(crate) fn bind_all<'q>(
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

/// Appends `sql` with every placeholder `$n` turned into an anonymous `?` and `own[n - 1]`
/// pushed to `args` in the order the placeholders appear. SQLite binds anonymous parameters
/// by position, across the statements of one query; a numbered one costs it a lookup by
/// name, a scan of every parameter of the statement. The statements here hold no `$`
/// outside placeholders (no string literals with one).
pub(crate) fn positional_into<'a>(
    out: &mut String,
    args: &mut Vec<&'a Arg>,
    sql: &str,
    own: &'a [Arg],
) {
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits]
            .parse::<usize>()
            .ok()
            .and_then(|n| own.get(n.checked_sub(1)?))
        {
            Some(arg) => {
                out.push('?');
                args.push(arg);
            }
            None => {
                out.push('$');
                out.push_str(&rest[..digits]);
            }
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
}

/// How many values `sql` binds once its placeholders are anonymous.
fn placeholders(sql: &str) -> usize {
    sql.matches('$').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_positional_in_order_of_appearance() {
        let own = [Arg::from(1), Arg::from(2), Arg::from(3)];
        let mut out = String::new();
        let mut args = Vec::new();
        positional_into(
            &mut out,
            &mut args,
            "UPDATE t SET a = $3, b = $1 WHERE c IN ($2, $3)",
            &own,
        );
        assert_eq!(out, "UPDATE t SET a = ?, b = ? WHERE c IN (?, ?)");
        let bound: Vec<i64> = args
            .iter()
            .map(|a| match a {
                Arg::Int(Some(v)) => *v,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(bound, [3, 1, 2, 3]);
        assert_eq!(
            placeholders("UPDATE t SET a = $3, b = $1 WHERE c IN ($2, $3)"),
            4
        );
    }
}
