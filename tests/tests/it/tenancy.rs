//! Tenant isolation, swept over the whole API, on SQLite and PostgreSQL.
//!
//! User A owns an organization with a project, a (queued) job and an API key;
//! user B owns another organization. For every query, mutation and
//! subscription that takes an id, B (as a user, and through B's own OWNER API
//! key) presenting A's id gets exactly the response a random nonexistent id
//! gets: NOT_FOUND, no data, the same message. Afterwards A's objects are
//! unchanged, and A can still do each of those operations on its own objects
//! (so no probe passes by being broken).
//!
//! The sweep checks itself against the schema: every root field with an
//! argument that is (or contains, through input objects) an `ID` must be in
//! the probe table or listed as not tenant-scoped with a reason, so a new
//! id-taking field without tenancy coverage fails this test.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use apollo_compiler::Schema;
use apollo_compiler::ast::OperationType;
use evistream::jobs::JobRegistry;
use evistream::jobs::queue::{self, NewJob};
use evistream_tests::ws::Subscription;
use evistream_tests::{DbKind, Session, TestDb, TestServer, error_code, fixtures, ok, ops};
use serde_json::{Value, json};

/// Root fields that take an id but are deliberately not tenant-scoped, with
/// the reason. Empty: every id-taking field belongs to an organization.
const NOT_TENANT_SCOPED: &[(&str, &str)] = &[];

/// Probes whose control (A on its own objects) is refused by design, with
/// the code: the control project reviews in SINGLE mode, so the DUAL
/// operations answer BAD_USER_INPUT, which they can only do after finding
/// the document, the form version and the project (a wrong id is NOT_FOUND).
const CONTROL_REFUSED: &[(&str, &str)] = &[
    ("Mutation.submitReviewerValues", "BAD_USER_INPUT"),
    ("Mutation.resolveValue", "BAD_USER_INPUT"),
];

/// What kind of object a probe's id names.
#[derive(Debug, Clone, Copy)]
enum Target {
    Organization,
    Project,
    Job,
    ApiKey,
    Document,
    Form,
    FormVersion,
    FailedJob,
    /// A linked study.
    Study,
}

/// One id-taking root field and how to call it with a given id.
struct Probe {
    /// `Query.project`, `Mutation.cancelJob`, `Subscription.jobUpdated`, …
    field: &'static str,
    /// The operation (acceptance file or `graphql/operations/`) that calls it.
    op: &'static str,
    target: Target,
    vars: fn(&str, &Fixture) -> Value,
}

impl Probe {
    fn root(&self) -> &'static str {
        self.field.split_once('.').unwrap().0
    }
    fn name(&self) -> &'static str {
        self.field.split_once('.').unwrap().1
    }
}

