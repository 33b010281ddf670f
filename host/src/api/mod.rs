//! The GraphQL API: translates requests into service calls and service
//! errors into `extensions.code`. No business rules live here.

pub mod analysis;
pub mod extraction;
pub mod forms;
mod graphiql;
pub mod guard;
pub mod http;
pub mod layout;
pub mod limits;
mod multipart;
mod mutation;
pub mod plugins;
mod query;
pub mod request;
pub mod review;
mod sliced;
mod subscription;
pub mod types;
pub mod ui;
mod ws;

use std::sync::Arc;

use async_graphql::{Context, Schema};

use crate::app::App;
use crate::auth::Principal;
use crate::error::{ServiceError, ServiceResult};
use crate::tenancy::Access;

pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;

/// The schema type.
pub type ApiSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Builds the schema with the configured limits; `app` is reachable from every resolver.
pub fn schema(app: Arc<App>) -> ApiSchema {
    let limits = app.config.limits.clone();
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .data(app)
        .extension(crate::error::ErrorCodes)
        .extension(guard::Guard)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(64)
        .limit_directives(16)
        .finish()
}

/// The schema's SDL, as checked in at `graphql/schema.graphql`.
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .finish()
        .sdl()
}

/// Per-request authentication state: the credential's verdict, and the
/// access derived from it on first use.
pub struct RequestAuth {
    principal: Result<Option<Principal>, String>,
    access: tokio::sync::OnceCell<Access>,
}

impl RequestAuth {
    /// From a resolved credential (`Ok(None)`: no credential sent; `Err`: a bad one).
    pub fn new(principal: Result<Option<Principal>, String>) -> Self {
        Self {
            principal,
            access: tokio::sync::OnceCell::new(),
        }
    }
}

pub(crate) fn app<'a>(ctx: &Context<'a>) -> &'a App {
    // The schema is always built with `App` data (see `schema`).
    ctx.data_unchecked::<Arc<App>>()
}

/// The caller's access, or UNAUTHENTICATED.
pub(crate) async fn access<'a>(ctx: &Context<'a>) -> ServiceResult<&'a Access> {
    let auth = ctx
        .data_opt::<http::AuthRef>()
        .map(|a| a.0.as_ref())
        .ok_or_else(|| ServiceError::Unauthenticated("authentication required".into()))?;
    let principal = match &auth.principal {
        Ok(Some(p)) => p.clone(),
        Ok(None) => {
            return Err(ServiceError::Unauthenticated(
                "authentication required: send Authorization: Bearer <token>".into(),
            ));
        }
        Err(why) => return Err(ServiceError::Unauthenticated(why.clone())),
    };
    auth.access
        .get_or_try_init(|| Access::load(&app(ctx).db, principal))
        .await
}
