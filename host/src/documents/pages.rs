//! Pages as images. A page is rendered by the project's converter inside
//! the plugin sandbox on first request (the host never parses a PDF
//! itself), cached in the blob store, and reached through a short-lived
//! signed URL: HMAC-SHA256 over the document, page, width and expiry,
//! made only after the caller was checked against the document's
//! organization, so a browser's `<img>` needs no token and no token is
//! ever put into a URL.

use sea_orm::EntityTrait;

use crate::app::App;
use crate::auth::Role;
use crate::db::entities::{document, document_text, project};
use crate::error::{ServiceError, ServiceResult};
use crate::plugins::converter::ConvertError;
use crate::tenancy::{Access, Scope, find_scoped};

/// Narrowest image, in pixels.
pub const MIN_WIDTH: i32 = 100;
/// Widest image, in pixels.
pub const MAX_WIDTH: i32 = 3000;
/// How long a signed URL works.
pub const URL_TTL_SECS: i64 = 600;

/// A light grey 1 × 1 PNG, shown (stretched) for a page that would not
/// render.
pub const PLACEHOLDER_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x3a, 0x7e, 0x9b,
    0x55, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x78, 0x06, 0x00, 0x00,
    0xe8, 0x00, 0xe7, 0x27, 0xdb, 0x87, 0xfe, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

/// The URL-signing key, derived from the token signing key.
pub fn derive_key(jwt_secret: &[u8]) -> [u8; 32] {
    crate::signing::derive(jwt_secret, "evistream page image URLs v1")
}

/// The hex signature of a page URL.
pub fn sign(key: &[u8; 32], document_id: &str, page: u32, width: u32, expires: i64) -> String {
    crate::signing::sign(key, &message(document_id, page, width, expires))
}

fn message(document_id: &str, page: u32, width: u32, expires: i64) -> String {
    format!("{document_id}|{page}|{width}|{expires}")
}

/// A signed path of page `page` of document `document_id`, `width` pixels
/// wide (VIEWER+): BAD_USER_INPUT for a page the document does not have or
/// a width outside 100–3000, NOT_FOUND for a document the caller cannot see.
pub async fn signed_path(
    app: &App,
    access: &Access,
    document_id: &str,
    page: i32,
    width: i32,
) -> ServiceResult<String> {
    let doc = super::get(app, access, document_id, Role::Viewer).await?;
    let Some(pages) = doc.page_count else {
        return Err(ServiceError::bad_input(
            "the document is not converted yet: it has no pages to show",
        ));
    };
    if !(1..=pages).contains(&page) {
        return Err(ServiceError::bad_input(format!(
            "page {page} is not a page of this document (1 to {pages})"
        )));
    }
    if !(MIN_WIDTH..=MAX_WIDTH).contains(&width) {
        return Err(ServiceError::bad_input(format!(
            "width must be {MIN_WIDTH} to {MAX_WIDTH} pixels, not {width}"
        )));
    }
    let expires = chrono::Utc::now().timestamp() + URL_TTL_SECS;
    let signature = sign(&app.url_key, &doc.id, page as u32, width as u32, expires);
    Ok(format!(
        "/documents/{}/pages/{page}.png?width={width}&expires={expires}&signature={signature}",
        doc.id
    ))
}

/// What a signed URL asks for.
pub struct PageRequest {
    /// The document.
    pub document_id: String,
    /// Page, from 1.
    pub page: u32,
    /// Width in pixels.
    pub width: u32,
    /// Unix time after which the URL no longer works.
    pub expires: i64,
    /// Hex HMAC.
    pub signature: String,
}

/// A page image for a signed request: FORBIDDEN when the signature does
/// not match or has expired (nothing is rendered then). The PNG and
/// whether it is the placeholder of a page that would not render.
pub async fn image(app: &App, r: &PageRequest) -> ServiceResult<(Vec<u8>, bool)> {
    crate::signing::check(
        &app.url_key,
        &message(&r.document_id, r.page, r.width, r.expires),
        &r.signature,
        r.expires,
        chrono::Utc::now().timestamp(),
        &crate::signing::Refusal {
            invalid: "this page link is not valid",
            expired: "this page link has expired; ask the API for a new one",
        },
    )?;
    // The signature was made for this document after a tenancy check.
    let doc = document::Entity::find_by_id(r.document_id.as_str())
        .one(&app.db)
        .await?
        .ok_or(ServiceError::NotFound("document"))?;
    let key = format!(
        "{}page-{}-{}.png",
        super::folder(&doc.organization_id, &doc.id),
        r.page,
        r.width
    );
    let op = app.blobs.operator();
    if let Ok(png) = op.read(&key).await {
        return Ok((png.to_vec(), false));
    }
    match render(app, &doc, r.page, r.width).await {
        Ok(png) => {
            // Cached within the organization's quota; past it, served
            // without being kept (the next request renders it again).
            let size = png.len() as u64;
            match crate::storage::quota::check(app, &doc.organization_id, size).await {
                Ok(()) => {
                    make_room(app, &doc, r.width).await?;
                    op.write(&key, png.clone())
                        .await
                        .map_err(|e| ServiceError::Internal(e.into()))?;
                    crate::storage::quota::record(
                        &app.db,
                        &doc.organization_id,
                        &key,
                        crate::storage::quota::PAGE_IMAGE,
                        size,
                    )
                    .await?;
                }
                Err(ServiceError::QuotaExceeded(why)) => {
                    tracing::info!(document = %doc.id, page = r.page, %why, "page image not cached");
                }
                Err(e) => return Err(e),
            }
            Ok((png, false))
        }
        Err(why) => {
            tracing::warn!(document = %doc.id, page = r.page, error = %why, "page not rendered");
            warn(
                app,
                &doc,
                &format!("page {} could not be rendered: {why}", r.page),
            )
            .await?;
            Ok((PLACEHOLDER_PNG.to_vec(), true))
        }
    }
}