/// Every id-taking root field. Queries first, then mutations, so a read
/// probe never sees the effect of a wrongly allowed write.
const PROBES: &[Probe] = &[
    Probe {
        field: "Query.organization",
        op: "Organization",
        target: Target::Organization,
        vars: |id, _| json!({ "id": id }),
    },
    Probe {
        field: "Query.projects",
        op: "Projects",
        target: Target::Organization,
        vars: |id, _| json!({ "organizationId": id, "first": 10 }),
    },
    Probe {
        field: "Query.project",
        op: "Project",
        target: Target::Project,
        vars: |id, _| json!({ "id": id }),
    },
    Probe {
        field: "Query.job",
        op: "Job",
        target: Target::Job,
        vars: |id, _| json!({ "id": id }),
    },
    Probe {
        field: "Query.auditLog",
        op: "AuditLog",
        target: Target::Organization,
        vars: |id, _| json!({ "organizationId": id, "first": 10 }),
    },
    Probe {
        field: "Subscription.jobUpdated",
        op: "JobUpdated",
        target: Target::Job,
        vars: |id, _| json!({ "id": id }),
    },
    Probe {
        field: "Subscription.reviewUpdated",
        op: "ReviewUpdated",
        target: Target::Project,
        vars: |id, _| json!({ "projectId": id }),
    },
    Probe {
        field: "Query.review",
        op: "Review",
        target: Target::Document,
        vars: |id, fx| json!({ "documentId": id, "formVersionId": fx.active_version }),
    },
    Probe {
        field: "Query.reviewSummary",
        op: "ReviewSummary",
        target: Target::Project,
        vars: |id, fx| json!({ "projectId": id, "formVersionId": fx.active_version }),
    },
    Probe {
        field: "Query.disclosure",
        op: "Disclosure",
        target: Target::Project,
        vars: |id, fx| json!({ "projectId": id, "formVersionId": fx.active_version }),
    },
    Probe {
        field: "Query.document",
        op: "Document",
        target: Target::Document,
        vars: |id, _| json!({ "id": id }),
    },
    Probe {
        field: "Query.form",
        op: "FormDetail",
        target: Target::Form,
        vars: |id, _| json!({ "id": id }),
    },
    Probe {
        field: "Query.formVersion",
        op: "FormVersion",
        target: Target::FormVersion,
        vars: |id, _| json!({ "id": id }),
    },
    Probe {
        field: "Query.results",
        op: "Results",
        target: Target::Project,
        vars: |id, fx| json!({ "projectId": id, "formVersionId": fx.active_version }),
    },
    Probe {
        field: "Query.evaluation",
        op: "Evaluation",
        target: Target::Project,
        vars: |id, fx| json!({ "projectId": id, "formVersionId": fx.active_version }),
    },
    Probe {
        field: "Query.studies",
        op: "Studies",
        target: Target::Project,
        vars: |id, _| json!({ "projectId": id }),
    },
    Probe {
        field: "Query.studySuggestions",
        op: "StudySuggestions",
        target: Target::Project,
        vars: |id, _| json!({ "projectId": id }),
    },
    Probe {
        field: "Query.analysisRoles",
        op: "AnalysisRoles",
        target: Target::FormVersion,
        vars: |id, _| json!({ "formVersionId": id }),
    },
    Probe {
        field: "Query.analysis",
        op: "Analysis",
        target: Target::Project,
        vars: |id, fx| json!({ "projectId": id, "formVersionId": fx.active_version }),
    },
    Probe {
        field: "Query.plugins",
        op: "PluginDetails",
        target: Target::Organization,
        vars: |id, _| json!({ "organizationId": id }),
    },
    Probe {
        field: "Mutation.uploadDocument",
        op: "UploadDocument",
        target: Target::Project,
        vars: |id, _| json!({ "projectId": id }),
    },
    Probe {
        field: "Mutation.addMember",
        op: "AddMember",
        target: Target::Organization,
        vars: |id, fx| json!({ "organizationId": id, "email": fx.outsider_email, "role": "OWNER" }),
    },
    Probe {
        field: "Mutation.removeMember",
        op: "RemoveMember",
        target: Target::Organization,
        vars: |id, fx| json!({ "organizationId": id, "userId": fx.owner }),
    },
    Probe {
        field: "Mutation.createApiKey",
        op: "CreateApiKey",
        target: Target::Organization,
        vars: |id, _| json!({ "organizationId": id, "name": "stolen", "role": "VIEWER" }),
    },
    Probe {
        field: "Mutation.createProject",
        op: "CreateProject",
        target: Target::Organization,
        vars: |id, _| json!({ "organizationId": id, "name": "Intruder", "description": "planted" }),
    },
    Probe {
        field: "Mutation.updateProject",
        op: "UpdateProject",
        target: Target::Project,
        vars: |id, _| json!({ "id": id, "name": "Hijacked", "description": "defaced" }),
    },
    Probe {
        field: "Mutation.cancelJob",
        op: "CancelJob",
        target: Target::Job,
        vars: |id, _| json!({ "id": id }),
    },
    Probe {
        field: "Mutation.createForm",
        op: "CreateForm",
        target: Target::Project,
        vars: |id, _| json!({ "projectId": id, "name": "Planted", "fields": probe_fields() }),
    },
    Probe {
        field: "Mutation.updateForm",
        op: "UpdateForm",
        target: Target::Form,
        vars: |id, _| json!({ "id": id, "name": "Defaced", "fields": probe_fields() }),
    },
    Probe {
        field: "Mutation.approveFormVersion",
        op: "ApproveFormVersion",
        target: Target::FormVersion,
        vars: |id, _| json!({ "id": id }),
    },
    Probe {
        field: "Mutation.regenerateFormVersion",
        op: "RegenerateFormVersion",
        target: Target::FormVersion,
        vars: |id, _| json!({ "id": id, "feedback": "leak" }),
    },
    Probe {
        field: "Mutation.startExtraction",
        op: "StartExtraction",
        target: Target::Project,
        vars: |id, fx| json!({ "projectId": id, "formVersionId": fx.active_version }),
    },
    Probe {
        field: "Mutation.importGroundTruth",
        op: "ImportGroundTruth",
        target: Target::Project,
        vars: |id, fx| json!({ "projectId": id, "formVersionId": fx.active_version, "records": [] }),
    },
    Probe {
        field: "Mutation.exportResults",
        op: "ExportResults",
        target: Target::Project,
        vars: |id, fx| json!({ "projectId": id, "formVersionId": fx.active_version, "format": "CSV_LONG" }),
    },
    Probe {
        field: "Mutation.retryJob",
        op: "RetryJob",
        target: Target::FailedJob,
        vars: |id, _| json!({ "id": id }),
    },
    Probe {
        field: "Mutation.installPlugin",
        op: "InstallPlugin",
        target: Target::Organization,
        vars: |id, fx| json!({ "organizationId": id, "manifest": probe_manifest(&fx.plugin_version) }),
    },
    Probe {
        field: "Mutation.configureProjectPlugins",
        op: "ConfigureProjectPlugins",
        target: Target::Project,
        vars: |id, _| json!({ "projectId": id, "converter": "pdf-text" }),
    },
    Probe {
        field: "Mutation.checkLlmConnection",
        op: "CheckLlmConnection",
        target: Target::Project,
        vars: |id, _| json!({ "projectId": id }),
    },
    Probe {
        field: "Mutation.uninstallPlugin",
        op: "UninstallPlugin",
        target: Target::Organization,
        vars: |id, fx| json!({ "organizationId": id, "id": "probe-conv", "version": fx.plugin_version }),
    },
    Probe {
        field: "Mutation.revokeApiKey",
        op: "RevokeApiKey",
        target: Target::ApiKey,
        vars: |id, _| json!({ "id": id }),
    },
    Probe {
        field: "Mutation.configureReview",
        op: "ConfigureReview",
        target: Target::Project,
        vars: |id, _| json!({ "projectId": id, "mode": "SINGLE" }),
    },
    Probe {
        field: "Mutation.verifyValue",
        op: "VerifyValue",
        target: Target::Document,
        vars: |id, fx| {
            json!({ "documentId": id, "formVersionId": fx.active_version,
                    "path": "sample_size", "verdict": "REJECT", "note": "probe" })
        },
    },
    Probe {
        field: "Mutation.submitReviewerValues",
        op: "SubmitReviewerValues",
        target: Target::Document,
        vars: |id, fx| {
            json!({ "documentId": id, "formVersionId": fx.active_version,
                    "values": { "sample_size": 1 }, "submit": true })
        },
    },
    Probe {
        field: "Mutation.resolveValue",
        op: "ResolveValue",
        target: Target::Document,
        vars: |id, fx| {
            json!({ "documentId": id, "formVersionId": fx.active_version,
                    "path": "sample_size", "value": 1, "note": "probe" })
        },
    },
    Probe {
        field: "Mutation.completeReview",
        op: "CompleteReview",
        target: Target::Document,
        vars: |id, fx| json!({ "documentId": id, "formVersionId": fx.active_version }),
    },
    Probe {
        field: "Mutation.reopenReview",
        op: "ReopenReview",
        target: Target::Document,
        vars: |id, fx| json!({ "documentId": id, "formVersionId": fx.active_version, "note": "probe" }),
    },
    Probe {
        field: "Mutation.configureAnalysis",
        op: "ConfigureAnalysis",
        target: Target::FormVersion,
        vars: |id, _| json!({ "formVersionId": id, "roles": {} }),
    },
    Probe {
        field: "Mutation.linkDocuments",
        op: "LinkDocuments",
        target: Target::Project,
        vars: |id, fx| json!({ "projectId": id, "documentIds": [fx.document] }),
    },
    // Before unlinkDocument and deleteDocument, which end the study.
    Probe {
        field: "Mutation.renameStudy",
        op: "RenameStudy",
        target: Target::Study,
        vars: |id, _| json!({ "studyId": id, "name": "renamed" }),
    },
    Probe {
        field: "Mutation.unlinkDocument",
        op: "UnlinkDocument",
        target: Target::Document,
        vars: |id, _| json!({ "documentId": id }),
    },
    Probe {
        field: "Mutation.deleteDocument",
        op: "DeleteDocument",
        target: Target::Document,
        vars: |id, _| json!({ "id": id }),
    },
    Probe {
        field: "Mutation.deleteProject",
        op: "DeleteProject",
        target: Target::Project,
        vars: |id, _| json!({ "id": id }),
    },
];

