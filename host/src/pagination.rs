//! Keyset pagination over time-ordered ids, for Relay-style connections.
//! The cursor is the opaque (base64) id of the last row seen.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Select,
};

use crate::error::{ServiceError, ServiceResult};

/// Default page size.
pub const DEFAULT_PAGE: u64 = 20;
/// Largest page a client may ask for.
pub const MAX_PAGE: u64 = 100;

/// One page of rows plus what a connection needs.
#[derive(Debug)]
pub struct Page<T> {
    /// Rows, in id order.
    pub items: Vec<T>,
    /// Whether rows follow this page.
    pub has_next: bool,
    /// Rows matching the filter, all pages together.
    pub total: u64,
}

/// Arguments of a forward page.
#[derive(Debug, Clone, Default)]
pub struct PageArgs {
    /// Page size (1..=100).
    pub first: Option<i32>,
    /// Cursor of the last row seen.
    pub after: Option<String>,
}

/// Encodes an id as a cursor.
pub fn cursor(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// Decodes a cursor back into an id.
pub fn decode_cursor(c: &str) -> ServiceResult<String> {
    URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ServiceError::bad_input("`after` is not a valid cursor"))
}

/// The page size `args` ask for, checked.
pub fn page_size(args: &PageArgs) -> ServiceResult<u64> {
    match args.first {
        None => Ok(DEFAULT_PAGE),
        Some(n) if n >= 1 && (n as u64) <= MAX_PAGE => Ok(n as u64),
        Some(_) => Err(ServiceError::bad_input(format!(
            "`first` must be between 1 and {MAX_PAGE}"
        ))),
    }
}

/// Runs `select` as a page ordered by `id_col`.
pub async fn page<E, C>(
    conn: &C,
    select: Select<E>,
    id_col: E::Column,
    args: &PageArgs,
) -> ServiceResult<Page<E::Model>>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Sync + Send,
    C: ConnectionTrait,
{
    let first = page_size(args)?;
    let total = select.clone().count(conn).await?;
    let mut q = select.order_by_asc(id_col);
    if let Some(after) = &args.after {
        q = q.filter(id_col.gt(decode_cursor(after)?));
    }
    let mut items = q.limit(first + 1).all(conn).await?;
    let has_next = items.len() as u64 > first;
    items.truncate(first as usize);
    Ok(Page {
        items,
        has_next,
        total,
    })
}
