//! Exports of the latest results of a form version, as snapshots in the
//! blob store: CSV_WIDE (one row per document, one column per value path),
//! CSV_LONG (one row per value, with status, confidence, evidence,
//! grounding, review state, source, reviewer and provenance), JSON
//! (everything, with the codebook); plus the codebook (field paths, types,
//! descriptions, options, units) as a second CSV. FINAL exports the values
//! as review decided them (the extractor's where no one decided);
//! EXTRACTED the extractor's only. A document the caller may still extract
//! blind (DUAL review) is left out of either. Every CSV is written through
//! [`csv_writer`], which neutralises cells a spreadsheet would run as
//! formulas.

pub mod csv_writer;
pub mod metafor;
pub mod revman;

use std::collections::{HashMap, HashSet};

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use serde_json::{Value, json};

use crate::app::App;
use crate::auth::Role;
use crate::db::entities::export;
use crate::db::{new_id, now_ms};
use crate::error::{ServiceError, ServiceResult};
use crate::extraction::pipeline::{Grounding, StoredEvidence};
use crate::extraction::{self, ResultRow};
use crate::forms::{self, Field, FieldType, fields};
use crate::review::{ReviewView, ValueSource};
use crate::tenancy::Access;
use csv_writer::CsvWriter;

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum ExportFormat {
    /// One row per document.
    CsvWide,
    /// One row per value.
    CsvLong,
    /// Everything, with the codebook, studies, derived values and effect sizes.
    Json,
    /// One row per comparison with metafor `escalc()`'s column names (and
    /// an R script that runs `rma()` per outcome, at `/exports/{id}/analysis.R`).
    MetaforCsv,
    /// RevMan Web's study data import: study information, study arms and
    /// study results, as CSV files in a zip.
    RevmanCsv,
}

impl ExportFormat {
    fn as_str(self) -> &'static str {
        match self {
            Self::CsvWide => "csv_wide",
            Self::CsvLong => "csv_long",
            Self::Json => "json",
            Self::MetaforCsv => "metafor_csv",
            Self::RevmanCsv => "revman_csv",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::RevmanCsv => "zip",
            _ => "csv",
        }
    }
}

/// Which values an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, async_graphql::Enum)]
pub enum ExportValues {
    /// Reviewed values where a review decided, the extractor's otherwise.
    Final,
    /// The extractor's values only.
    #[default]
    Extracted,
}

/// One value as exported.
struct Cell {
    path: String,
    value: Value,
    status: &'static str,
    /// The extractor's confidence (none for a person's value).
    confidence: Option<f64>,
    evidence: Vec<StoredEvidence>,
    grounding: &'static str,
    state: &'static str,
    source: &'static str,
    reviewer: String,
    /// The review decisions behind the value, oldest first (JSON only).
    history: Vec<Value>,
}

/// A document's exported values, with its result's provenance.
struct Doc {
    row: ResultRow,
    cells: Vec<Cell>,
}

fn graphql_name<T: async_graphql::EnumType>(v: T) -> &'static str {
    T::items()
        .iter()
        .find(|i| i.value == v)
        .map_or("", |i| i.name)
}