/// A's objects, as ids.
struct Fixture {
    org: String,
    project: String,
    job: String,
    api_key: String,
    document: String,
    /// A registered user (B) that a wrongly allowed addMember would add.
    outsider_email: String,
    /// A's user id (the OWNER a wrongly allowed removeMember would remove).
    owner: String,
    /// Version of the `probe-conv` plugin the install/uninstall probes name.
    plugin_version: String,
    form: String,
    /// A version awaiting review.
    form_version: String,
    /// An ACTIVE version of another form of the project.
    active_version: String,
    /// A FAILED job.
    failed_job: String,
    /// A study the document is linked into.
    study: String,
}

/// An approved form version of `project`.
async fn active_version(srv: &TestServer, s: &Session, project: &str) -> String {
    let (_, v) = new_form(srv, s, project).await;
    let r = srv
        .op(Some(&s.token), "ApproveFormVersion", json!({ "id": v }))
        .await;
    ok(&r, "approveFormVersion");
    v
}

/// A job that failed.
async fn failed_job(srv: &TestServer, org: &str, project: &str) -> String {
    use evistream::db::entities::job;
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};
    let id = queued_job(srv, org, project).await;
    let row = job::Entity::find_by_id(id.as_str())
        .one(&srv.node.app.db)
        .await
        .unwrap()
        .unwrap();
    let mut am: job::ActiveModel = row.into();
    am.state = Set(evistream::jobs::JobState::Failed);
    am.error = Set(Some("it broke".into()));
    am.update(&srv.node.app.db).await.unwrap();
    id
}

