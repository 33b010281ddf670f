//! GraphQL output types. Each wraps a row and resolves relations through
//! the services with the request's access.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, Object, SimpleObject};

use super::{access, app};
use crate::auth::Role;
use crate::db::entities::{
    api_key, audit_entry, document, form, job, membership, organization, project, user,
};
use crate::documents::{self, DocumentStatus};
use crate::jobs::JobState;
use crate::organizations;
use crate::pagination::{Page, PageArgs, cursor};
use crate::projects;

/// Milliseconds since the epoch as RFC 3339.
pub fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Extra fields of every connection.
#[derive(SimpleObject)]
pub struct ConnectionTotals {
    /// Items across all pages.
    pub total_count: u64,
}

/// A Relay connection of `N` with `totalCount`.
pub type Conn<N> = Connection<String, N, ConnectionTotals>;

/// Turns a service page into a connection.
pub fn connection<M, N>(
    page: Page<M>,
    id: impl Fn(&M) -> &str,
    mut wrap: impl FnMut(M) -> N,
) -> Conn<N>
where
    N: async_graphql::OutputType,
{
    let mut c = Connection::with_additional_fields(
        false,
        page.has_next,
        ConnectionTotals {
            total_count: page.total,
        },
    );
    c.edges.extend(page.items.into_iter().map(|m| {
        let cur = cursor(id(&m));
        Edge::new(cur, wrap(m))
    }));
    c
}

/// A person with an account.
pub struct User(pub user::Model);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    async fn created_at(&self) -> String {
        timestamp(self.0.created_at)
    }
    /// Organizations the user belongs to, with roles. Only visible to the user themself.
    async fn memberships(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Membership>> {
        let acc = access(ctx).await?;
        if acc.principal.user_id() != Some(self.0.id.as_str()) {
            return Ok(Vec::new());
        }
        let rows = organizations::memberships_of(app(ctx), &self.0.id).await?;
        Ok(rows
            .into_iter()
            .map(|(m, o)| Membership {
                row: m,
                organization: o,
                user: Some(self.0.clone()),
            })
            .collect())
    }
}

/// A user's role in an organization.
pub struct Membership {
    /// The membership row.
    pub row: membership::Model,
    /// Its organization.
    pub organization: organization::Model,
    /// Its user, when loaded.
    pub user: Option<user::Model>,
}

#[Object]
impl Membership {
    async fn role(&self) -> Role {
        self.row.role
    }
    async fn organization(&self) -> Organization {
        Organization(self.organization.clone())
    }
    async fn user(&self) -> Option<User> {
        self.user.clone().map(User)
    }
    async fn created_at(&self) -> String {
        timestamp(self.row.created_at)
    }
}

/// A tenant.
pub struct Organization(pub organization::Model);