/// The cells of `row`: its extracted values (with their review state), or
/// for FINAL its reviewed values.
fn cells(row: &ResultRow, review: Option<&ReviewView>, which: ExportValues) -> Vec<Cell> {
    let decided: HashMap<&str, &crate::review::state::ReviewedValue> = review
        .map(|r| r.values.iter().map(|v| (v.path.as_str(), v)).collect())
        .unwrap_or_default();
    let reviewed = |path: &str| review.and_then(|r| decided.get(path).map(|v| (r, *v)));
    let extracted_at: HashMap<&str, &crate::db::entities::extraction_value::Model> =
        row.values.iter().map(|x| (x.path.as_str(), x)).collect();
    match (which, review) {
        (ExportValues::Final, Some(r)) => r
            .values
            .iter()
            .map(|v| {
                let extracted = extracted_at.get(v.path.as_str()).copied();
                let person = v.source != ValueSource::Extractor;
                Cell {
                    path: v.path.clone(),
                    value: v.value.clone(),
                    status: match (person, extracted) {
                        (false, Some(x)) => x.status.as_str(),
                        _ if v.value.is_null() => "NOT_REPORTED",
                        _ => "FOUND",
                    },
                    confidence: extracted.filter(|_| !person).map(|x| x.confidence),
                    grounding: match (person, extracted) {
                        (false, Some(x)) => x.grounding.as_str(),
                        _ => v
                            .evidence
                            .first()
                            .map_or("NONE", |e| Grounding::from(e.grounding).as_str()),
                    },
                    evidence: v.evidence.clone(),
                    state: graphql_name(v.state),
                    source: graphql_name(v.source),
                    reviewer: r.reviewer_of(v),
                    history: r.history(v),
                }
            })
            .collect(),
        _ => row
            .values
            .iter()
            .map(|x| Cell {
                path: x.path.clone(),
                value: value_of(&x.value),
                status: x.status.as_str(),
                confidence: Some(x.confidence),
                evidence: x.evidence.0.clone(),
                grounding: x.grounding.as_str(),
                state: reviewed(&x.path).map_or("UNREVIEWED", |(_, v)| graphql_name(v.state)),
                source: "EXTRACTOR",
                reviewer: reviewed(&x.path)
                    .map(|(r, v)| r.reviewer_of(v))
                    .unwrap_or_default(),
                history: reviewed(&x.path)
                    .map(|(r, v)| r.history(v))
                    .unwrap_or_default(),
            })
            .collect(),
    }
}

fn internal(e: impl Into<anyhow::Error>) -> ServiceError {
    ServiceError::Internal(e.into())
}

/// A version's values as an export or the analysis reads them: the
/// documents the caller may see, each with its cells.
pub struct Collected {
    /// The project.
    pub project: crate::db::entities::project::Model,
    /// The form version.
    pub version: crate::db::entities::form_version::Model,
    /// Its fields.
    pub fields: Vec<Field>,
    docs: Vec<Doc>,
    /// Documents left out because the caller may still extract them blind.
    pub withheld: Vec<String>,
}

impl Collected {
    /// The values per report, with each report's study, for the analysis.
    pub fn report_values(
        &self,
        studies: &HashMap<String, (String, String)>,
    ) -> Vec<crate::analysis::comparisons::ReportValues> {
        use crate::analysis::comparisons::{InputCell, Origin, Report, ReportValues, StudyRef};
        self.docs
            .iter()
            .map(|d| {
                let doc = &d.row.document;
                let (id, name) = studies
                    .get(&doc.id)
                    .cloned()
                    .unwrap_or_else(|| (doc.id.clone(), doc.filename.clone()));
                ReportValues {
                    report: Report {
                        id: doc.id.clone(),
                        filename: doc.filename.clone(),
                    },
                    study: StudyRef { id, name },
                    cells: d
                        .cells
                        .iter()
                        .map(|c| InputCell {
                            path: c.path.clone(),
                            value: c.value.clone(),
                            origin: if c.source == "EXTRACTOR" {
                                Origin::Extracted
                            } else {
                                Origin::Reviewed
                            },
                            evidence: c.evidence.clone(),
                        })
                        .collect(),
                }
            })
            .collect()
    }
}

