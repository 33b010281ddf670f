//! Mutation root.

use async_graphql::{Context, ID, InputObject, Json, Object, Upload};

use super::types::{
    ApiKey, AuthPayload, CreateApiKeyPayload, Document, Job, Membership, Organization, Project,
    RegisterPayload, TokenPair, User,
};
use super::{access, app};
use crate::auth::{Role, service as auth};
use crate::error::ServiceError;
use crate::{documents, jobs, organizations, projects};

/// Input of `register`.
#[derive(InputObject)]
pub struct RegisterInput {
    /// Login email (case-insensitive, unique).
    pub email: String,
    /// At least 8 characters.
    pub password: String,
    /// Display name.
    pub name: Option<String>,
}

/// Input of `login`.
#[derive(InputObject)]
pub struct LoginInput {
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
}

/// Input of `createProject`.
#[derive(InputObject)]
pub struct CreateProjectInput {
    /// Owning organization.
    pub organization_id: ID,
    /// Name (1–200 characters).
    pub name: String,
    /// Free text.
    pub description: Option<String>,
}

/// Input of `updateProject`; absent fields stay as they are.
#[derive(InputObject)]
pub struct UpdateProjectInput {
    /// New name.
    pub name: Option<String>,
    /// New description (empty clears it).
    pub description: Option<String>,
}

/// Input of `configureProjectPlugins`; absent fields stay as they are.
#[derive(InputObject)]
pub struct ProjectPluginsInput {
    /// Converter: `id` or `id@version`.
    pub converter: Option<String>,
    /// Extractor: `id` or `id@version`; empty string unbinds.
    pub extractor: Option<String>,
    /// LLM adapter: `id` or `id@version`; empty string unbinds it and its settings.
    pub llm_adapter: Option<String>,
    /// Adapter configuration, e.g. `{"baseUrl": "...", "model": "..."}`.
    pub llm_config: Option<async_graphql::Json<serde_json::Value>>,
    /// Adapter secrets, e.g. `{"apiKey": "..."}`; write-only; `{}` clears.
    pub llm_secrets: Option<async_graphql::Json<serde_json::Value>>,
    /// Hosts granted to the adapter beyond the host of `baseUrl`.
    pub llm_allowed_hosts: Option<Vec<String>>,
}

