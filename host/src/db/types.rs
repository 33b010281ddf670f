//! Typed JSON columns: each reads back into its type or fails loudly (a
//! row that does not parse is an error, never an empty list).

use sea_orm::FromJsonQueryResult;
use serde::{Deserialize, Serialize};

use crate::extraction::pipeline::StoredEvidence;
use crate::plugins::converter::PageRange;

/// A list of strings (warnings, model names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult)]
#[serde(transparent)]
pub struct Strings(pub Vec<String>);

impl From<Vec<String>> for Strings {
    fn from(v: Vec<String>) -> Self {
        Self(v)
    }
}

/// A converted document's page ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult)]
#[serde(transparent)]
pub struct Pages(pub Vec<PageRange>);

impl From<Vec<PageRange>> for Pages {
    fn from(v: Vec<PageRange>) -> Self {
        Self(v)
    }
}

/// A value's evidence, as the host grounded it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, FromJsonQueryResult)]
#[serde(transparent)]
pub struct EvidenceList(pub Vec<StoredEvidence>);

impl From<Vec<StoredEvidence>> for EvidenceList {
    fn from(v: Vec<StoredEvidence>) -> Self {
        Self(v)
    }
}

/// An enum stored as text (`#[sea_orm(string_value)]` per variant) and
/// shown as a GraphQL enum.
macro_rules! stored_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $stored:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            async_graphql::Enum,
            sea_orm::EnumIter,
            sea_orm::DeriveActiveEnum,
        )]
        #[sea_orm(rs_type = "String", db_type = "Text")]
        pub enum $name {
            $($(#[$vdoc])* #[sea_orm(string_value = $stored)] $variant),+
        }
    };
}
pub(crate) use stored_enum;