/// The values of a version the caller may export (VIEWER+).
pub async fn collect(
    app: &App,
    access: &Access,
    project_id: &str,
    form_version_id: &str,
    which: ExportValues,
) -> ServiceResult<Collected> {
    let (p, v) =
        extraction::project_version(app, access, project_id, form_version_id, Role::Viewer).await?;
    let form_fields = forms::version_fields(&v)?;
    let rows = extraction::all_results(app, &p.organization_id, &v.id).await?;
    let rules = crate::review::rules_of(app, &v).await?;
    let reviews = crate::review::of_results(app, access, &v, &rules, &rows).await?;
    let withheld: Vec<String> = rows
        .iter()
        .filter(|r| reviews.get(&r.document.id).is_some_and(|v| v.blind))
        .map(|r| r.document.id.clone())
        .collect();
    let hidden: HashSet<String> = withheld.iter().cloned().collect();
    // Building the cells is CPU work proportional to the data.
    let docs = app
        .cpu
        .run(&p.organization_id, move || {
            rows.into_iter()
                .filter(|row| !hidden.contains(row.document.id.as_str()))
                .map(|row| Doc {
                    cells: cells(&row, reviews.get(&row.document.id), which),
                    row,
                })
                .collect::<Vec<Doc>>()
        })
        .await?;
    Ok(Collected {
        project: p,
        version: v,
        fields: form_fields,
        docs,
        withheld,
    })
}

