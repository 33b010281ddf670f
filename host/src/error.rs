//! The one error type services return, and its single mapping to GraphQL
//! error codes (`extensions.code`).

/// What went wrong in a service call, split into what the caller may learn
/// (the message) and what only the log sees (`Internal`).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No or invalid credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated but the role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The object does not exist or belongs to another organization.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The input is malformed or violates a rule.
    #[error("{0}")]
    BadInput(String),
    /// The input collides with existing state (e.g. a duplicate email).
    #[error("{0}")]
    Conflict(String),
    /// An upload or body exceeds a configured limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The response would exceed `limits.max_response_bytes`.
    #[error("{0}")]
    ResponseTooLarge(String),
    /// The organization's storage quota for derived blobs is used up.
    #[error("{0}")]
    QuotaExceeded(String),
    /// Too many attempts: wait `retry_after_secs` (in `extensions.retryAfterSeconds`).
    #[error("{message}")]
    RateLimited {
        /// What was refused.
        message: String,
        /// Seconds to wait before trying again.
        retry_after_secs: u64,
    },
    /// A plugin failed its call or was refused (subkind in `extensions.reason`).
    #[error("{0}")]
    Plugin(#[from] crate::plugins::PluginError),
    /// The LLM provider refused or failed a request (the adapter's verdict;
    /// subkind in `extensions.reason`).
    #[error("LLM provider error: {0}")]
    Llm(crate::plugins::llm::LlmFailure),
    /// A bug or an infrastructure failure; details go to the log only.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ServiceError {
    /// The GraphQL `extensions.code` for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadInput(_) => "BAD_USER_INPUT",
            Self::Conflict(_) => "CONFLICT",
            Self::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::ResponseTooLarge(_) => "RESPONSE_TOO_LARGE",
            Self::QuotaExceeded(_) => "QUOTA_EXCEEDED",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::Plugin(_) | Self::Llm(_) => "PLUGIN_FAILED",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// Shorthand for a bad-input error.
    pub fn bad_input(msg: impl Into<String>) -> Self {
        Self::BadInput(msg.into())
    }

    /// Shorthand for a forbidden error.
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::Forbidden(msg.into())
    }
}

impl From<crate::plugins::llm::LlmError> for ServiceError {
    fn from(e: crate::plugins::llm::LlmError) -> Self {
        match e {
            crate::plugins::llm::LlmError::Provider(f) => Self::Llm(f),
            crate::plugins::llm::LlmError::Plugin(p) => Self::Plugin(p),
        }
    }
}

impl From<sea_orm::DbErr> for ServiceError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(anyhow::Error::new(e).context("database"))
    }
}

impl From<sea_orm::TransactionError<ServiceError>> for ServiceError {
    fn from(e: sea_orm::TransactionError<ServiceError>) -> Self {
        match e {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(s) => s,
        }
    }
}

/// Gives every GraphQL error its `extensions.code`, once, for all transports.
/// Service errors carry their own code (and internal ones are logged here);
/// errors from before execution (syntax, validation, limits, variables) are
/// the client's: BAD_USER_INPUT; anything else is INTERNAL.
pub fn assign_code(e: &mut async_graphql::ServerError) {
    let has_code = e
        .extensions
        .as_ref()
        .is_some_and(|x| x.get("code").is_some());
    if has_code {
        return;
    }
    let mut reason = None;
    let mut retry_after = None;
    let code = match e.source::<ServiceError>() {
        Some(se) => {
            match se {
                ServiceError::Internal(inner) => tracing::error!(error = ?inner, "internal error"),
                ServiceError::Plugin(p) => reason = Some(p.kind()),
                ServiceError::Llm(f) => reason = Some(f.kind()),
                ServiceError::RateLimited {
                    retry_after_secs, ..
                } => retry_after = Some(*retry_after_secs),
                _ => {}
            }
            se.code()
        }
        None if e.path.is_empty() => "BAD_USER_INPUT",
        // An argument that does not coerce to its type (a custom scalar
        // such as Upload is only checked when its field runs).
        None if e.message.starts_with("Failed to parse \"")
            || e.message.starts_with("Expected input type \"") =>
        {
            "BAD_USER_INPUT"
        }
        None => "INTERNAL",
    };
    let ext = e
        .extensions
        .get_or_insert_with(async_graphql::ErrorExtensionValues::default);
    ext.set("code", async_graphql::Value::from(code));
    if let Some(r) = reason {
        ext.set("reason", async_graphql::Value::from(r));
    }
    if let Some(s) = retry_after {
        ext.set("retryAfterSeconds", async_graphql::Value::from(s));
    }
}

/// The schema extension that applies [`assign_code`] to every response,
/// for queries and mutations over HTTP and for subscription events.
pub struct ErrorCodes;

impl async_graphql::extensions::ExtensionFactory for ErrorCodes {
    fn create(&self) -> std::sync::Arc<dyn async_graphql::extensions::Extension> {
        std::sync::Arc::new(ErrorCodes)
    }
}

#[async_trait::async_trait]
impl async_graphql::extensions::Extension for ErrorCodes {
    async fn request(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        next: async_graphql::extensions::NextRequest<'_>,
    ) -> async_graphql::Response {
        let mut r = next.run(ctx).await;
        r.errors.iter_mut().for_each(assign_code);
        r
    }

    fn subscribe<'s>(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        stream: futures::stream::BoxStream<'s, async_graphql::Response>,
        next: async_graphql::extensions::NextSubscribe<'_>,
    ) -> futures::stream::BoxStream<'s, async_graphql::Response> {
        use futures::StreamExt;
        next.run(ctx, stream)
            .map(|mut r| {
                r.errors.iter_mut().for_each(assign_code);
                r
            })
            .boxed()
    }
}

/// Result alias for service calls.
pub type ServiceResult<T> = Result<T, ServiceError>;