fn probe_fields() -> Value {
    json!([{ "name": "sample_size", "type": "INTEGER" }])
}

/// A form of `project`: (form id, its first version's id).
async fn new_form(srv: &TestServer, s: &Session, project: &str) -> (String, String) {
    let r = srv
        .op(
            Some(&s.token),
            "CreateForm",
            json!({ "projectId": project, "name": "Form", "fields": probe_fields() }),
        )
        .await;
    let f = ok(&r, "createForm");
    (
        f["id"].as_str().unwrap().to_owned(),
        f["latestVersion"]["id"].as_str().unwrap().to_owned(),
    )
}

fn probe_manifest(version: &str) -> String {
    format!(
        "id = \"probe-conv\"\nversion = \"{version}\"\nkind = \"pdf-converter\"\nwit = \"0.1.0\"\nlicense = \"MIT\"\n"
    )
}

fn echo_adapter_manifest() -> &'static str {
    "id = \"probe-llm\"\nversion = \"1.0.0\"\nkind = \"llm-adapter\"\nwit = \"0.1.0\"\nlicense = \"MIT\"\n\
     [capabilities]\noutbound_hosts = [\"127.0.0.1\"]\n"
}

/// A's project gets an LLM adapter that reaches a local server, so that
/// `checkLlmConnection` succeeds for A.
async fn bind_llm(srv: &TestServer, a: &Session, project: &str, port: u16) {
    let r = srv
        .install_plugin(
            &a.token,
            &a.org_id,
            echo_adapter_manifest(),
            fixtures::wasm("hostile_adapter"),
        )
        .await;
    ok(&r, "installPlugin");
    let r = srv
        .op(
            Some(&a.token),
            "GrantLlmHosts",
            json!({
                "projectId": project, "llmAdapter": "probe-llm",
                "llmConfig": { "url": format!("http://127.0.0.1:{port}/") },
                "llmAllowedHosts": ["127.0.0.1"],
            }),
        )
        .await;
    ok(&r, "configureProjectPlugins");
}

/// Links `document` into a study of its own; the study's id.
async fn linked_study(srv: &TestServer, s: &Session, project: &str, document: &str) -> String {
    let r = srv
        .op(
            Some(&s.token),
            "LinkDocuments",
            json!({ "projectId": project, "documentIds": [document], "name": "Trial" }),
        )
        .await;
    ok(&r, "linkDocuments")["id"].as_str().unwrap().to_owned()
}