/// Writes an export (VIEWER+) and returns its row; download it at
/// `/exports/{id}` (and `/exports/{id}/codebook.csv`).
pub async fn create(
    app: &App,
    access: &Access,
    project_id: &str,
    form_version_id: &str,
    format: ExportFormat,
    which: ExportValues,
) -> ServiceResult<export::Model> {
    let collected = collect(app, access, project_id, form_version_id, which).await?;
    let analysis = match format {
        ExportFormat::MetaforCsv | ExportFormat::RevmanCsv | ExportFormat::Json => {
            let studies = crate::studies::of_documents(app, &collected.project).await?;
            let comparisons = crate::analysis::comparisons_of(
                app,
                &collected,
                &studies,
                crate::analysis::comparisons::Measures::from(None),
            )
            .await?;
            Some((comparisons, studies))
        }
        _ => None,
    };
    let v = &collected.version;
    let header = json!({
        "project": collected.project.id,
        "formVersion": { "id": v.id, "number": v.number, "programHash": v.program_hash },
    });
    let org = collected.project.organization_id.clone();
    let (p, v) = (collected.project.clone(), collected.version.clone());
    // Writing the file is CPU work proportional to the data.
    let (body, codebook) = app
        .cpu
        .run(&org, move || {
            body(format, which, &collected, analysis.as_ref(), header)
        })
        .await??;
    let size = (body.len() + codebook.len()) as u64;
    let sha = {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(&body);
        h.update([0u8]);
        h.update(&codebook);
        hex::encode(h.finalize())
    };
    // The same bytes exported again while the first snapshot lives: that one.
    if let Some(same) = export::Entity::find()
        .filter(export::Column::ProjectId.eq(p.id.as_str()))
        .filter(export::Column::FormVersionId.eq(v.id.as_str()))
        .filter(export::Column::Format.eq(format.as_str()))
        .filter(export::Column::ContentSha256.eq(sha.as_str()))
        .filter(export::Column::CreatedAt.gt(now_ms() - ttl_ms(app)))
        .one(&app.db)
        .await?
    {
        return Ok(same);
    }
    crate::storage::quota::check(app, &p.organization_id, size).await?;
    let id = new_id();
    let base = format!("orgs/{}/exports/{id}", p.organization_id);
    let key = format!("{base}.{}", format.extension());
    let codebook_key = format!("{base}-codebook.csv");
    let op = app.blobs.operator();
    op.write(&key, body).await.map_err(internal)?;
    op.write(&codebook_key, codebook).await.map_err(internal)?;
    let txn = crate::db::write_txn(&app.db).await?;
    crate::storage::quota::record(
        &txn,
        &p.organization_id,
        &key,
        crate::storage::quota::EXPORT,
        size,
    )
    .await?;
    let row = export::ActiveModel {
        id: Set(id),
        organization_id: Set(p.organization_id.clone()),
        project_id: Set(p.id.clone()),
        form_version_id: Set(v.id.clone()),
        format: Set(format.as_str().into()),
        blob_key: Set(key),
        codebook_key: Set(codebook_key),
        created_by: Set(access.principal.user_id().map(str::to_owned)),
        created_at: Set(now_ms()),
        content_sha256: Set(Some(sha)),
        size_bytes: Set(size as i64),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(row)
}

/// How long a snapshot lives (`limits.export_ttl_hours`), in ms.
fn ttl_ms(app: &App) -> i64 {
    i64::try_from(app.config.limits.export_ttl_hours.max(1))
        .unwrap_or(i64::MAX / 3_600_000)
        .saturating_mul(3_600_000)
}

/// An export still within its lifetime (an expired one is as gone as a
/// removed one).
fn alive(app: &App, e: export::Model) -> ServiceResult<export::Model> {
    if e.created_at + ttl_ms(app) <= now_ms() {
        return Err(ServiceError::NotFound("export"));
    }
    Ok(e)
}

/// Removes the snapshots older than `limits.export_ttl_hours` (rows,
/// blobs, quota records); returns how many went. The leader runs it.
pub async fn prune_expired(app: &App) -> ServiceResult<u64> {
    let old = export::Entity::find()
        .filter(export::Column::CreatedAt.lte(now_ms() - ttl_ms(app)))
        .limit(500)
        .all(&app.db)
        .await?;
    let mut gone = 0;
    for e in old {
        app.blobs.remove(&e.blob_key).await;
        app.blobs.remove(&e.codebook_key).await;
        let txn = crate::db::write_txn(&app.db).await?;
        crate::storage::quota::forget(&txn, std::slice::from_ref(&e.blob_key)).await?;
        gone += export::Entity::delete_by_id(e.id.as_str())
            .exec(&txn)
            .await?
            .rows_affected;
        txn.commit().await?;
    }
    // Exports whose project was deleted (their rows went with it).
    crate::db::entities::derived_blob::Entity::delete_many()
        .filter(crate::db::entities::derived_blob::Column::Kind.eq(crate::storage::quota::EXPORT))
        .filter(crate::db::entities::derived_blob::Column::CreatedAt.lte(now_ms() - ttl_ms(app)))
        .exec(&app.db)
        .await?;
    Ok(gone)
}

/// The comparisons and each document's study, for the analysis formats.
type AnalysisParts = (
    Vec<crate::analysis::comparisons::Comparison>,
    HashMap<String, (String, String)>,
);

/// The export's file in `format` and its codebook CSV.
fn body(
    format: ExportFormat,
    which: ExportValues,
    c: &Collected,
    analysis: Option<&AnalysisParts>,
    mut header: Value,
) -> ServiceResult<(Vec<u8>, Vec<u8>)> {
    let form_fields = &c.fields;
    let docs = &c.docs;
    let codebook = codebook(form_fields);
    let body = match format {
        ExportFormat::CsvWide => wide(form_fields, docs)?,
        ExportFormat::CsvLong => long(docs)?,
        ExportFormat::MetaforCsv => {
            metafor::file(analysis.map(|a| a.0.as_slice()).unwrap_or_default())?
        }
        ExportFormat::RevmanCsv => {
            revman::zip(analysis.map(|a| a.0.as_slice()).unwrap_or_default())?
        }
        ExportFormat::Json => {
            header["codebook"] = codebook
                .iter()
                .map(|c| {
                    json!({
                        "path": c.path, "type": c.kind, "description": c.description,
                        "options": c.options, "multiple": c.multiple, "unit": c.unit,
                        "required": c.required,
                    })
                })
                .collect();
            header["values"] = json!(graphql_name(which));
            header["documents"] = docs.iter().map(document_json).collect();
            if let Some((comparisons, studies)) = analysis {
                header["studies"] = metafor::studies_json(studies);
                header["comparisons"] = comparisons.iter().map(metafor::comparison_json).collect();
                header["pooled"] = crate::analysis::pooled(comparisons)
                    .iter()
                    .map(metafor::pooled_json)
                    .collect();
            }
            // Said, so a blind reviewer's file is not mistaken for all of it.
            header["withheldDocuments"] = json!(c.withheld);
            serde_json::to_vec_pretty(&header).map_err(internal)?
        }
    };
    Ok((body, codebook_csv(&codebook)?))
}

/// The files of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The export itself.
    Body,
    /// Its codebook CSV.
    Codebook,
    /// The R script beside a METAFOR_CSV export (same link as the body).
    Script,
}

