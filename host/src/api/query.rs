//! Query root.

use async_graphql::{Context, ID, Object};

use super::types::{AuditEntry, Conn, Document, Job, Organization, Project, User, connection};
use super::{access, app};
use crate::auth::Role;
use crate::db::entities::user;
use crate::error::ServiceError;
use crate::pagination::PageArgs;
use crate::{documents, jobs, organizations, projects};
use sea_orm::EntityTrait;

/// Read operations.
pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// The logged-in user (API keys have no user: FORBIDDEN).
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let acc = access(ctx).await?;
        let id = acc.user_id()?;
        let u = user::Entity::find_by_id(id)
            .one(&app(ctx).db)
            .await
            .map_err(ServiceError::from)?
            .ok_or(ServiceError::NotFound("user"))?;
        Ok(User(u))
    }

    /// An organization the caller belongs to.
    async fn organization(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Organization> {
        let acc = access(ctx).await?;
        Ok(Organization(organizations::get(app(ctx), acc, &id).await?))
    }

    /// Projects of an organization.
    #[graphql(complexity = "first.unwrap_or(20).max(1) as usize * child_complexity")]
    async fn projects(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<Project>> {
        let acc = access(ctx).await?;
        let page =
            projects::list(app(ctx), acc, &organization_id, &PageArgs { first, after }).await?;
        Ok(connection(page, |p| &p.id, Project))
    }

    /// A project.
    async fn project(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Project> {
        let acc = access(ctx).await?;
        Ok(Project(
            projects::get(app(ctx), acc, &id, Role::Viewer).await?,
        ))
    }

    /// A document.
    async fn document(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Document> {
        let acc = access(ctx).await?;
        Ok(Document::from(
            documents::get(app(ctx), acc, &id, Role::Viewer).await?,
        ))
    }

    /// A job.
    async fn job(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Job> {
        let acc = access(ctx).await?;
        Ok(Job(jobs::service::get(app(ctx), acc, &id).await?))
    }

    /// The latest extracted values of each document for a form version.
    #[graphql(complexity = "first.unwrap_or(20).max(1) as usize * child_complexity")]
    async fn results(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        form_version_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<super::extraction::ExtractionResult>> {
        let acc = access(ctx).await?;
        let page = crate::extraction::results(
            app(ctx),
            acc,
            &project_id,
            &form_version_id,
            &PageArgs { first, after },
        )
        .await?;
        // A page that shows its reviews reads them together, not one by one.
        let look = ctx.look_ahead();
        let wants_review = look.field("edges").field("node").field("review").exists()
            || look.field("nodes").field("review").exists();
        let mut reviews = if wants_review {
            let rows: Vec<_> = page
                .items
                .iter()
                .map(|r| (&r.document, r.values.as_slice()))
                .collect();
            crate::review::get_many(app(ctx), acc, &form_version_id, &rows).await?
        } else {
            Default::default()
        };
        Ok(connection(
            page,
            |r| &r.result.id,
            |r| {
                let review = reviews.remove(&r.document.id);
                super::extraction::ExtractionResult(r, review)
            },
        ))
    }

    /// The review of a document against a form version (VIEWER+). In DUAL
    /// mode a person who may still extract the document sees only their
    /// own values until they submit (blind extraction).
    #[graphql(complexity = "1000 + child_complexity")]
    async fn review(
        &self,
        ctx: &Context<'_>,
        document_id: ID,
        form_version_id: ID,
    ) -> async_graphql::Result<super::review::Review> {
        let acc = access(ctx).await?;
        Ok(super::review::Review(
            crate::review::get(app(ctx), acc, &document_id, &form_version_id).await?,
        ))
    }

    /// Review figures of a form version in a project (VIEWER+).
    #[graphql(complexity = "1000 + child_complexity")]
    async fn review_summary(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        form_version_id: ID,
    ) -> async_graphql::Result<super::review::ReviewSummary> {
        let acc = access(ctx).await?;
        Ok(
            crate::review::summary(app(ctx), acc, &project_id, &form_version_id)
                .await?
                .into(),
        )
    }

    /// The methods text on the use of AI in this extraction, written from
    /// the records (VIEWER+).
    #[graphql(complexity = "1000 + child_complexity")]
    async fn disclosure(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        form_version_id: ID,
    ) -> async_graphql::Result<super::review::Disclosure> {
        let acc = access(ctx).await?;
        Ok(super::review::Disclosure {
            markdown: crate::review::disclosure(app(ctx), acc, &project_id, &form_version_id)
                .await?,
        })
    }

    /// The latest results compared with the imported ground truth, typed by field.
    #[graphql(complexity = "1000 + child_complexity")]
    async fn evaluation(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        form_version_id: ID,
        #[graphql(
            default,
            desc = "GROUND_TRUTH (default): the imported reference values; REVIEW: the values people decided in complete reviews."
        )]
        against: crate::evaluation::Reference,
    ) -> async_graphql::Result<super::extraction::Evaluation> {
        let acc = access(ctx).await?;
        Ok(
            crate::evaluation::evaluate(app(ctx), acc, &project_id, &form_version_id, against)
                .await?
                .into(),
        )
    }

    /// A form.
    async fn form(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<super::types::Form> {
        let acc = access(ctx).await?;
        Ok(super::types::Form(
            crate::forms::get(app(ctx), acc, &id, Role::Viewer).await?,
        ))
    }

    /// A form version with its extraction program.
    async fn form_version(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<super::forms::FormVersion> {
        let acc = access(ctx).await?;
        Ok(super::forms::FormVersion(
            crate::forms::get_version(app(ctx), acc, &id, Role::Viewer).await?,
        ))
    }

    /// Built-in plugins and those installed in the caller's organizations
    /// (or in `organizationId` only), optionally of one kind.
    async fn plugins(
        &self,
        ctx: &Context<'_>,
        organization_id: Option<ID>,
        kind: Option<crate::plugins::manifest::PluginKind>,
    ) -> async_graphql::Result<Vec<super::plugins::Plugin>> {
        let acc = access(ctx).await?;
        Ok(crate::registry::list(
            app(ctx),
            acc,
            organization_id.as_ref().map(|o| o.as_str()),
            kind,
        )
        .await?
        .into_iter()
        .map(super::plugins::Plugin)
        .collect())
    }

    /// The organization's audit log, oldest first (ADMIN or OWNER).
    #[graphql(complexity = "first.unwrap_or(20).max(1) as usize * child_complexity")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<AuditEntry>> {
        let acc = access(ctx).await?;
        let page =
            organizations::audit_log(app(ctx), acc, &organization_id, &PageArgs { first, after })
                .await?;
        Ok(connection(page, |e| &e.id, AuditEntry))
    }

    /// A project's studies (VIEWER+): linked ones, and each unlinked
    /// document as its own study, in order of their oldest report.
    #[graphql(complexity = "first.unwrap_or(20).max(1) as usize * child_complexity")]
    async fn studies(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Conn<super::analysis::Study>> {
        let acc = access(ctx).await?;
        let page =
            crate::studies::list(app(ctx), acc, &project_id, &PageArgs { first, after }).await?;
        Ok(connection(page, |s| &s.id, super::analysis::Study::from))
    }

    /// Documents of different studies that share a trial registry id, a
    /// DOI or a title (VIEWER+): suggestions a person accepts with
    /// `linkDocuments`; nothing is linked by itself.
    async fn study_suggestions(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
    ) -> async_graphql::Result<Vec<super::analysis::StudySuggestion>> {
        let acc = access(ctx).await?;
        Ok(crate::studies::suggestions(app(ctx), acc, &project_id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// A form version's analysis roles (VIEWER+): as configured, else as
    /// its field names map.
    async fn analysis_roles(
        &self,
        ctx: &Context<'_>,
        form_version_id: ID,
    ) -> async_graphql::Result<super::analysis::AnalysisRoles> {
        let acc = access(ctx).await?;
        let v = crate::forms::get_version(app(ctx), acc, &form_version_id, Role::Viewer).await?;
        let roles = crate::analysis::roles_of(app(ctx), &v).await?;
        Ok(super::analysis::AnalysisRoles {
            form_version_id: ID(v.id),
            roles: async_graphql::Json(roles.to_json()),
        })
    }

    /// The comparisons of a form version's values, one per (study,
    /// outcome, intervention, comparator), with derived numbers marked and
    /// effect sizes as metafor's escalc gives them, and a pooled preview
    /// per outcome (VIEWER+). `measure`: for its own data type (binary:
    /// RR, OR, RD; continuous: MD, SMD); the other type keeps its default
    /// (RR, MD). `values`: EXTRACTED (default) or FINAL, as in exports.
    #[graphql(complexity = 200)]
    async fn analysis(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        form_version_id: ID,
        values: Option<crate::export::ExportValues>,
        measure: Option<crate::analysis::EffectMeasure>,
    ) -> async_graphql::Result<super::analysis::Analysis> {
        let acc = access(ctx).await?;
        Ok(crate::analysis::analyse(
            app(ctx),
            acc,
            &project_id,
            &form_version_id,
            values.unwrap_or_default(),
            measure,
        )
        .await?
        .into())
    }
}
