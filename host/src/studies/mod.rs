//! Studies: the reports (documents) of one trial, grouped. Linking is
//! reversible and audited; a document without a link is its own study,
//! whose id is the document's. Suggestions (shared registry ids, DOI or
//! title) are only offered, never applied.

pub mod registry;

use std::collections::{BTreeMap, HashMap};

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::json;

use crate::app::App;
use crate::audit::{self, AuditRecord};
use crate::auth::Role;
use crate::db::entities::{document, document_text, project, study, study_document};
use crate::db::{new_id, now_ms};
use crate::error::{ServiceError, ServiceResult};
use crate::pagination::{Page, PageArgs};
use crate::tenancy::Access;

/// Longest study name.
const MAX_NAME: usize = 500;

/// Most documents one link call takes.
const MAX_LINK: usize = 100;

/// A study as shown: its reports and the registry ids found in them.
#[derive(Debug, Clone)]
pub struct StudyView {
    /// Study id (a document's own study: the document's id).
    pub id: String,
    /// Name.
    pub name: String,
    /// Whether documents were linked into it (else a document's own).
    pub linked: bool,
    /// Registry ids in its reports' text.
    pub registry_ids: Vec<String>,
    /// Its reports, oldest first.
    pub documents: Vec<document::Model>,
}

/// A suggested link.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    /// Documents that look like reports of one trial.
    pub document_ids: Vec<String>,
    /// Why, in words.
    pub reason: String,
    /// The shared registry id, if that is why.
    pub registry_id: Option<String>,
}

/// The name a document's own study takes: its title, else its file name.
fn own_name(d: &document::Model) -> String {
    d.title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| d.filename.trim_end_matches(".pdf").to_owned())
}

/// Everything of a project's studies, in one read.
struct Layout {
    docs: Vec<document::Model>,
    links: HashMap<String, String>,
    studies: HashMap<String, study::Model>,
}

async fn layout<C: ConnectionTrait>(db: &C, p: &project::Model) -> ServiceResult<Layout> {
    let docs = document::Entity::find()
        .filter(document::Column::OrganizationId.eq(p.organization_id.as_str()))
        .filter(document::Column::ProjectId.eq(p.id.as_str()))
        .order_by_asc(document::Column::CreatedAt)
        .order_by_asc(document::Column::Id)
        .all(db)
        .await?;
    let links = study_document::Entity::find()
        .filter(study_document::Column::OrganizationId.eq(p.organization_id.as_str()))
        .filter(study_document::Column::ProjectId.eq(p.id.as_str()))
        .all(db)
        .await?
        .into_iter()
        .map(|l| (l.document_id, l.study_id))
        .collect();
    let studies = study::Entity::find()
        .filter(study::Column::OrganizationId.eq(p.organization_id.as_str()))
        .filter(study::Column::ProjectId.eq(p.id.as_str()))
        .all(db)
        .await?
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    Ok(Layout {
        docs,
        links,
        studies,
    })
}

impl Layout {
    /// Every study, in order of its oldest report.
    fn views(&self) -> Vec<StudyView> {
        let mut order: Vec<String> = Vec::new();
        let mut views: HashMap<String, StudyView> = HashMap::new();
        for d in &self.docs {
            let (id, name, linked) = match self.links.get(&d.id).and_then(|s| self.studies.get(s)) {
                Some(s) => (s.id.clone(), s.name.clone(), true),
                None => (d.id.clone(), own_name(d), false),
            };
            views
                .entry(id.clone())
                .or_insert_with(|| {
                    order.push(id.clone());
                    StudyView {
                        id,
                        name,
                        linked,
                        registry_ids: Vec::new(),
                        documents: Vec::new(),
                    }
                })
                .documents
                .push(d.clone());
        }
        order
            .into_iter()
            .filter_map(|id| views.remove(&id))
            .collect()
    }
}

/// Document id → its study (id and name), for analysis and exports.
pub async fn of_documents(
    app: &App,
    p: &project::Model,
) -> ServiceResult<HashMap<String, (String, String)>> {
    let l = layout(&app.db, p).await?;
    Ok(l.views()
        .into_iter()
        .flat_map(|v| {
            let (id, name) = (v.id.clone(), v.name.clone());
            v.documents
                .into_iter()
                .map(move |d| (d.id, (id.clone(), name.clone())))
        })
        .collect())
}