#[Object]
impl Organization {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// True for the organization made at registration.
    async fn personal(&self) -> bool {
        self.0.personal
    }
    /// Its members and their roles (VIEWER+), oldest first.
    #[graphql(complexity = "100 + child_complexity")]
    async fn members(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Membership>> {
        let acc = access(ctx).await?;
        Ok(organizations::members(app(ctx), acc, &self.0.id)
            .await?
            .into_iter()
            .map(|(row, user)| Membership {
                row,
                organization: self.0.clone(),
                user: Some(user),
            })
            .collect())
    }
    /// Its API keys, revoked ones included (ADMIN+), newest first. The
    /// secrets are never shown again.
    #[graphql(complexity = "100 + child_complexity")]
    async fn api_keys(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ApiKey>> {
        let acc = access(ctx).await?;
        Ok(organizations::api_keys(app(ctx), acc, &self.0.id)
            .await?
            .into_iter()
            .map(ApiKey)
            .collect())
    }
    async fn created_at(&self) -> String {
        timestamp(self.0.created_at)
    }
}

/// What register returns.
#[derive(SimpleObject)]
pub struct RegisterPayload {
    /// Short-lived JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Single-use token for `refresh`.
    pub refresh_token: String,
    /// The new user.
    pub user: User,
    /// Their personal organization (role OWNER).
    pub organization: Organization,
}

/// What login returns.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Short-lived JWT.
    pub access_token: String,
    /// Single-use refresh token.
    pub refresh_token: String,
    /// The user.
    pub user: User,
}

/// A rotated token pair.
#[derive(SimpleObject)]
pub struct TokenPair {
    /// Short-lived JWT.
    pub access_token: String,
    /// The next refresh token (the one given is spent).
    pub refresh_token: String,
}

/// An API key (the secret is never shown again).
pub struct ApiKey(pub api_key::Model);

#[Object]
impl ApiKey {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn role(&self) -> Role {
        self.0.role
    }
    /// First characters of the secret, to recognise it.
    async fn prefix(&self) -> &str {
        &self.0.prefix
    }
    async fn created_at(&self) -> String {
        timestamp(self.0.created_at)
    }
    async fn last_used_at(&self) -> Option<String> {
        self.0.last_used_at.map(timestamp)
    }
    async fn revoked(&self) -> bool {
        self.0.revoked_at.is_some()
    }
}

/// A new API key with its secret, shown once.
#[derive(SimpleObject)]
pub struct CreateApiKeyPayload {
    /// Use as `Authorization: Bearer <secret>`.
    pub secret: String,
    /// The key.
    pub api_key: ApiKey,
}

/// A project.
pub struct Project(pub project::Model);

#[Object]
impl Project {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn organization_id(&self) -> ID {
        ID(self.0.organization_id.clone())
    }
    async fn created_at(&self) -> String {
        timestamp(self.0.created_at)
    }
    async fn updated_at(&self) -> String {
        timestamp(self.0.updated_at)
    }
    /// Documents of the project.
    #[graphql(complexity = "first.unwrap_or(20).max(1) as usize * child_complexity")]
    async fn documents(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Document>> {
        let page = projects::documents(app(ctx), &self.0, &PageArgs { first, after }).await?;
        Ok(connection(page, |d| &d.id, Document::from))
    }
    /// LLM calls of the project, with tokens and cost.
    #[graphql(complexity = 100)]
    async fn llm_usage(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<super::plugins::LlmUsage> {
        Ok(
            crate::llm::gateway::usage(app(ctx), &self.0.organization_id, &self.0.id, None)
                .await?
                .into(),
        )
    }
    /// The project's plugins (converter, extractor, LLM adapter).
    async fn plugins(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<super::plugins::ProjectPlugins> {
        Ok(super::plugins::ProjectPlugins(
            crate::registry::binding::load(app(ctx), &self.0).await?,
        ))
    }
    /// How the project's documents are reviewed (SINGLE until configured).
    async fn review_settings(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<super::review::ReviewSettings> {
        let (mode, n) =
            crate::review::settings(&app(ctx).db, &self.0.organization_id, &self.0.id).await?;
        Ok(super::review::ReviewSettings {
            mode,
            reviewers_per_document: n,
        })
    }
    /// Extraction runs of the project, newest first.
    #[graphql(complexity = "first.unwrap_or(10).clamp(1, 50) as usize * child_complexity")]
    async fn extraction_runs(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many (1–50, default 10).")] first: Option<i32>,
    ) -> async_graphql::Result<Vec<super::extraction::ExtractionRun>> {
        let n = first.unwrap_or(10).clamp(1, 50) as u64;
        Ok(crate::extraction::runs(app(ctx), &self.0, n)
            .await?
            .into_iter()
            .map(|(run, job)| super::extraction::ExtractionRun { run, job })
            .collect())
    }
    /// Extraction forms of the project.
    async fn forms(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Form>> {
        Ok(projects::forms(app(ctx), &self.0)
            .await?
            .into_iter()
            .map(Form)
            .collect())
    }
}

/// An uploaded PDF; the flag is set in `uploadDocument`'s answer when
/// the bytes were already in the project.
pub struct Document(pub document::Model, pub bool);

impl From<document::Model> for Document {
    fn from(m: document::Model) -> Self {
        Self(m, false)
    }
}

/// One page's range in the document's text (code points; start inclusive,
/// end exclusive).
#[derive(SimpleObject)]
pub struct PageRange {
    /// 1-based page number.
    pub number: u32,
    /// First character of the page.
    pub start: u32,
    /// One past its last character.
    pub end: u32,
}

#[Object]
impl Document {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// True in `uploadDocument`'s answer when the same bytes were already
    /// in the project: that existing document is returned, under the
    /// filename it was first uploaded with, and nothing new is stored or
    /// converted. False everywhere else.
    async fn already_uploaded(&self) -> bool {
        self.1
    }
    async fn filename(&self) -> &str {
        &self.0.filename
    }
    /// Hex sha256 of the PDF's bytes.
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }
    /// Size of the PDF in bytes.
    async fn size_bytes(&self) -> i64 {
        self.0.size_bytes
    }
    async fn status(&self) -> DocumentStatus {
        self.0.status
    }
    /// Why conversion failed.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// Pages, once converted.
    async fn page_count(&self) -> Option<i32> {
        self.0.page_count
    }
    /// Title from the PDF, once converted.
    async fn title(&self) -> Option<&str> {
        self.0.title.as_deref()
    }
    /// The converted markdown (null until COMPLETED). Offsets elsewhere count
    /// code points into this text. Priced high: its size grows with the paper.
    #[graphql(complexity = 1000)]
    async fn text(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let Some(t) = super::request::text(ctx, &self.0).await? else {
            return Ok(None);
        };
        // JSON escapes make it a little longer; the budget takes the stored size.
        super::request::charge(ctx, t.markdown.len())?;
        Ok(Some(t.markdown.clone()))
    }
    /// Each page's size in PDF points (empty until COMPLETED, and for a
    /// converter that gives no layout).
    #[graphql(complexity = 100)]
    async fn layout(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<super::layout::PageSize>> {
        let doc = super::layout::DocumentRef::of(&self.0);
        let Some(l) = super::layout::of_document(ctx, &doc).await? else {
            return Ok(Vec::new());
        };
        // `{"number":…,"width":…,"height":…}`
        super::request::charge(ctx, l.pages.len() * 48)?;
        Ok(l.pages.iter().map(super::layout::PageSize::from).collect())
    }
    /// Where the code points `start..end` of `text` lie on the pages: one
    /// rectangle per line the span crosses (per cell in a table row), in
    /// fractions of the page (0..1, origin top left). Empty for text off
    /// the pages (markdown marks) or without a layout; BAD_USER_INPUT
    /// unless 0 ≤ start ≤ end ≤ the text's length.
    #[graphql(complexity = 100)]
    async fn boxes(
        &self,
        ctx: &Context<'_>,
        start: i32,
        end: i32,
    ) -> async_graphql::Result<Vec<super::layout::PageBox>> {
        let text = super::request::text(ctx, &self.0).await?;
        let chars = text
            .as_ref()
            .map_or(0, |t| t.markdown.chars().count() as u32);
        // The text row names its layout: no second lookup.
        let layout = match text.as_ref().and_then(|t| t.layout_key.as_deref()) {
            Some(key) => Some(crate::documents::layout::read(app(ctx), key).await?),
            None => None,
        };
        let boxes = crate::documents::layout::boxes(layout.as_deref(), chars, start, end)?;
        super::request::charge(ctx, boxes.len() * super::layout::PageBox::JSON_BYTES)?;
        Ok(boxes
            .into_iter()
            .map(super::layout::PageBox::from)
            .collect())
    }
    /// The tables the converter recovered, as cells located in `text`
    /// (empty until COMPLETED, and for a converter that gives no layout).
    #[graphql(complexity = 200)]
    async fn tables(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<super::layout::Table>> {
        let Some(text) = super::request::text(ctx, &self.0).await? else {
            return Ok(Vec::new());
        };
        let Some(key) = &text.layout_key else {
            return Ok(Vec::new());
        };
        let layout = crate::documents::layout::read(app(ctx), key).await?;
        super::request::charge(ctx, super::layout::tables_bytes(&layout))?;
        Ok(super::layout::tables(&layout, &text.markdown))
    }
    /// A short-lived (10 minutes) signed URL of page `page` rendered as a
    /// PNG `width` pixels wide (100–3000; the height follows the page):
    /// load it in `<img>`, no header needed. Rendered by the project's
    /// converter on first request and cached. BAD_USER_INPUT for a page
    /// the document does not have or a width out of range.
    async fn page_image_url(
        &self,
        ctx: &Context<'_>,
        page: i32,
        width: i32,
    ) -> async_graphql::Result<String> {
        let acc = super::access(ctx).await?;
        let path =
            crate::documents::pages::signed_path(app(ctx), acc, &self.0.id, page, width).await?;
        let base = ctx
            .data_opt::<super::http::PublicBase>()
            .map(|b| b.0.as_str())
            .unwrap_or("");
        Ok(format!("{base}{path}"))
    }
    /// Each page's range in `text` (empty until COMPLETED).
    #[graphql(complexity = 100)]
    async fn pages(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PageRange>> {
        let pages = super::request::text(ctx, &self.0)
            .await?
            .map(|t| documents::pages(&t))
            .unwrap_or_default();
        // `{"number":…,"start":…,"end":…}`
        super::request::charge(ctx, pages.len() * 48)?;
        Ok(pages
            .into_iter()
            .map(|p| PageRange {
                number: p.number,
                start: p.start,
                end: p.end,
            })
            .collect())
    }
    /// Conversion warnings (e.g. pages without a text layer).
    async fn warnings(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        let warnings = super::request::text(ctx, &self.0)
            .await?
            .map(|t| t.warnings.0.clone())
            .unwrap_or_default();
        super::request::charge(ctx, warnings.iter().map(|w| w.len() + 4).sum())?;
        Ok(warnings)
    }
    /// Which converter produced `text`: `id@version#sha256`.
    async fn converter(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(super::request::text(ctx, &self.0).await?.map(|t| {
            crate::extraction::plugin_ref(
                &t.converter_id,
                &t.converter_version,
                &t.converter_sha256,
            )
        }))
    }
    /// Path on this server that answers GET with the original PDF (same Bearer token).
    async fn download_url(&self) -> String {
        format!("/documents/{}/original", self.0.id)
    }
    /// The conversion job.
    async fn job(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Job>> {
        let Some(job_id) = &self.0.job_id else {
            return Ok(None);
        };
        let acc = access(ctx).await?;
        match crate::jobs::service::get(app(ctx), acc, job_id).await {
            Ok(j) => Ok(Some(Job(j))),
            Err(crate::error::ServiceError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
    async fn created_at(&self) -> String {
        timestamp(self.0.created_at)
    }
}

/// An extraction form.
pub struct Form(pub form::Model);

#[Object]
impl Form {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn created_at(&self) -> String {
        timestamp(self.0.created_at)
    }
    async fn project_id(&self) -> ID {
        ID(self.0.project_id.clone())
    }
    /// The newest version.
    async fn latest_version(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<super::forms::FormVersion>> {
        Ok(crate::forms::latest_version(app(ctx), &self.0)
            .await?
            .map(super::forms::FormVersion))
    }
    /// The version extraction runs, if one is approved.
    async fn active_version(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<super::forms::FormVersion>> {
        Ok(crate::forms::versions(app(ctx), &self.0)
            .await?
            .into_iter()
            .find(|v| v.status == crate::forms::FormVersionStatus::Active)
            .map(super::forms::FormVersion))
    }
    /// Every version, oldest first.
    async fn versions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<super::forms::FormVersion>> {
        Ok(crate::forms::versions(app(ctx), &self.0)
            .await?
            .into_iter()
            .map(super::forms::FormVersion)
            .collect())
    }
}

/// A background job.
#[derive(Clone)]
pub struct Job(pub job::Model);

#[Object]
impl Job {
    /// LLM calls made by this job (and its units), with tokens and cost.
    #[graphql(complexity = 100)]
    async fn llm_usage(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<super::plugins::LlmUsage>> {
        access(ctx).await?;
        let Some(project) = &self.0.project_id else {
            return Ok(None);
        };
        let mut ids: Vec<String> = crate::jobs::family::children(&app(ctx).db, &self.0.id)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect();
        ids.push(self.0.id.clone());
        Ok(Some(
            crate::llm::gateway::usage(app(ctx), &self.0.organization_id, project, Some(ids))
                .await?
                .into(),
        ))
    }
    /// Units of a parent job (one per document of an extraction), in order.
    #[graphql(complexity = "20 * child_complexity")]
    async fn children(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Job>> {
        access(ctx).await?;
        Ok(crate::jobs::family::children(&app(ctx).db, &self.0.id)
            .await?
            .into_iter()
            .filter(|c| c.organization_id == self.0.organization_id)
            .map(Job)
            .collect())
    }
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    /// The document a conversion or an extraction unit works on (null
    /// for other jobs).
    async fn document_id(&self) -> Option<ID> {
        #[derive(serde::Deserialize)]
        struct OfDocument {
            document_id: String,
        }
        if self.0.kind != crate::documents::CONVERT_JOB
            && self.0.kind != crate::extraction::UNIT_JOB
        {
            return None;
        }
        serde_json::from_str::<OfDocument>(&self.0.payload)
            .ok()
            .map(|p| ID(p.document_id))
    }

    async fn state(&self) -> JobState {
        self.0.state
    }
    /// 0..1.
    async fn progress(&self) -> f64 {
        self.0.progress
    }
    /// Last error (of the final attempt when FAILED).
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    async fn max_attempts(&self) -> i32 {
        self.0.max_attempts
    }
    /// A RUNNING unit whose worker stopped renewing its lease (it died or
    /// froze): it waits for another worker to claim it, which happens
    /// within `jobs.poll_interval_ms` of a free slot. Its progress is frozen meanwhile.
    async fn orphaned(&self) -> bool {
        crate::jobs::maintenance::is_orphaned(&self.0, crate::db::now_ms())
    }
    /// For a parent job: how many of its units are orphaned now.
    #[graphql(complexity = 20)]
    async fn orphaned_units(&self, ctx: &Context<'_>) -> async_graphql::Result<i32> {
        access(ctx).await?;
        if self.0.parent_id.is_some() || self.0.lease_owner.is_some() {
            return Ok(0);
        }
        let now = crate::db::now_ms();
        Ok(crate::jobs::family::children(&app(ctx).db, &self.0.id)
            .await?
            .iter()
            .filter(|c| crate::jobs::maintenance::is_orphaned(c, now))
            .count() as i32)
    }
    async fn cancel_requested(&self) -> bool {
        self.0.cancel_requested
    }
    async fn project_id(&self) -> Option<ID> {
        self.0.project_id.clone().map(ID)
    }
    async fn parent_id(&self) -> Option<ID> {
        self.0.parent_id.clone().map(ID)
    }
    async fn created_at(&self) -> String {
        timestamp(self.0.created_at)
    }
    async fn updated_at(&self) -> String {
        timestamp(self.0.updated_at)
    }
    async fn finished_at(&self) -> Option<String> {
        self.0.finished_at.map(timestamp)
    }
}

/// One audit log entry.
pub struct AuditEntry(pub audit_entry::Model);

#[Object]
impl AuditEntry {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// Dotted action, e.g. `project.create`.
    async fn action(&self) -> &str {
        &self.0.action
    }
    async fn object_type(&self) -> &str {
        &self.0.object_type
    }
    async fn object_id(&self) -> ID {
        ID(self.0.object_id.clone())
    }
    async fn actor_user_id(&self) -> Option<ID> {
        self.0.actor_user_id.clone().map(ID)
    }
    async fn actor_api_key_id(&self) -> Option<ID> {
        self.0.actor_api_key_id.clone().map(ID)
    }
    async fn details(&self) -> Option<async_graphql::Json<serde_json::Value>> {
        self.0
            .details
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .map(async_graphql::Json)
    }
    async fn created_at(&self) -> String {
        timestamp(self.0.created_at)
    }
}
