//! GraphQL types of page layout: page sizes and boxes on pages, and the
//! per-request memo that loads each document's layout once however many
//! values of it a query shows.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{Context, SimpleObject};
use page_layout::Layout;
use tokio::sync::Mutex;

use super::app;
use crate::db::entities::document;

/// A document as a value's evidence names it.
#[derive(Debug, Clone)]
pub struct DocumentRef {
    organization_id: Arc<str>,
    id: Arc<str>,
}

impl DocumentRef {
    /// The document `d`.
    pub fn of(d: &document::Model) -> Self {
        Self::new(&d.organization_id, &d.id)
    }

    /// Document `id` of organization `organization_id`.
    pub fn new(organization_id: &str, id: &str) -> Self {
        Self {
            organization_id: organization_id.into(),
            id: id.into(),
        }
    }
}

/// A page's size in PDF points.
#[derive(SimpleObject)]
pub struct PageSize {
    /// 1-based page number.
    pub number: i32,
    /// Width in points.
    pub width: f64,
    /// Height in points.
    pub height: f64,
}

impl From<&page_layout::PageSize> for PageSize {
    fn from(p: &page_layout::PageSize) -> Self {
        Self {
            number: p.number as i32,
            width: f64::from(p.width),
            height: f64::from(p.height),
        }
    }
}

/// A rectangle on a page, in fractions of the page's width and height
/// (0..1, origin top left): draw it over a page image of any size.
#[derive(SimpleObject)]
pub struct PageBox {
    /// 1-based page number.
    pub page: i32,
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
}

impl PageBox {
    /// About what one box takes in a JSON response.
    pub const JSON_BYTES: usize = 80;
}

impl From<page_layout::Rect> for PageBox {
    fn from(r: page_layout::Rect) -> Self {
        // Four decimals: a tenth of a point on a letter page.
        let round = |v: f32| (f64::from(v) * 10_000.0).round() / 10_000.0;
        Self {
            page: r.page as i32,
            x: round(r.x),
            y: round(r.y),
            width: round(r.width),
            height: round(r.height),
        }
    }
}

/// A table the converter recovered, as cells. A table continued on the
/// next page is one table listing both pages.
#[derive(SimpleObject, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Table {
    /// The pages it is on, in order.
    pub pages: Vec<i32>,
    /// Its caption ("Table 2 Outcomes at 12 weeks"), when it has one.
    pub caption: Option<String>,
    /// Rows from the top; each row's column spans add up to the table's
    /// number of columns.
    pub rows: Vec<TableRow>,
}

/// One row of a table.
#[derive(SimpleObject, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableRow {
    /// Cells from the left.
    pub cells: Vec<TableCell>,
}

/// One cell of a table row.
#[derive(SimpleObject, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableCell {
    /// The cell's text ("" when empty).
    pub text: String,
    /// First code point of the cell in the document's `text` (null when
    /// the cell is empty).
    pub start: Option<i32>,
    /// One past its last code point (null when empty).
    pub end: Option<i32>,
    /// Rows the cell covers.
    pub row_span: i32,
    /// Columns the cell covers.
    pub col_span: i32,
    /// Whether it is a column heading.
    pub header: bool,
}

/// About what a layout's tables take in a JSON response: every cell's
/// text and fields, every row and table's frame.
pub fn tables_bytes(layout: &Layout) -> usize {
    layout
        .tables
        .iter()
        .map(|t| {
            64 + t.caption.map_or(0, |(a, b)| (b - a) as usize)
                + t.rows
                    .iter()
                    .map(|r| {
                        16 + r
                            .cells
                            .iter()
                            .map(|c| 90 + c.span.map_or(0, |(a, b)| b.saturating_sub(a) as usize))
                            .sum::<usize>()
                    })
                    .sum::<usize>()
        })
        .sum()
}

/// A layout's tables with their text taken from `markdown`.
pub fn tables(layout: &Layout, markdown: &str) -> Vec<Table> {
    // Byte offset of every code point, and of the end.
    let at: Vec<usize> = markdown
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(markdown.len()))
        .collect();
    let slice = |(a, b): (u32, u32)| -> String {
        match (at.get(a as usize), at.get(b as usize)) {
            (Some(&x), Some(&y)) if x <= y => markdown[x..y].to_string(),
            _ => String::new(),
        }
    };
    layout
        .tables
        .iter()
        .map(|t| Table {
            pages: t.pages.iter().map(|&p| p as i32).collect(),
            caption: t.caption.map(slice),
            rows: t
                .rows
                .iter()
                .map(|r| TableRow {
                    cells: r
                        .cells
                        .iter()
                        .map(|c| TableCell {
                            text: c.span.map(slice).unwrap_or_default(),
                            start: c.span.map(|s| s.0 as i32),
                            end: c.span.map(|s| s.1 as i32),
                            row_span: c.row_span as i32,
                            col_span: c.col_span as i32,
                            header: c.header,
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

/// Layouts loaded during one request, by document id.
#[derive(Default)]
pub struct LayoutMemo(Mutex<HashMap<Arc<str>, Option<Arc<Layout>>>>);

/// The layout of `doc` (None without one), loaded once per request.
pub async fn of_document(
    ctx: &Context<'_>,
    doc: &DocumentRef,
) -> Result<Option<Arc<Layout>>, crate::error::ServiceError> {
    let load = || crate::documents::layout::of_document(app(ctx), &doc.organization_id, &doc.id);
    let Some(memo) = ctx.data_opt::<LayoutMemo>() else {
        return load().await;
    };
    // Held across the load: concurrent resolvers of one document wait for
    // the first one's read instead of repeating it.
    let mut map = memo.0.lock().await;
    if let Some(l) = map.get(&doc.id) {
        return Ok(l.clone());
    }
    let l = load().await?;
    map.insert(doc.id.clone(), l.clone());
    Ok(l)
}
