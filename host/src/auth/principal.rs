//! Who a request acts as, and the roles of the tenancy model.

use serde::{Deserialize, Serialize};

/// A member's role in an organization, from most to least powerful.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    async_graphql::Enum,
    sea_orm::EnumIter,
    sea_orm::DeriveActiveEnum,
)]
#[serde(rename_all = "UPPERCASE")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum Role {
    /// Everything, including granting OWNER.
    #[sea_orm(string_value = "OWNER")]
    Owner,
    /// Manages members, API keys and projects.
    #[sea_orm(string_value = "ADMIN")]
    Admin,
    /// Edits project content (documents, forms, reviews).
    #[sea_orm(string_value = "REVIEWER")]
    Reviewer,
    /// Reads only.
    #[sea_orm(string_value = "VIEWER")]
    Viewer,
}

impl Role {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "OWNER",
            Role::Admin => "ADMIN",
            Role::Reviewer => "REVIEWER",
            Role::Viewer => "VIEWER",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "OWNER" => Role::Owner,
            "ADMIN" => Role::Admin,
            "REVIEWER" => Role::Reviewer,
            "VIEWER" => Role::Viewer,
            _ => return None,
        })
    }

    fn rank(self) -> u8 {
        match self {
            Role::Owner => 3,
            Role::Admin => 2,
            Role::Reviewer => 1,
            Role::Viewer => 0,
        }
    }

    /// True when this role has at least the powers of `other`.
    pub fn at_least(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A logged-in user (access token).
    User {
        /// The user's id.
        user_id: String,
    },
    /// An API key: one organization, one role.
    ApiKey {
        /// The key's id.
        key_id: String,
        /// The organization the key belongs to.
        organization_id: String,
        /// The key's role there.
        role: Role,
    },
}

impl Principal {
    /// The user id, when the caller is a user.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Principal::User { user_id } => Some(user_id),
            Principal::ApiKey { .. } => None,
        }
    }

    /// The API key id, when the caller is a key.
    pub fn api_key_id(&self) -> Option<&str> {
        match self {
            Principal::ApiKey { key_id, .. } => Some(key_id),
            Principal::User { .. } => None,
        }
    }
}
