//! Paging by id: ids are time-sortable, so "newest first, after this cursor" is `id < cursor`.

#[derive(Debug, Clone)]
pub struct PageRequest {
    /// Already clamped by the caller to 1..=200 (1..=1000 for events).
    pub limit: i64,
    pub cursor: Option<String>,
}

pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Fetch `limit + 1` rows; the extra one only says whether there is a next page.
pub(crate) fn finish<T>(mut rows: Vec<T>, limit: i64, id_of: impl Fn(&T) -> &str) -> Page<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    let next_cursor = if more {
        rows.last().map(|r| id_of(r).to_owned())
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

/// Without a cursor, a bound above every id (ids are `[0-9a-z_]`, all below `~`).
pub(crate) fn cursor_bound(req: &PageRequest) -> &str {
    req.cursor.as_deref().unwrap_or("~")
}