/// The converted text of each document, for registry ids and DOIs.
async fn texts(app: &App, docs: &[document::Model]) -> ServiceResult<HashMap<String, String>> {
    let Some(org) = docs.first().map(|d| d.organization_id.clone()) else {
        return Ok(HashMap::new());
    };
    let mut out = HashMap::new();
    for chunk in docs.chunks(200) {
        let rows = document_text::Entity::find()
            .filter(document_text::Column::OrganizationId.eq(org.as_str()))
            .filter(document_text::Column::DocumentId.is_in(chunk.iter().map(|d| d.id.clone())))
            .all(&app.db)
            .await?;
        out.extend(rows.into_iter().map(|t| (t.document_id, t.markdown)));
    }
    Ok(out)
}

/// Registry ids and own DOI per document (CPU work, on the tenant's share).
async fn identifiers(
    app: &App,
    p: &project::Model,
    docs: &[document::Model],
) -> ServiceResult<HashMap<String, (Vec<String>, Option<String>)>> {
    let texts = texts(app, docs).await?;
    app.cpu
        .run(&p.organization_id, move || {
            texts
                .into_iter()
                .map(|(id, t)| (id, (registry::ids(&t), registry::own_doi(&t))))
                .collect()
        })
        .await
}

/// A project's studies (VIEWER+), a page at a time.
pub async fn list(
    app: &App,
    access: &Access,
    project_id: &str,
    page: &PageArgs,
) -> ServiceResult<Page<StudyView>> {
    let p = crate::projects::get(app, access, project_id, Role::Viewer).await?;
    let all = layout(&app.db, &p).await?.views();
    let total = all.len() as u64;
    let first = crate::pagination::page_size(page)? as usize;
    let start = match page
        .after
        .as_deref()
        .map(crate::pagination::decode_cursor)
        .transpose()?
    {
        Some(id) => all
            .iter()
            .position(|s| s.id == id)
            .map(|i| i + 1)
            .ok_or_else(|| ServiceError::bad_input("unknown cursor"))?,
        None => 0,
    };
    let mut items: Vec<StudyView> = all.into_iter().skip(start).take(first).collect();
    let has_next = start + items.len() < total as usize;
    let shown: Vec<document::Model> = items.iter().flat_map(|s| s.documents.clone()).collect();
    let ids = identifiers(app, &p, &shown).await?;
    for s in &mut items {
        for d in &s.documents {
            for r in ids
                .get(&d.id)
                .map(|(r, _)| r.as_slice())
                .unwrap_or_default()
            {
                if !s.registry_ids.contains(r) {
                    s.registry_ids.push(r.clone());
                }
            }
        }
    }
    Ok(Page {
        items,
        has_next,
        total,
    })
}

