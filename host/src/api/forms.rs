//! GraphQL types of forms and their versions.

use async_graphql::{Context, ID, InputObject, Json, Object};

use super::types::{Form, timestamp};
use super::{access, app};
use crate::db::entities::form_version;
use crate::forms::{self, Field, FieldType, FormVersionStatus};

/// A field of a form, as submitted.
#[derive(InputObject, Clone)]
pub struct FieldInput {
    /// Unique among its siblings: letters, digits, `_`.
    pub name: String,
    /// What to extract.
    pub description: Option<String>,
    /// The type.
    #[graphql(name = "type")]
    pub field_type: FieldType,
    /// Options of an ENUM.
    pub options: Option<Vec<String>>,
    /// An ENUM with several values.
    pub multiple: Option<bool>,
    /// Where to look, how to decide.
    pub hints: Option<String>,
    /// Unit of a NUMBER or INTEGER.
    pub unit: Option<String>,
    /// Must be reported.
    pub required: Option<bool>,
    /// Sub-fields of an OBJECT or ARRAY.
    pub fields: Option<Vec<FieldInput>>,
}

impl From<FieldInput> for Field {
    fn from(f: FieldInput) -> Self {
        Field {
            name: f.name,
            description: f.description,
            field_type: f.field_type,
            options: f.options.unwrap_or_default(),
            multiple: f.multiple.unwrap_or(false),
            hints: f.hints,
            unit: f.unit,
            required: f.required.unwrap_or(false),
            fields: f
                .fields
                .unwrap_or_default()
                .into_iter()
                .map(Field::from)
                .collect(),
        }
    }
}

/// Input of `createForm`.
#[derive(InputObject)]
pub struct CreateFormInput {
    /// The project.
    pub project_id: ID,
    /// Name (1–200 characters).
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// The fields (at least one).
    pub fields: Vec<FieldInput>,
}

/// Input of `updateForm`: the new fields (a new version); absent name and
/// description stay.
#[derive(InputObject)]
pub struct UpdateFormInput {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// The fields of the new version.
    pub fields: Vec<FieldInput>,
}

/// One immutable version of a form, with its extraction program.
pub struct FormVersion(pub form_version::Model);

#[Object]
impl FormVersion {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// 1, 2, 3, … per form.
    async fn number(&self) -> i32 {
        self.0.number
    }
    async fn status(&self) -> FormVersionStatus {
        self.0.status
    }
    /// sha256 of the program's canonical JSON.
    async fn program_hash(&self) -> Option<&str> {
        self.0.program_hash.as_deref()
    }
    /// The extraction program: ordered steps with their fields, JSON Schema,
    /// instructions and dependencies.
    #[graphql(complexity = 200)]
    async fn program(&self) -> async_graphql::Result<Option<Json<serde_json::Value>>> {
        Ok(forms::version_program(&self.0)?
            .map(|p| Json(serde_json::to_value(p).unwrap_or_default())))
    }
    /// The fields of this version.
    async fn fields(&self) -> async_graphql::Result<Json<serde_json::Value>> {
        Ok(Json(
            serde_json::to_value(forms::version_fields(&self.0)?).unwrap_or_default(),
        ))
    }
    /// The reviewer feedback this version was regenerated with.
    async fn feedback(&self) -> Option<&str> {
        self.0.feedback.as_deref()
    }
    /// The version it was regenerated from.
    async fn regenerated_from(&self) -> Option<ID> {
        self.0.parent_id.clone().map(ID)
    }
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    async fn created_at(&self) -> String {
        timestamp(self.0.created_at)
    }
    async fn reviewed_at(&self) -> Option<String> {
        self.0.reviewed_at.map(timestamp)
    }
    /// The form.
    async fn form(&self, ctx: &Context<'_>) -> async_graphql::Result<Form> {
        access(ctx).await?;
        Ok(Form(forms::form_of(app(ctx), &self.0).await?))
    }
}