async fn ok_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route("/", axum::routing::post(|| async { "OK" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

impl Fixture {
    fn id(&self, t: Target) -> &str {
        match t {
            Target::Organization => &self.org,
            Target::Project => &self.project,
            Target::Job => &self.job,
            Target::ApiKey => &self.api_key,
            Target::Document => &self.document,
            Target::Form => &self.form,
            Target::FormVersion => &self.form_version,
            Target::FailedJob => &self.failed_job,
            Target::Study => &self.study,
        }
    }
}

/// `Root.field` of every root field with an argument whose type is, or
/// contains through input objects, an `ID`.
fn id_taking_fields(schema: &Schema) -> BTreeSet<String> {
    fn carries_id(schema: &Schema, ty: &str, seen: &mut HashSet<String>) -> bool {
        if ty == "ID" {
            return true;
        }
        if !seen.insert(ty.to_owned()) {
            return false;
        }
        schema.get_input_object(ty).is_some_and(|io| {
            io.fields
                .values()
                .any(|f| carries_id(schema, f.ty.inner_named_type().as_str(), seen))
        })
    }
    let mut out = BTreeSet::new();
    for op in [
        OperationType::Query,
        OperationType::Mutation,
        OperationType::Subscription,
    ] {
        let Some(root) = schema.root_operation(op) else {
            continue;
        };
        let obj = schema.get_object(root.as_str()).expect("root type");
        for (name, field) in &obj.fields {
            let takes_id = field.arguments.iter().any(|a| {
                carries_id(
                    schema,
                    a.ty.inner_named_type().as_str(),
                    &mut HashSet::new(),
                )
            });
            if takes_id {
                out.insert(format!("{root}.{name}"));
            }
        }
    }
    out
}

/// Runs `probe` with `id` as `token`: the HTTP response, or for a
/// subscription its first message (and checks the stream then ends or goes on).
async fn run(srv: &TestServer, token: &str, probe: &Probe, id: &str, fx: &Fixture) -> Value {
    let vars = (probe.vars)(id, fx);
    if probe.root() == "Subscription" {
        let q = ops::operation(probe.op);
        let mut sub = Subscription::start(&srv.ws_url(), Some(token), &q, vars)
            .await
            .expect("subscription started");
        let first = if probe.op == "ReviewUpdated" {
            // Reviews change only when someone decides: the caller decides
            // on the fixture's document (refused unless it is the caller's),
            // again until the subscription, set up meanwhile, reports it.
            let decide = json!({ "documentId": fx.document, "formVersionId": fx.active_version,
                                 "path": "sample_size", "verdict": "REJECT" });
            let mut got = None;
            for _ in 0..20 {
                srv.op(Some(token), "VerifyValue", decide.clone()).await;
                if let Ok(m) = sub.next(Duration::from_millis(500)).await {
                    got = m;
                    break;
                }
            }
            got.expect("a subscription message before complete")
        } else {
            sub.next(Duration::from_secs(10))
                .await
                .expect("a subscription message")
                .expect("a message before complete")
        };
        if first.get("errors").is_some() {
            // A refused subscription ends right after its error.
            let after = sub.next(Duration::from_secs(10)).await.expect("complete");
            assert!(
                after.is_none(),
                "{}: more after the error: {after:?}",
                probe.field
            );
        }
        first
    } else if probe.op == "InstallPlugin" {
        let org = vars["organizationId"].as_str().expect("organizationId");
        let manifest = vars["manifest"].as_str().expect("manifest");
        srv.install_plugin(token, org, manifest, fixtures::wasm("hostile_converter"))
            .await
    } else if probe.op == "UploadDocument" {
        // Uploads travel by the multipart spec, not as JSON variables.
        let project = vars["projectId"].as_str().expect("projectId");
        srv.upload(Some(token), project, "probe.pdf", probe_pdf())
            .await
    } else {
        srv.op(Some(token), probe.op, vars).await
    }
}

/// A small PDF (its conversion may fail; the tests here only need the row).
fn probe_pdf() -> Vec<u8> {
    format!("%PDF-1.4\n% probe {}\n%%EOF\n", uuid::Uuid::new_v4()).into_bytes()
}

async fn uploaded_document(srv: &TestServer, s: &Session, project: &str) -> String {
    let r = srv
        .upload(Some(&s.token), project, "a.pdf", probe_pdf())
        .await;
    ok(&r, "uploadDocument")["id"].as_str().unwrap().to_owned()
}

async fn create_key(srv: &TestServer, s: &Session, name: &str, role: &str) -> (String, String) {
    let r = srv
        .op(
            Some(&s.token),
            "CreateApiKey",
            json!({ "organizationId": s.org_id, "name": name, "role": role }),
        )
        .await;
    let k = ok(&r, "createApiKey");
    (
        k["apiKey"]["id"].as_str().unwrap().to_owned(),
        k["secret"].as_str().unwrap().to_owned(),
    )
}

async fn queued_job(srv: &TestServer, org: &str, project: &str) -> String {
    queue::enqueue(
        &srv.node.app.db,
        NewJob {
            organization_id: org.to_owned(),
            project_id: Some(project.to_owned()),
            parent_id: None,
            kind: "test.noop".into(),
            payload: json!({}),
            max_attempts: 1,
        },
    )
    .await
    .expect("enqueue")
    .id
}

/// Everything about A's organization that a leak could change.
async fn snapshot(srv: &TestServer, a: &Session, fx: &Fixture) -> Value {
    let q = "query($org: ID!, $project: ID!, $job: ID!, $form: ID!, $failed: ID!, $active: ID!) {
        organization(id: $org) { id name personal createdAt }
        projects(organizationId: $org, first: 10) { totalCount edges { node { id name description updatedAt } } }
        project(id: $project) { id name description organizationId updatedAt documents(first: 10) { totalCount edges { node { id filename } } }
            plugins { converter { id version } llmAdapter { id } llmConfig llmAllowedHosts llmSecretNames } }
        plugins(organizationId: $org) { id version sha256 }
        form(id: $form) { name versions { id status programHash feedback } }
        failed: job(id: $failed) { state error attempts }
        results(projectId: $project, formVersionId: $active) { totalCount }
        job(id: $job) { id kind state progress error attempts cancelRequested projectId updatedAt finishedAt }
        auditLog(organizationId: $org, first: 20) { totalCount edges { node { id action actorUserId actorApiKeyId } } }
        me { memberships { role organization { id } } }
    }";
    let r = srv
        .gql(
            Some(&a.token),
            q,
            json!({ "org": fx.org, "project": fx.project, "job": fx.job, "form": fx.form,
                    "failed": fx.failed_job, "active": fx.active_version }),
        )
        .await;
    assert!(r.get("errors").is_none(), "snapshot: {r}");
    r["data"].clone()
}

fn memberships(srv_me: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = srv_me["data"]["me"]["memberships"]
        .as_array()
        .expect("memberships")
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["organization"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

evistream_tests::dual_db_test!(
    another_organizations_ids_are_not_found,
    |db: DbKind| async move {
        // The probe table covers the schema exactly.
        let schema =
            Schema::parse_and_validate(evistream::api::sdl(), "schema.graphql").expect("valid SDL");
        let in_schema = id_taking_fields(&schema);
        let probed: BTreeSet<String> = PROBES.iter().map(|p| p.field.to_owned()).collect();
        assert_eq!(probed.len(), PROBES.len(), "a field is probed twice");
        let exempt: BTreeSet<String> = NOT_TENANT_SCOPED
            .iter()
            .map(|(f, _)| (*f).to_owned())
            .collect();
        assert!(
            probed.is_disjoint(&exempt),
            "a field is both probed and exempt"
        );
        let covered: BTreeSet<String> = probed.union(&exempt).cloned().collect();
        let missing: Vec<&String> = in_schema.difference(&covered).collect();
        assert!(
            missing.is_empty(),
            "id-taking fields without a tenancy probe (add them to PROBES, or to \
         NOT_TENANT_SCOPED with a reason): {missing:?}"
        );
        let stale: Vec<&String> = covered.difference(&in_schema).collect();
        assert!(
            stale.is_empty(),
            "probed fields that take no id or do not exist: {stale:?}"
        );
        // The self-check itself can fail: it sees ids inside input objects too.
        assert!(in_schema.contains("Mutation.createProject") && !in_schema.contains("Query.me"));
        for p in PROBES {
            let text = ops::operation(p.op);
            assert!(
                text.contains(&format!("{}(", p.name())),
                "operation {} does not call {}",
                p.op,
                p.field
            );
        }

        let tdb = TestDb::new(db).await.unwrap();
        let mut config = tdb.config();
        config.plugins.allow_private_networks = true;
        let srv = TestServer::start(config, JobRegistry::new()).await.unwrap();
        let llm_port = ok_server().await;

        let a = srv.register("alice").await;
        let b = srv.register("bob").await;
        let project = srv.project(&a.token, &a.org_id, "Secret trial").await;
        // A's plugin, bound to A's project: a leaked install, uninstall or
        // binding change would show in the snapshot.
        let r = srv
            .install_plugin(
                &a.token,
                &a.org_id,
                &probe_manifest("1.0.0"),
                fixtures::wasm("hostile_converter"),
            )
            .await;
        ok(&r, "installPlugin");
        let r = srv
            .op(
                Some(&a.token),
                "ConfigureProjectPlugins",
                json!({ "projectId": project, "converter": "probe-conv" }),
            )
            .await;
        ok(&r, "configureProjectPlugins");
        let (form, form_version) = new_form(&srv, &a, &project).await;
        let job = queued_job(&srv, &a.org_id, &project).await;
        let (a_key_id, a_key) = create_key(&srv, &a, "alice-ci", "ADMIN").await;
        let (_, b_key) = create_key(&srv, &b, "bob-ci", "OWNER").await;
        let document = uploaded_document(&srv, &a, &project).await;
        let study = linked_study(&srv, &a, &project, &document).await;
        let fx = Fixture {
            org: a.org_id.clone(),
            project: project.clone(),
            job: job.clone(),
            api_key: a_key_id.clone(),
            document,
            study,
            outsider_email: b.email.clone(),
            owner: a.user_id.clone(),
            plugin_version: "1.0.0".into(),
            form: form.clone(),
            form_version: form_version.clone(),
            active_version: active_version(&srv, &a, &project).await,
            failed_job: failed_job(&srv, &a.org_id, &project).await,
        };
        let before = snapshot(&srv, &a, &fx).await;
        assert_eq!(before["job"]["state"], json!("QUEUED"));
        assert_eq!(before["projects"]["totalCount"], json!(1));

        // The sweep.
        let callers = [
            ("user B", b.token.as_str()),
            ("B's OWNER API key", b_key.as_str()),
        ];
        let mut probes_run = 0;
        for (who, token) in callers {
            for p in PROBES {
                let foreign = run(&srv, token, p, fx.id(p.target), &fx).await;
                let nonexistent = uuid::Uuid::now_v7().to_string();
                let missing = run(&srv, token, p, &nonexistent, &fx).await;
                let ctx = format!("{who} → {} ({})", p.field, p.op);
                assert_eq!(
                    error_code(&foreign),
                    Some("NOT_FOUND"),
                    "{ctx}, A's id: {foreign}"
                );
                assert_eq!(
                    error_code(&missing),
                    Some("NOT_FOUND"),
                    "{ctx}, random id: {missing}"
                );
                for r in [&foreign, &missing] {
                    assert!(
                        r["data"].is_null() || r["data"][p.name()].is_null(),
                        "{ctx}: data despite NOT_FOUND: {r}"
                    );
                }
                assert_eq!(
                    foreign["errors"][0]["message"], missing["errors"][0]["message"],
                    "{ctx}: A's id must look exactly like a nonexistent one"
                );
                // Indistinguishable as a whole, not just by message.
                assert_eq!(foreign, missing, "{ctx}");
                probes_run += 1;
            }
        }
        assert_eq!(probes_run, 2 * PROBES.len());

        // A's organization is exactly as before.
        let after = snapshot(&srv, &a, &fx).await;
        assert_eq!(after, before, "B's probes changed A's organization");
        assert_eq!(after["project"]["name"], json!("Secret trial"));
        assert_eq!(after["job"]["state"], json!("QUEUED"));
        assert_eq!(after["job"]["cancelRequested"], json!(false));
        let r = srv
            .op(
                Some(&a_key),
                "Projects",
                json!({ "organizationId": a.org_id }),
            )
            .await;
        assert_eq!(
            ok(&r, "projects")["totalCount"],
            json!(1),
            "A's key still works: {r}"
        );
        let r = srv.op(Some(&b.token), "Me", json!({})).await;
        assert_eq!(
            memberships(&r),
            vec![("OWNER".to_owned(), b.org_id.clone())],
            "B was not added to A's organization"
        );

        // Controls: A can do every probed operation on its own objects (fresh
        // ones, as some probes are destructive), so no probe above was refused
        // merely for being broken.
        let project2 = srv.project(&a.token, &a.org_id, "Control").await;
        let control_form = new_form(&srv, &a, &project2).await;
        let control_document = uploaded_document(&srv, &a, &project2).await;
        let control_study = linked_study(&srv, &a, &project2, &control_document).await;
        let control = Fixture {
            org: a.org_id.clone(),
            project: project2.clone(),
            job: queued_job(&srv, &a.org_id, &project2).await,
            api_key: create_key(&srv, &a, "control", "VIEWER").await.0,
            document: control_document,
            study: control_study,
            outsider_email: b.email.clone(),
            // The addMember control made B an OWNER of A's organization.
            owner: b.user_id.clone(),
            plugin_version: "2.0.0".into(),
            form: control_form.0,
            form_version: control_form.1,
            active_version: active_version(&srv, &a, &project2).await,
            failed_job: failed_job(&srv, &a.org_id, &project2).await,
        };
        srv.converted_papers(&a.token, &project2, &["PMC3321528.pdf"])
            .await;
        bind_llm(&srv, &a, &project2, llm_port).await;
        for p in PROBES {
            let r = run(&srv, &a.token, p, control.id(p.target), &control).await;
            if let Some((_, code)) = CONTROL_REFUSED.iter().find(|(f, _)| *f == p.field) {
                assert_eq!(error_code(&r), Some(*code), "control {}: {r}", p.field);
                continue;
            }
            assert!(r.get("errors").is_none(), "control {}: {r}", p.field);
            assert!(!r["data"][p.name()].is_null(), "control {}: {r}", p.field);
        }
        // And the original objects were not collateral of the controls.
        let r = srv.op(Some(&a.token), "Job", json!({ "id": job })).await;
        assert_eq!(ok(&r, "job")["state"], json!("QUEUED"));

        srv.stop().await;
        tdb.drop_db().await;
    }
);

evistream_tests::dual_db_test!(
    membership_grants_and_api_keys_stay_in_their_organization,
    |db: DbKind| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let srv = TestServer::start(tdb.config(), JobRegistry::new())
            .await
            .unwrap();
        let a = srv.register("alice").await;
        let b = srv.register("bob").await;
        let project = srv.project(&a.token, &a.org_id, "Shared").await;
        let job = queued_job(&srv, &a.org_id, &project).await;

        // Before B is a member: NOT_FOUND. After being added as VIEWER: visible,
        // but writes need a role, so they are FORBIDDEN rather than NOT_FOUND.
        let r = srv
            .op(Some(&b.token), "Project", json!({ "id": project }))
            .await;
        assert_eq!(error_code(&r), Some("NOT_FOUND"), "{r}");
        let r = srv
            .op(
                Some(&a.token),
                "AddMember",
                json!({ "organizationId": a.org_id, "email": b.email, "role": "VIEWER" }),
            )
            .await;
        ok(&r, "addMember");
        let r = srv
            .op(Some(&b.token), "Project", json!({ "id": project }))
            .await;
        assert_eq!(ok(&r, "project")["name"], json!("Shared"));
        let r = srv.op(Some(&b.token), "Job", json!({ "id": job })).await;
        assert_eq!(ok(&r, "job")["state"], json!("QUEUED"));
        let r = srv
            .op(Some(&b.token), "CancelJob", json!({ "id": job }))
            .await;
        assert_eq!(error_code(&r), Some("FORBIDDEN"), "{r}");
        let r = srv
            .op(Some(&b.token), "DeleteProject", json!({ "id": project }))
            .await;
        assert_eq!(error_code(&r), Some("FORBIDDEN"), "{r}");

        // B's own API key acts for B's organization only, even though B (the
        // user) is now a member of A's.
        let (_, b_key) = create_key(&srv, &b, "bob-ci", "OWNER").await;
        let r = srv
            .op(Some(&b_key), "Project", json!({ "id": project }))
            .await;
        assert_eq!(error_code(&r), Some("NOT_FOUND"), "{r}");
        let r = srv
            .op(
                Some(&b_key),
                "Projects",
                json!({ "organizationId": a.org_id }),
            )
            .await;
        assert_eq!(error_code(&r), Some("NOT_FOUND"), "{r}");
        let r = srv.op(Some(&b_key), "Job", json!({ "id": job })).await;
        assert_eq!(error_code(&r), Some("NOT_FOUND"), "{r}");

        srv.stop().await;
        tdb.drop_db().await;
    }
);