fn norm_title(t: &str) -> String {
    t.chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect::<String>()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Documents of different studies that share a registry id, a DOI or a
/// title (VIEWER+): offered to a person, never linked here.
pub async fn suggestions(
    app: &App,
    access: &Access,
    project_id: &str,
) -> ServiceResult<Vec<Suggestion>> {
    let p = crate::projects::get(app, access, project_id, Role::Viewer).await?;
    let l = layout(&app.db, &p).await?;
    let study_of: HashMap<String, String> = l
        .views()
        .into_iter()
        .flat_map(|v| {
            let id = v.id.clone();
            v.documents.into_iter().map(move |d| (d.id, id.clone()))
        })
        .collect();
    let ids = identifiers(app, &p, &l.docs).await?;
    // key → documents, in upload order.
    let mut groups: BTreeMap<(u8, String), Vec<String>> = BTreeMap::new();
    for d in &l.docs {
        if let Some((regs, doi)) = ids.get(&d.id) {
            for r in regs {
                groups.entry((0, r.clone())).or_default().push(d.id.clone());
            }
            if let Some(doi) = doi {
                groups
                    .entry((1, doi.clone()))
                    .or_default()
                    .push(d.id.clone());
            }
        }
        if let Some(t) = d.title.as_deref().map(norm_title).filter(|t| t.len() >= 20) {
            groups.entry((2, t)).or_default().push(d.id.clone());
        }
    }
    let mut out: Vec<Suggestion> = Vec::new();
    for ((kind, key), docs) in groups {
        let mut studies: Vec<&String> = docs.iter().filter_map(|d| study_of.get(d)).collect();
        studies.sort();
        studies.dedup();
        if studies.len() < 2 {
            continue;
        }
        let (reason, registry_id) = match kind {
            0 => (
                format!("the same trial registry id {key} appears in each"),
                Some(key),
            ),
            1 => (format!("the same DOI {key} opens each"), None),
            _ => ("the same title".to_owned(), None),
        };
        if out.iter().any(|s| s.document_ids == docs) {
            continue;
        }
        out.push(Suggestion {
            document_ids: docs,
            reason,
            registry_id,
        });
    }
    Ok(out)
}

/// The project's documents `ids`, each once (NOT_FOUND for any other).
async fn project_documents<C: ConnectionTrait>(
    db: &C,
    p: &project::Model,
    ids: &[String],
) -> ServiceResult<Vec<document::Model>> {
    let mut wanted: Vec<&str> = ids.iter().map(String::as_str).collect();
    wanted.sort();
    wanted.dedup();
    let found = document::Entity::find()
        .filter(document::Column::OrganizationId.eq(p.organization_id.as_str()))
        .filter(document::Column::ProjectId.eq(p.id.as_str()))
        .filter(document::Column::Id.is_in(wanted.clone()))
        .all(db)
        .await?;
    if found.len() != wanted.len() {
        return Err(ServiceError::NotFound("document"));
    }
    Ok(found)
}

/// Links documents into one study (REVIEWER+): the oldest study any of
/// them is already in, or a new one; other studies they were in are
/// merged into it (each document can be unlinked again). `name` renames it.
pub async fn link(
    app: &App,
    access: &Access,
    project_id: &str,
    document_ids: &[String],
    name: Option<&str>,
) -> ServiceResult<StudyView> {
    let p = crate::projects::get(app, access, project_id, Role::Reviewer).await?;
    if document_ids.is_empty() || document_ids.len() > MAX_LINK {
        return Err(ServiceError::bad_input(format!(
            "link between 1 and {MAX_LINK} documents"
        )));
    }
    let name = name.map(str::trim);
    if let Some(n) = name
        && (n.is_empty() || n.chars().count() > MAX_NAME)
    {
        return Err(ServiceError::bad_input(format!(
            "a study name has 1 to {MAX_NAME} characters"
        )));
    }
    let txn = crate::db::write_txn(&app.db).await?;
    let docs = project_documents(&txn, &p, document_ids).await?;
    let l = layout(&txn, &p).await?;
    let mut existing: Vec<&study::Model> = docs
        .iter()
        .filter_map(|d| l.links.get(&d.id).and_then(|s| l.studies.get(s)))
        .collect();
    existing.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    existing.dedup_by(|a, b| a.id == b.id);
    let now = now_ms();
    let user = access.principal.user_id().map(str::to_owned);
    let target = match existing.first() {
        Some(s) => {
            let mut am: study::ActiveModel = (*s).clone().into();
            if let Some(n) = name {
                am.name = Set(n.to_owned());
            }
            am.updated_at = Set(now);
            am.update(&txn).await?
        }
        None => {
            let first = docs.iter().min_by_key(|d| (d.created_at, d.id.clone()));
            study::ActiveModel {
                id: Set(new_id()),
                organization_id: Set(p.organization_id.clone()),
                project_id: Set(p.id.clone()),
                name: Set(name
                    .map(str::to_owned)
                    .or_else(|| first.map(own_name))
                    .unwrap_or_default()),
                created_by: Set(user.clone()),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&txn)
            .await?
        }
    };
    // Everything in a merged study comes along, so a link never splits one.
    let merged: Vec<String> = existing.iter().skip(1).map(|s| s.id.clone()).collect();
    let mut members: Vec<String> = docs.iter().map(|d| d.id.clone()).collect();
    members.extend(
        l.links
            .iter()
            .filter(|(_, s)| merged.contains(s))
            .map(|(d, _)| d.clone()),
    );
    members.sort();
    members.dedup();
    study_document::Entity::delete_many()
        .filter(study_document::Column::OrganizationId.eq(p.organization_id.as_str()))
        .filter(study_document::Column::DocumentId.is_in(members.clone()))
        .exec(&txn)
        .await?;
    for d in &members {
        study_document::ActiveModel {
            document_id: Set(d.clone()),
            study_id: Set(target.id.clone()),
            organization_id: Set(p.organization_id.clone()),
            project_id: Set(p.id.clone()),
            linked_by: Set(user.clone()),
            linked_at: Set(now),
        }
        .insert(&txn)
        .await?;
    }
    if !merged.is_empty() {
        study::Entity::delete_many()
            .filter(study::Column::OrganizationId.eq(p.organization_id.as_str()))
            .filter(study::Column::Id.is_in(merged.clone()))
            .exec(&txn)
            .await?;
    }
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(&p.organization_id, "study.link", "study", &target.id).details(json!({
            "documents": document_ids, "merged": merged, "name": target.name,
        })),
    )
    .await?;
    let view = layout(&txn, &p)
        .await?
        .views()
        .into_iter()
        .find(|v| v.id == target.id)
        .ok_or(ServiceError::NotFound("study"))?;
    txn.commit().await?;
    Ok(view)
}