/// An export's bytes, content type and file name, for a member (VIEWER+).
pub async fn open(
    app: &App,
    access: &Access,
    id: &str,
    part: Part,
) -> ServiceResult<(Vec<u8>, &'static str, String)> {
    let e = crate::tenancy::load::<export::Entity, _>(&app.db, access, id, Role::Viewer).await?;
    read(app, &alive(app, e)?, part).await
}

/// How long a signed export link works: long enough to click, short
/// enough that a link in a browser's history is soon worthless.
pub const LINK_TTL_SECS: i64 = 300;

/// The message a link to export `id` (or its codebook) signs.
fn link_message(id: &str, codebook: bool, expires: i64) -> String {
    format!("{id}|{}|{expires}", u8::from(codebook))
}

/// Export links have a key of their own, so a page-image signature can
/// never pass for an export link's.
fn link_key(url_key: &[u8; 32]) -> [u8; 32] {
    crate::signing::derive(url_key, "evistream export links v1")
}

/// The query (`expires=…&signature=…`) of a short-lived link to export
/// `id` (or its codebook) that needs no header: for a caller [`create`]
/// already checked, so a browser can follow it as a plain download.
pub fn signed_query(url_key: &[u8; 32], id: &str, codebook: bool) -> String {
    let expires = chrono::Utc::now().timestamp() + LINK_TTL_SECS;
    let signature = crate::signing::sign(&link_key(url_key), &link_message(id, codebook, expires));
    format!("expires={expires}&signature={signature}")
}

/// An export through a signed link: FORBIDDEN when the signature does not
/// match or has expired.
pub async fn open_signed(
    app: &App,
    id: &str,
    part: Part,
    expires: i64,
    signature: &str,
) -> ServiceResult<(Vec<u8>, &'static str, String)> {
    check_link(
        &app.url_key,
        id,
        part == Part::Codebook,
        expires,
        signature,
        chrono::Utc::now().timestamp(),
    )?;
    // The link was signed for this export after a tenancy check.
    let e = export::Entity::find_by_id(id)
        .one(&app.db)
        .await?
        .ok_or(ServiceError::NotFound("export"))?;
    read(app, &alive(app, e)?, part).await
}

/// Whether a link's signature is this export's (and codebook flag's) and
/// unexpired at `now`.
fn check_link(
    url_key: &[u8; 32],
    id: &str,
    codebook: bool,
    expires: i64,
    signature: &str,
    now: i64,
) -> ServiceResult<()> {
    crate::signing::check(
        &link_key(url_key),
        &link_message(id, codebook, expires),
        signature,
        expires,
        now,
        &crate::signing::Refusal {
            invalid: "this download link is not valid",
            expired: "this download link has expired; export again for a new one",
        },
    )
}

async fn read(
    app: &App,
    e: &export::Model,
    part: Part,
) -> ServiceResult<(Vec<u8>, &'static str, String)> {
    let body_name = format!(
        "results-{}-{}.{}",
        e.format,
        e.id,
        match e.format.as_str() {
            "json" => "json",
            "revman_csv" => "zip",
            _ => "csv",
        }
    );
    let (key, ctype, name) = match (part, e.format.as_str()) {
        (Part::Codebook, _) => (
            &e.codebook_key,
            "text/csv; charset=utf-8",
            format!("codebook-{}.csv", e.id),
        ),
        (Part::Script, "metafor_csv") => {
            return Ok((
                metafor::script(&body_name).into_bytes(),
                "text/plain; charset=utf-8",
                format!("analysis-{}.R", e.id),
            ));
        }
        (Part::Script, _) => return Err(ServiceError::NotFound("export script")),
        (Part::Body, "json") => (&e.blob_key, "application/json", body_name),
        (Part::Body, "revman_csv") => (&e.blob_key, "application/zip", body_name),
        (Part::Body, _) => (&e.blob_key, "text/csv; charset=utf-8", body_name),
    };
    let bytes = app
        .blobs
        .operator()
        .read(key)
        .await
        .map_err(internal)?
        .to_vec();
    Ok((bytes, ctype, name))
}

