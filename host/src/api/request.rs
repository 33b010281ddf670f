//! What one GraphQL request carries besides its credential: the budget of
//! bytes its response may still grow by, and the loader that reads each
//! document's text once, however many fields (or aliases) of it ask.
//!
//! Fields whose size grows with the data (a document's text, tables,
//! boxes, warnings, a result's values) charge the budget with what they are
//! about to build, before building it: a request that asks for more than
//! `limits.max_response_bytes` is refused field by field as it goes, not
//! after its whole response exists in memory. The static complexity limit
//! still prices fields by kind before execution; this prices them by the
//! bytes they hold.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_graphql::Context;
use tokio::sync::Mutex;

use super::app;
use crate::db::entities::{document, document_text};
use crate::error::{ServiceError, ServiceResult};

/// Bytes one response may still take.
pub struct ResponseBudget {
    left: AtomicI64,
    max: usize,
}

impl ResponseBudget {
    /// A budget of `max` bytes.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            left: AtomicI64::new(i64::try_from(max).unwrap_or(i64::MAX)),
            max,
        })
    }
}

/// The budget of this request, shared by the operations of a batch.
#[derive(Clone)]
pub struct BudgetRef(pub Arc<ResponseBudget>);

/// Charges `bytes` to the request's budget before a field builds them;
/// RESPONSE_TOO_LARGE when they do not fit (nothing is charged then). A
/// request without a budget (a subscription event, capped on its own) pays
/// nothing.
pub fn charge(ctx: &Context<'_>, bytes: usize) -> ServiceResult<()> {
    let Some(BudgetRef(b)) = ctx.data_opt::<BudgetRef>() else {
        return Ok(());
    };
    let n = i64::try_from(bytes).unwrap_or(i64::MAX);
    let before = b.left.fetch_sub(n, Ordering::AcqRel);
    if before < n {
        b.left.fetch_add(n, Ordering::AcqRel);
        return Err(ServiceError::ResponseTooLarge(format!(
            "this field would make the response larger than {} bytes; ask for less (fewer fields, fewer aliases, smaller pages)",
            b.max
        )));
    }
    Ok(())
}

/// Converted texts read during one request, by document id.
#[derive(Default)]
pub struct TextMemo(Mutex<HashMap<String, Option<Arc<document_text::Model>>>>);

/// The converted text of `doc` (None until converted), read once per request.
pub async fn text(
    ctx: &Context<'_>,
    doc: &document::Model,
) -> ServiceResult<Option<Arc<document_text::Model>>> {
    let load = || async {
        Ok::<_, ServiceError>(crate::documents::text(app(ctx), doc).await?.map(Arc::new))
    };
    let Some(memo) = ctx.data_opt::<TextMemo>() else {
        return load().await;
    };
    // Held across the read: aliases of one document wait for the first
    // read instead of repeating it (and holding a copy each).
    let mut map = memo.0.lock().await;
    if let Some(t) = map.get(&doc.id) {
        return Ok(t.clone());
    }
    let t = load().await?;
    map.insert(doc.id.clone(), t.clone());
    Ok(t)
}