/// Takes a document out of its study (REVIEWER+): it is its own study
/// again (returned); a study left without reports goes.
pub async fn unlink(app: &App, access: &Access, document_id: &str) -> ServiceResult<StudyView> {
    let d = crate::documents::get(app, access, document_id, Role::Reviewer).await?;
    let p = crate::projects::get(app, access, &d.project_id, Role::Reviewer).await?;
    let txn = crate::db::write_txn(&app.db).await?;
    if let Some(study_id) = forget(&txn, &d).await? {
        audit::record(
            &txn,
            Some(&access.principal),
            AuditRecord::new(&d.organization_id, "study.unlink", "study", &study_id)
                .details(json!({ "document": d.id })),
        )
        .await?;
    }
    let view = layout(&txn, &p)
        .await?
        .views()
        .into_iter()
        .find(|v| v.id == d.id)
        .ok_or(ServiceError::NotFound("study"))?;
    txn.commit().await?;
    Ok(view)
}

/// Removes `d`'s link (and its study, if it was the last report); the
/// study it left, if any. Document deletion calls it too.
pub async fn forget<C: ConnectionTrait>(
    db: &C,
    d: &document::Model,
) -> ServiceResult<Option<String>> {
    let Some(link) = study_document::Entity::find_by_id(d.id.as_str())
        .filter(study_document::Column::OrganizationId.eq(d.organization_id.as_str()))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    study_document::Entity::delete_by_id(d.id.as_str())
        .exec(db)
        .await?;
    let left = study_document::Entity::find()
        .filter(study_document::Column::StudyId.eq(link.study_id.as_str()))
        .one(db)
        .await?;
    if left.is_none() {
        study::Entity::delete_by_id(link.study_id.as_str())
            .exec(db)
            .await?;
    }
    Ok(Some(link.study_id))
}

/// Renames a linked study (REVIEWER+).
pub async fn rename(
    app: &App,
    access: &Access,
    study_id: &str,
    name: &str,
) -> ServiceResult<StudyView> {
    let s =
        crate::tenancy::load::<study::Entity, _>(&app.db, access, study_id, Role::Reviewer).await?;
    let p = crate::projects::get(app, access, &s.project_id, Role::Reviewer).await?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ServiceError::bad_input(format!(
            "a study name has 1 to {MAX_NAME} characters"
        )));
    }
    let txn = crate::db::write_txn(&app.db).await?;
    let mut am: study::ActiveModel = s.clone().into();
    am.name = Set(name.to_owned());
    am.updated_at = Set(now_ms());
    am.update(&txn).await?;
    audit::record(
        &txn,
        Some(&access.principal),
        AuditRecord::new(&s.organization_id, "study.rename", "study", &s.id)
            .details(json!({ "from": s.name, "to": name })),
    )
    .await?;
    let view = layout(&txn, &p)
        .await?
        .views()
        .into_iter()
        .find(|v| v.id == s.id)
        .ok_or(ServiceError::NotFound("study"))?;
    txn.commit().await?;
    Ok(view)
}

/// Deletes a project's studies and links (project deletion).
pub async fn delete_project<C: ConnectionTrait>(db: &C, p: &project::Model) -> ServiceResult<()> {
    study_document::Entity::delete_many()
        .filter(study_document::Column::ProjectId.eq(p.id.as_str()))
        .exec(db)
        .await?;
    study::Entity::delete_many()
        .filter(study::Column::ProjectId.eq(p.id.as_str()))
        .exec(db)
        .await?;
    crate::db::entities::analysis_roles::Entity::delete_many()
        .filter(crate::db::entities::analysis_roles::Column::ProjectId.eq(p.id.as_str()))
        .exec(db)
        .await?;
    Ok(())
}