/// Write operations.
pub struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Creates a user and their personal organization (as OWNER).
    async fn register(
        &self,
        ctx: &Context<'_>,
        input: RegisterInput,
    ) -> async_graphql::Result<RegisterPayload> {
        let r = auth::register(
            app(ctx),
            &input.email,
            &input.password,
            input.name.as_deref(),
        )
        .await?;
        Ok(RegisterPayload {
            access_token: r.tokens.access_token,
            refresh_token: r.tokens.refresh_token,
            user: User(r.user),
            organization: Organization(r.organization),
        })
    }

    /// Logs in; a wrong password and an unknown email give the same error.
    async fn login(
        &self,
        ctx: &Context<'_>,
        input: LoginInput,
    ) -> async_graphql::Result<AuthPayload> {
        let client = ctx.data_opt::<super::guard::ClientAddr>().map(|c| c.0);
        let (t, u) = auth::login(app(ctx), &input.email, &input.password, client).await?;
        Ok(AuthPayload {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
            user: User(u),
        })
    }

    /// Spends a refresh token for a new pair; reuse of a spent token revokes its family.
    async fn refresh(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> async_graphql::Result<TokenPair> {
        let t = auth::refresh(app(ctx), &refresh_token).await?;
        Ok(TokenPair {
            access_token: t.access_token,
            refresh_token: t.refresh_token,
        })
    }

    /// Ends a user's membership (ADMIN+; an OWNER's only by an OWNER, never
    /// the last OWNER's; anyone may leave). True when removed.
    async fn remove_member(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        user_id: ID,
    ) -> async_graphql::Result<bool> {
        let acc = access(ctx).await?;
        organizations::remove_member(app(ctx), acc, &organization_id, &user_id).await?;
        Ok(true)
    }

    /// Signs out: revokes the refresh token's whole family. Access tokens
    /// already issued stay valid until they expire (minutes).
    async fn logout(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> async_graphql::Result<bool> {
        auth::logout(app(ctx), &refresh_token).await?;
        Ok(true)
    }

    /// Adds an existing user to an organization, or changes their role (ADMIN+).
    async fn add_member(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        email: String,
        role: Role,
    ) -> async_graphql::Result<Membership> {
        let acc = access(ctx).await?;
        let a = app(ctx);
        let (m, u) = organizations::add_member(a, acc, &organization_id, &email, role).await?;
        let org = organizations::get(a, acc, &organization_id).await?;
        Ok(Membership {
            row: m,
            organization: org,
            user: Some(u),
        })
    }

    /// Creates an API key (ADMIN+); the secret is in this response only.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        name: String,
        role: Role,
    ) -> async_graphql::Result<CreateApiKeyPayload> {
        let acc = access(ctx).await?;
        let (secret, key) =
            organizations::create_api_key(app(ctx), acc, &organization_id, &name, role).await?;
        Ok(CreateApiKeyPayload {
            secret,
            api_key: ApiKey(key),
        })
    }

    /// Revokes an API key (ADMIN+).
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ApiKey> {
        let acc = access(ctx).await?;
        Ok(ApiKey(
            organizations::revoke_api_key(app(ctx), acc, &id).await?,
        ))
    }

    /// Creates a project (ADMIN+).
    async fn create_project(
        &self,
        ctx: &Context<'_>,
        input: CreateProjectInput,
    ) -> async_graphql::Result<Project> {
        let acc = access(ctx).await?;
        let p = projects::create(
            app(ctx),
            acc,
            &input.organization_id,
            &input.name,
            input.description.as_deref(),
        )
        .await?;
        Ok(Project(p))
    }

    /// Updates a project (ADMIN+).
    async fn update_project(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateProjectInput,
    ) -> async_graphql::Result<Project> {
        let acc = access(ctx).await?;
        let p = projects::update(
            app(ctx),
            acc,
            &id,
            input.name.as_deref(),
            input.description.as_deref(),
        )
        .await?;
        Ok(Project(p))
    }

    /// Deletes a project and its content (ADMIN+). True when deleted.
    async fn delete_project(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let acc = access(ctx).await?;
        projects::delete(app(ctx), acc, &id).await?;
        Ok(true)
    }

    /// Uploads a PDF into a project (REVIEWER+) by the GraphQL multipart
    /// request spec and queues its conversion. The same bytes uploaded again
    /// into the project return the existing document.
    async fn upload_document(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        file: Upload,
    ) -> async_graphql::Result<Document> {
        let acc = access(ctx).await?;
        let value = file
            .value(ctx)
            .map_err(|e| ServiceError::bad_input(format!("the upload could not be read: {e}")))?;
        let up = documents::upload(
            app(ctx),
            acc,
            &project_id,
            &value.filename,
            tokio::fs::File::from_std(value.content),
        )
        .await?;
        Ok(Document(up.document, !up.created))
    }

    /// Deletes a document, its text and its PDF (REVIEWER+). True when deleted.
    async fn delete_document(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let acc = access(ctx).await?;
        documents::delete(app(ctx), acc, &id).await?;
        Ok(true)
    }

    /// Installs a WebAssembly component into an organization (ADMIN+). The
    /// manifest (TOML or JSON) declares id, version, kind, licence and
    /// capabilities; the component must implement the kind's world.
    async fn install_plugin(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        manifest: String,
        component: Upload,
    ) -> async_graphql::Result<super::plugins::Plugin> {
        let acc = access(ctx).await?;
        let value = component
            .value(ctx)
            .map_err(|e| ServiceError::bad_input(format!("the upload could not be read: {e}")))?;
        let info = crate::registry::install(
            app(ctx),
            acc,
            &organization_id,
            &manifest,
            tokio::fs::File::from_std(value.content),
        )
        .await?;
        Ok(super::plugins::Plugin(info))
    }

    /// Removes an installed plugin (ADMIN+); refused while a project uses it.
    async fn uninstall_plugin(
        &self,
        ctx: &Context<'_>,
        organization_id: ID,
        id: String,
        version: String,
    ) -> async_graphql::Result<bool> {
        let acc = access(ctx).await?;
        crate::registry::uninstall(app(ctx), acc, &organization_id, &id, &version).await?;
        Ok(true)
    }

    /// Binds the project's plugins and their settings (ADMIN+).
    async fn configure_project_plugins(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        input: ProjectPluginsInput,
    ) -> async_graphql::Result<super::plugins::ProjectPlugins> {
        let acc = access(ctx).await?;
        let b = crate::registry::binding::configure(
            app(ctx),
            acc,
            &project_id,
            crate::registry::binding::BindingInput {
                converter: input.converter,
                extractor: input.extractor,
                llm_adapter: input.llm_adapter,
                llm_config: input.llm_config.map(|j| j.0),
                llm_secrets: input.llm_secrets.map(|j| j.0),
                llm_allowed_hosts: input.llm_allowed_hosts,
            },
        )
        .await?;
        Ok(super::plugins::ProjectPlugins(b))
    }

    /// Sends a tiny completion through the project's LLM adapter (ADMIN+),
    /// to check its configuration, secrets and network access.
    async fn check_llm_connection(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
    ) -> async_graphql::Result<super::plugins::LlmCheck> {
        let acc = access(ctx).await?;
        Ok(crate::llm::check(app(ctx), acc, &project_id).await?.into())
    }

    /// Creates a form and its first version, compiled and awaiting review (REVIEWER+).
    async fn create_form(
        &self,
        ctx: &Context<'_>,
        input: super::forms::CreateFormInput,
    ) -> async_graphql::Result<super::types::Form> {
        let acc = access(ctx).await?;
        let fields: Vec<crate::forms::Field> = input.fields.into_iter().map(Into::into).collect();
        let (f, _) = crate::forms::create(
            app(ctx),
            acc,
            &input.project_id,
            &input.name,
            input.description.as_deref(),
            &fields,
        )
        .await?;
        Ok(super::types::Form(f))
    }

    /// Changes a form's fields: a new version, compiled and awaiting review (REVIEWER+).
    async fn update_form(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: super::forms::UpdateFormInput,
    ) -> async_graphql::Result<super::types::Form> {
        let acc = access(ctx).await?;
        let fields: Vec<crate::forms::Field> = input.fields.into_iter().map(Into::into).collect();
        let (f, _) = crate::forms::update(
            app(ctx),
            acc,
            &id,
            input.name.as_deref(),
            input.description.as_deref(),
            &fields,
        )
        .await?;
        Ok(super::types::Form(f))
    }

    /// Approves a version awaiting review: it becomes ACTIVE, the previous
    /// active version SUPERSEDED (REVIEWER+).
    async fn approve_form_version(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<super::forms::FormVersion> {
        let acc = access(ctx).await?;
        Ok(super::forms::FormVersion(
            crate::forms::approve(app(ctx), acc, &id).await?,
        ))
    }

    /// Makes a new version of the same fields whose program follows the
    /// reviewer's feedback (REVIEWER+).
    async fn regenerate_form_version(
        &self,
        ctx: &Context<'_>,
        id: ID,
        feedback: String,
    ) -> async_graphql::Result<super::forms::FormVersion> {
        let acc = access(ctx).await?;
        Ok(super::forms::FormVersion(
            crate::forms::regenerate(app(ctx), acc, &id, &feedback).await?,
        ))
    }

    /// Runs an ACTIVE form version over documents (REVIEWER+): a parent job
    /// with one unit per document; follow it with `jobUpdated`.
    async fn start_extraction(
        &self,
        ctx: &Context<'_>,
        input: super::extraction::StartExtractionInput,
    ) -> async_graphql::Result<Job> {
        let acc = access(ctx).await?;
        let ids: Option<Vec<String>> = input
            .document_ids
            .map(|v| v.into_iter().map(|i| i.0).collect());
        Ok(Job(crate::extraction::start(
            app(ctx),
            acc,
            &input.project_id,
            &input.form_version_id,
            ids.as_deref(),
        )
        .await?))
    }

    /// Imports reference values for evaluation (REVIEWER+): `[{"documentId":
    /// …, "values": {"sample_size": 120, "arms[0].name": "placebo"}}]`.
    async fn import_ground_truth(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        form_version_id: ID,
        records: async_graphql::Json<serde_json::Value>,
    ) -> async_graphql::Result<super::extraction::ImportGroundTruthPayload> {
        let acc = access(ctx).await?;
        let n = crate::evaluation::import(app(ctx), acc, &project_id, &form_version_id, &records.0)
            .await?;
        Ok(super::extraction::ImportGroundTruthPayload { imported: n as u64 })
    }

    /// Exports the latest results (VIEWER+); `url` answers GET with the same
    /// Bearer token, `downloadUrl` for a few minutes with none.
    async fn export_results(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        form_version_id: ID,
        format: crate::export::ExportFormat,
        #[graphql(
            default,
            desc = "FINAL: reviewed values where a review decided, else the extractor's; EXTRACTED (default): the extractor's."
        )]
        values: crate::export::ExportValues,
    ) -> async_graphql::Result<super::extraction::ExportPayload> {
        let acc = access(ctx).await?;
        let e = crate::export::create(app(ctx), acc, &project_id, &form_version_id, format, values)
            .await?;
        let base = ctx
            .data_opt::<super::http::PublicBase>()
            .map(|b| b.0.clone())
            .unwrap_or_default();
        let key = &app(ctx).url_key;
        Ok(super::extraction::ExportPayload {
            url: format!("{base}/exports/{}", e.id),
            codebook_url: format!("{base}/exports/{}/codebook.csv", e.id),
            download_url: format!(
                "{base}/exports/{}?{}",
                e.id,
                crate::export::signed_query(key, &e.id, false)
            ),
            codebook_download_url: format!(
                "{base}/exports/{}/codebook.csv?{}",
                e.id,
                crate::export::signed_query(key, &e.id, true)
            ),
            id: ID(e.id),
        })
    }

    /// Links documents of a project into one study (REVIEWER+): the oldest
    /// study any of them is in (others merge into it), else a new one;
    /// `name` names it. Reversible with `unlinkDocument`; audited.
    async fn link_documents(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        document_ids: Vec<ID>,
        name: Option<String>,
    ) -> async_graphql::Result<super::analysis::Study> {
        let acc = access(ctx).await?;
        let ids: Vec<String> = document_ids.into_iter().map(|i| i.0).collect();
        Ok(
            crate::studies::link(app(ctx), acc, &project_id, &ids, name.as_deref())
                .await?
                .into(),
        )
    }

    /// Takes a document out of its study (REVIEWER+); returns the
    /// document's own study. Audited.
    async fn unlink_document(
        &self,
        ctx: &Context<'_>,
        document_id: ID,
    ) -> async_graphql::Result<super::analysis::Study> {
        let acc = access(ctx).await?;
        Ok(crate::studies::unlink(app(ctx), acc, &document_id)
            .await?
            .into())
    }

    /// Renames a linked study (REVIEWER+). Audited.
    async fn rename_study(
        &self,
        ctx: &Context<'_>,
        study_id: ID,
        name: String,
    ) -> async_graphql::Result<super::analysis::Study> {
        let acc = access(ctx).await?;
        Ok(crate::studies::rename(app(ctx), acc, &study_id, &name)
            .await?
            .into())
    }

    /// Maps a form version's fields onto analysis roles (REVIEWER+):
    /// `roles` is role → field path (`outcomes[].intervention_mean`), a
    /// constant level for the CiLevel roles, or null to drop a role, over
    /// the form's own mapping by field names. A field of the wrong type,
    /// an unknown role or field, or a level outside (0, 1) is
    /// BAD_USER_INPUT.
    async fn configure_analysis(
        &self,
        ctx: &Context<'_>,
        form_version_id: ID,
        roles: async_graphql::Json<serde_json::Value>,
    ) -> async_graphql::Result<super::analysis::AnalysisRoles> {
        let acc = access(ctx).await?;
        let (v, roles) =
            crate::analysis::configure(app(ctx), acc, &form_version_id, &roles.0).await?;
        Ok(super::analysis::AnalysisRoles {
            form_version_id: ID(v.id),
            roles: async_graphql::Json(roles.to_json()),
        })
    }

    /// Sets how the project's documents are reviewed (ADMIN+).
    async fn configure_review(
        &self,
        ctx: &Context<'_>,
        project_id: ID,
        input: super::review::ReviewSettingsInput,
    ) -> async_graphql::Result<super::review::ReviewSettings> {
        let acc = access(ctx).await?;
        let s = crate::review::configure(
            app(ctx),
            acc,
            &project_id,
            input.mode,
            input.reviewers_per_document,
        )
        .await?;
        Ok(super::review::ReviewSettings {
            mode: s.mode,
            reviewers_per_document: s.reviewers_per_document,
        })
    }

    /// A reviewer's verdict on one value (REVIEWER+, SINGLE mode); the value as it now stands.
    async fn verify_value(
        &self,
        ctx: &Context<'_>,
        document_id: ID,
        form_version_id: ID,
        input: super::review::VerifyValueInput,
    ) -> async_graphql::Result<super::review::ReviewValue> {
        let acc = access(ctx).await?;
        let v = crate::review::verify(
            app(ctx),
            acc,
            &document_id,
            &form_version_id,
            crate::review::VerifyInput {
                path: input.path,
                verdict: input.verdict,
                value: input.value.map(|j| j.0),
                quote: input.quote,
                note: input.note,
            },
        )
        .await?;
        let doc = crate::documents::get(app(ctx), acc, &document_id, Role::Viewer).await?;
        Ok(super::review::ReviewValue::alone(
            v,
            super::layout::DocumentRef::of(&doc),
        ))
    }

    /// DUAL: records part or all of the caller's own extraction of a
    /// document (REVIEWER+). `values` maps paths as in results
    /// (`{"sample_size": 120, "arms[0].name": "placebo"}`; null: not
    /// reported); `submit: true` ends the caller's extraction, after which
    /// it cannot change. The review as the caller now sees it.
    async fn submit_reviewer_values(
        &self,
        ctx: &Context<'_>,
        document_id: ID,
        form_version_id: ID,
        values: Json<serde_json::Value>,
        submit: Option<bool>,
    ) -> async_graphql::Result<super::review::Review> {
        let acc = access(ctx).await?;
        Ok(super::review::Review(
            crate::review::dual::submit_values(
                app(ctx),
                acc,
                &document_id,
                &form_version_id,
                &values.0,
                submit.unwrap_or(false),
            )
            .await?,
        ))
    }

    /// DUAL: the final value of a DISPUTED path, with the reason
    /// (ADMIN and OWNER, or a REVIEWER who did not extract the document).
    /// `value` null or absent: the paper does not report it.
    async fn resolve_value(
        &self,
        ctx: &Context<'_>,
        document_id: ID,
        form_version_id: ID,
        path: String,
        value: Option<Json<serde_json::Value>>,
        note: String,
    ) -> async_graphql::Result<super::review::ReviewValue> {
        let acc = access(ctx).await?;
        let v = crate::review::dual::resolve(
            app(ctx),
            acc,
            &document_id,
            &form_version_id,
            &path,
            value.map(|j| j.0),
            &note,
        )
        .await?;
        let doc = crate::documents::get(app(ctx), acc, &document_id, Role::Viewer).await?;
        Ok(super::review::ReviewValue::alone(
            v,
            super::layout::DocumentRef::of(&doc),
        ))
    }

    /// Completes a review (REVIEWER+): refused while a required field is
    /// unreviewed (SINGLE), or extractions are missing or a value is
    /// disputed (DUAL). A complete review is locked until reopened.
    async fn complete_review(
        &self,
        ctx: &Context<'_>,
        document_id: ID,
        form_version_id: ID,
    ) -> async_graphql::Result<super::review::ReviewState> {
        let acc = access(ctx).await?;
        Ok(super::review::ReviewState(
            crate::review::complete(app(ctx), acc, &document_id, &form_version_id).await?,
        ))
    }

    /// Reopens a complete review, saying why (REVIEWER+).
    async fn reopen_review(
        &self,
        ctx: &Context<'_>,
        document_id: ID,
        form_version_id: ID,
        note: String,
    ) -> async_graphql::Result<super::review::ReviewState> {
        let acc = access(ctx).await?;
        Ok(super::review::ReviewState(
            crate::review::reopen(app(ctx), acc, &document_id, &form_version_id, &note).await?,
        ))
    }

    /// Re-queues the failed units of a job (or a failed job) (REVIEWER+).
    async fn retry_job(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Job> {
        let acc = access(ctx).await?;
        Ok(Job(jobs::service::retry(app(ctx), acc, &id).await?))
    }

    /// Requests cancellation of a job (REVIEWER+).
    async fn cancel_job(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Job> {
        let acc = access(ctx).await?;
        Ok(Job(jobs::service::cancel(app(ctx), acc, &id).await?))
    }
}