/// One codebook line.
pub struct CodebookEntry {
    /// Template path.
    pub path: String,
    /// Type name.
    pub kind: String,
    /// Description.
    pub description: String,
    /// ENUM options.
    pub options: Vec<String>,
    /// ENUM with several values.
    pub multiple: bool,
    /// Unit.
    pub unit: String,
    /// Required.
    pub required: bool,
}

fn codebook(form: &[Field]) -> Vec<CodebookEntry> {
    fields::by_path(form)
        .into_iter()
        .map(|(path, f)| CodebookEntry {
            path,
            kind: format!("{:?}", f.field_type).to_uppercase(),
            description: f.description.clone().unwrap_or_default(),
            options: f.options.clone(),
            multiple: f.multiple,
            unit: f.unit.clone().unwrap_or_default(),
            required: f.required,
        })
        .collect()
}

fn codebook_csv(entries: &[CodebookEntry]) -> ServiceResult<Vec<u8>> {
    let mut w = CsvWriter::default();
    w.row([
        "path",
        "type",
        "description",
        "options",
        "multiple",
        "unit",
        "required",
    ])?;
    for c in entries {
        w.row([
            c.path.as_str(),
            c.kind.as_str(),
            c.description.as_str(),
            &c.options.join("; "),
            if c.multiple { "true" } else { "false" },
            c.unit.as_str(),
            if c.required { "true" } else { "false" },
        ])?;
    }
    w.finish()
}

/// A value as one CSV cell: strings raw, lists joined with "; ", null empty.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join("; "),
        other => other.to_string(),
    }
}

fn value_of(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or(Value::Null)
}

fn wide(form: &[Field], docs: &[Doc]) -> ServiceResult<Vec<u8>> {
    // Columns: every concrete path seen, in form order (then index order).
    let order: Vec<String> = fields::by_path(form)
        .into_iter()
        .filter(|(_, f)| !matches!(f.field_type, FieldType::Object))
        .map(|(p, _)| p)
        .collect();
    let rank_of: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, o)| (o.as_str(), i))
        .collect();
    let mut seen = HashSet::new();
    let mut columns: Vec<(usize, String)> = Vec::new();
    for d in docs {
        for c in &d.cells {
            if seen.insert(c.path.as_str()) {
                let t = fields::template(&c.path);
                let rank = rank_of.get(t.as_str()).copied().unwrap_or(usize::MAX);
                columns.push((rank, c.path.clone()));
            }
        }
    }
    columns.sort();
    let mut w = CsvWriter::default();
    let mut header = vec!["document_id".to_owned(), "filename".to_owned()];
    header.extend(columns.iter().map(|(_, c)| c.clone()));
    header.extend(["program_hash", "extractor", "converter", "model"].map(String::from));
    w.row(&header)?;
    for d in docs {
        let r = &d.row;
        let at: HashMap<&str, &Cell> = d.cells.iter().map(|c| (c.path.as_str(), c)).collect();
        let mut rec = vec![r.document.id.clone(), r.document.filename.clone()];
        for (_, c) in &columns {
            rec.push(
                at.get(c.as_str())
                    .map(|v| cell(&v.value))
                    .unwrap_or_default(),
            );
        }
        let p = r.provenance();
        rec.extend([p.program_hash, p.extractor, p.converter, p.models.join(",")]);
        w.row(&rec)?;
    }
    w.finish()
}

