//! Where a document's text lies on its pages. A 0.2 converter gives the
//! layout with the text; it is kept as one JSON blob per conversion (a new
//! key each time, so a reader never sees a layout of another text), read
//! back through a small process-wide cache, and turned into boxes by
//! [`page_layout::Layout::boxes`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use page_layout::{Layout, Rect};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};

use crate::app::App;
use crate::db::entities::document_text;
use crate::db::new_id;
use crate::error::{ServiceError, ServiceResult};

/// Layouts kept in memory (a results page touches up to 100 documents).
const CACHED: usize = 128;

/// Layouts read so far, by blob key (a key is written once, so an entry
/// never goes stale).
static CACHE: Mutex<Option<HashMap<String, Arc<Layout>>>> = Mutex::new(None);

/// Writes a conversion's layout; returns its key.
pub async fn write(
    app: &App,
    organization_id: &str,
    document_id: &str,
    layout: &Layout,
) -> ServiceResult<String> {
    let key = format!(
        "{}layout-{}.json",
        super::folder(organization_id, document_id),
        new_id()
    );
    let bytes = serde_json::to_vec(layout).map_err(|e| ServiceError::Internal(e.into()))?;
    app.blobs
        .operator()
        .write(&key, bytes)
        .await
        .map_err(|e| ServiceError::Internal(e.into()))?;
    Ok(key)
}

/// The layout at `key`.
pub async fn read(app: &App, key: &str) -> ServiceResult<Arc<Layout>> {
    if let Some(l) = cached(key) {
        return Ok(l);
    }
    let bytes = app
        .blobs
        .operator()
        .read(key)
        .await
        .map_err(|e| ServiceError::Internal(e.into()))?
        .to_vec();
    let layout: Layout = tokio::task::spawn_blocking(move || serde_json::from_slice(&bytes))
        .await
        .map_err(|e| ServiceError::Internal(e.into()))?
        .map_err(|e| ServiceError::Internal(anyhow::anyhow!("layout {key}: {e}")))?;
    let layout = Arc::new(layout);
    if let Ok(mut guard) = CACHE.lock() {
        let map = guard.get_or_insert_with(HashMap::new);
        if map.len() >= CACHED {
            map.clear();
        }
        map.insert(key.to_owned(), layout.clone());
    }
    Ok(layout)
}

fn cached(key: &str) -> Option<Arc<Layout>> {
    CACHE.lock().ok()?.as_ref()?.get(key).cloned()
}

/// The layout of a document of `organization_id` (None: not converted, or
/// converted without a layout). The caller has checked the document is the
/// caller's.
pub async fn of_document(
    app: &App,
    organization_id: &str,
    document_id: &str,
) -> ServiceResult<Option<Arc<Layout>>> {
    let key: Option<Option<String>> = document_text::Entity::find_by_id(document_id)
        .filter(document_text::Column::OrganizationId.eq(organization_id))
        .select_only()
        .column(document_text::Column::LayoutKey)
        .into_tuple()
        .one(&app.db)
        .await?;
    match key.flatten() {
        Some(k) => Ok(Some(read(app, &k).await?)),
        None => Ok(None),
    }
}

/// The boxes of the text's code points `start..end` (BAD_USER_INPUT when
/// the span is not within a text of `chars` code points; empty without a
/// layout).
pub fn boxes(
    layout: Option<&Layout>,
    chars: u32,
    start: i32,
    end: i32,
) -> ServiceResult<Vec<Rect>> {
    if start < 0 || end < start || end as u32 > chars {
        return Err(ServiceError::bad_input(format!(
            "start and end must satisfy 0 ≤ start ≤ end ≤ {chars} (the text's length)"
        )));
    }
    Ok(layout.map_or_else(Vec::new, |l| l.boxes(start as u32, end as u32)))
}