/// Widths a document keeps cached page images at, at most: a viewer uses
/// one or two; a caller asking every width from 100 to 3000 must not fill
/// the blob store.
pub const MAX_CACHED_WIDTHS: usize = 4;

/// Before caching an image at `width`: when the document already keeps
/// [`MAX_CACHED_WIDTHS`] other widths, the images of the width with the
/// fewest pages cached are removed.
async fn make_room(app: &App, doc: &document::Model, width: u32) -> ServiceResult<()> {
    let folder = super::folder(&doc.organization_id, &doc.id);
    let op = app.blobs.operator();
    let Ok(entries) = op.list(&folder).await else {
        return Ok(());
    };
    // width -> its images' keys
    let mut widths: std::collections::BTreeMap<u32, Vec<String>> = Default::default();
    for e in &entries {
        if let Some(w) = cached_width(e.name()) {
            widths
                .entry(w)
                .or_default()
                .push(format!("{folder}{}", e.name()));
        }
    }
    if widths.contains_key(&width) || widths.len() < MAX_CACHED_WIDTHS {
        return Ok(());
    }
    let fewest = widths
        .iter()
        .min_by_key(|(w, keys)| (keys.len(), **w))
        .map(|(_, keys)| keys.clone())
        .unwrap_or_default();
    for key in &fewest {
        op.delete(key)
            .await
            .map_err(|e| ServiceError::Internal(e.into()))?;
    }
    crate::storage::quota::forget(&app.db, &fewest).await
}

/// The width of a cached page image's name (`page-{n}-{width}.png`).
fn cached_width(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("page-")?.strip_suffix(".png")?;
    let (_, width) = rest.split_once('-')?;
    width.parse().ok()
}

/// Renders a page through the project's converter, in the sandbox under the
/// converter's limits.
async fn render(
    app: &App,
    doc: &document::Model,
    page: u32,
    width: u32,
) -> Result<Vec<u8>, String> {
    let scope = Scope::Organization(&doc.organization_id);
    let project = find_scoped::<project::Entity, _>(&app.db, scope, &doc.project_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the project was deleted")?;
    let binding = crate::registry::binding::load(app, &project)
        .await
        .map_err(|e| e.to_string())?;
    let converter = binding.converter(app).await.map_err(|e| e.to_string())?;
    let pdf = app
        .blobs
        .operator()
        .read(&doc.blob_key)
        .await
        .map_err(|e| e.to_string())?
        .to_vec();
    converter
        .render(pdf, page, width)
        .await
        .map_err(|e: ConvertError| format!("{} ({})", e, e.kind()))
}

/// Page warnings a document keeps at most (a hostile converter could fail
/// every page of thousands).
const MAX_PAGE_WARNINGS: usize = 50;

/// Adds `warning` to the document's conversion warnings, once, reading and
/// writing only that column (the text can be large).
async fn warn(app: &App, doc: &document::Model, warning: &str) -> ServiceResult<()> {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};
    let current: Option<crate::db::types::Strings> =
        document_text::Entity::find_by_id(doc.id.as_str())
            .filter(document_text::Column::OrganizationId.eq(doc.organization_id.as_str()))
            .select_only()
            .column(document_text::Column::Warnings)
            .into_tuple()
            .one(&app.db)
            .await?;
    let Some(mut warnings) = current else {
        return Ok(());
    };
    let pages = warnings.0.iter().filter(|w| w.starts_with("page ")).count();
    if pages >= MAX_PAGE_WARNINGS || warnings.0.iter().any(|w| w == warning) {
        return Ok(());
    }
    warnings.0.push(warning.to_owned());
    document_text::Entity::update_many()
        .col_expr(document_text::Column::Warnings, Expr::value(warnings))
        .filter(document_text::Column::DocumentId.eq(doc.id.as_str()))
        .exec(&app.db)
        .await?;
    Ok(())
}