fn long(docs: &[Doc]) -> ServiceResult<Vec<u8>> {
    let mut w = CsvWriter::default();
    w.row([
        "document_id",
        "filename",
        "path",
        "value",
        "status",
        "confidence",
        "quote",
        "page",
        "start",
        "end",
        "grounding",
        "state",
        "source",
        "reviewer",
        "form_version_id",
        "program_hash",
        "extractor",
        "converter",
        "adapter",
        "model",
    ])?;
    for d in docs {
        let r = &d.row;
        let p = r.provenance();
        let prov = [
            p.form_version_id,
            p.program_hash,
            p.extractor,
            p.converter,
            p.adapter.unwrap_or_default(),
            p.models.join(","),
        ];
        for v in &d.cells {
            let first = v.evidence.first();
            let opt = |x: Option<u32>| x.map(|n| n.to_string()).unwrap_or_default();
            let mut rec = vec![
                r.document.id.clone(),
                r.document.filename.clone(),
                v.path.clone(),
                cell(&v.value),
                v.status.to_owned(),
                v.confidence.map(|c| format!("{c:.3}")).unwrap_or_default(),
                first.map(|e| e.quote.clone()).unwrap_or_default(),
                opt(first.and_then(|e| e.page)),
                opt(first.and_then(|e| e.start)),
                opt(first.and_then(|e| e.end)),
                v.grounding.to_owned(),
                v.state.to_owned(),
                v.source.to_owned(),
                v.reviewer.clone(),
            ];
            rec.extend(prov.iter().cloned());
            w.row(&rec)?;
        }
    }
    w.finish()
}

fn document_json(d: &Doc) -> Value {
    let r = &d.row;
    let p = r.provenance();
    json!({
        "id": r.document.id,
        "filename": r.document.filename,
        "provenance": {
            "formVersionId": p.form_version_id, "programHash": p.program_hash,
            "extractor": p.extractor, "converter": p.converter, "adapter": p.adapter,
            "model": (!p.models.is_empty()).then(|| p.models.join(",")),
        },
        "values": d.cells.iter().map(|v| json!({
            "path": v.path,
            "value": v.value,
            "status": v.status,
            "confidence": v.confidence,
            "grounding": v.grounding,
            "evidence": v.evidence,
            "state": v.state,
            "source": v.source,
            "reviewer": v.reviewer,
            "history": v.history,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod link_tests {
    use super::*;

    fn parts(q: &str) -> (i64, String) {
        let mut expires = 0;
        let mut sig = String::new();
        for kv in q.split('&') {
            match kv.split_once('=') {
                Some(("expires", v)) => expires = v.parse().expect("a number"),
                Some(("signature", v)) => sig = v.to_owned(),
                _ => {}
            }
        }
        (expires, sig)
    }

    #[test]
    fn a_link_works_for_its_export_until_it_expires() {
        let key = [7u8; 32];
        let (expires, sig) = parts(&signed_query(&key, "e1", false));
        let now = chrono::Utc::now().timestamp();
        assert!(expires > now && expires <= now + LINK_TTL_SECS);
        assert!(check_link(&key, "e1", false, expires, &sig, now).is_ok());
        assert!(check_link(&key, "e1", false, expires, &sig, expires).is_ok());
        let expired = check_link(&key, "e1", false, expires, &sig, expires + 1);
        assert!(
            matches!(&expired, Err(ServiceError::Forbidden(m)) if m.contains("expired")),
            "{expired:?}"
        );
        for (k, id, codebook, exp) in [
            ([8u8; 32], "e1", false, expires),
            (key, "e2", false, expires),
            (key, "e1", true, expires),
            (key, "e1", false, expires + 60),
        ] {
            assert!(
                matches!(
                    check_link(&k, id, codebook, exp, &sig, now),
                    Err(ServiceError::Forbidden(_))
                ),
                "{id} {codebook} {exp}"
            );
        }
        assert!(check_link(&key, "e1", false, expires, "not hex", now).is_err());
    }

    #[test]
    fn a_page_image_signature_is_not_an_export_link() {
        let key = [7u8; 32];
        let expires = chrono::Utc::now().timestamp() + 60;
        let page_sig = crate::documents::pages::sign(&key, "e1", 0, 0, expires);
        assert!(check_link(&key, "e1", false, expires, &page_sig, expires - 1).is_err());
    }
}
