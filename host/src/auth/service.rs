//! Register, login, refresh, and turning a bearer credential into a principal.

use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, SqlErr};

use crate::app::App;
use crate::audit::{self, AuditRecord};
use crate::auth::{Principal, Role, password, secrets, throttle};
use crate::db::entities::{api_key, membership, organization, refresh_token, user};
use crate::db::{new_id, now_ms};
use crate::error::{ServiceError, ServiceResult};
use crate::validate;

/// Tokens handed out by register, login and refresh.
#[derive(Debug, Clone)]
pub struct TokenPair {
    /// Short-lived JWT.
    pub access_token: String,
    /// Single-use rotating refresh token.
    pub refresh_token: String,
}

/// What register returns.
#[derive(Debug, Clone)]
pub struct Registered {
    /// Tokens for the new user.
    pub tokens: TokenPair,
    /// The user.
    pub user: user::Model,
    /// The personal organization.
    pub organization: organization::Model,
}

// A real argon2id hash of a random password, verified against when the
// email is unknown so both failures take the same time.
static DUMMY_HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

async fn dummy_hash(app: &App) -> ServiceResult<String> {
    DUMMY_HASH
        .get_or_try_init(|| async {
            let random = secrets::generate("");
            app.logins.hashing(move || password::hash(&random)).await?
        })
        .await
        .cloned()
}

const LOGIN_FAILED: &str = "invalid email or password";

/// Creates a user, their personal organization (as OWNER) and a session.
pub async fn register(
    app: &App,
    email: &str,
    password_plain: &str,
    name: Option<&str>,
) -> ServiceResult<Registered> {
    let email = validate::email(email)?;
    validate::password(password_plain)?;
    let name = validate::optional_name(name, "name")?;
    if user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(&app.db)
        .await?
        .is_some()
    {
        return Err(ServiceError::Conflict(
            "an account with this email already exists".into(),
        ));
    }
    let plain = password_plain.to_owned();
    let hash = app.logins.hashing(move || password::hash(&plain)).await??;
    let now = now_ms();
    let user_id = new_id();
    let org_id = new_id();
    // The derived name must itself be a valid name (≤ MAX_NAME characters,
    // the column's length): a 200-character user name or a long email local
    // part is shortened, not turned into a database error.
    const SUFFIX: &str = "'s workspace";
    let base = name
        .as_deref()
        .unwrap_or_else(|| email.split('@').next().unwrap_or("my"));
    let org_name: String = base
        .chars()
        .take(validate::MAX_NAME - SUFFIX.len())
        .chain(SUFFIX.chars())
        .collect();
    let txn = crate::db::write_txn(&app.db).await?;
    let user = user::ActiveModel {
        id: Set(user_id.clone()),
        email: Set(email.clone()),
        name: Set(name.clone()),
        password_hash: Set(hash),
        created_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|e| match e.sql_err() {
        // Two registrations racing for one email.
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            ServiceError::Conflict("an account with this email already exists".into())
        }
        _ => e.into(),
    })?;
    let organization = organization::ActiveModel {
        id: Set(org_id.clone()),
        name: Set(org_name),
        personal: Set(true),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    membership::ActiveModel {
        id: Set(new_id()),
        organization_id: Set(org_id.clone()),
        user_id: Set(user_id.clone()),
        role: Set(Role::Owner),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let actor = Principal::User {
        user_id: user_id.clone(),
    };
    audit::record(
        &txn,
        Some(&actor),
        AuditRecord::new(&org_id, "user.register", "user", &user_id),
    )
    .await?;
    let refresh = insert_refresh(&txn, app, &user_id, &new_id()).await?;
    txn.commit().await?;
    let access_token = app.tokens.issue(&user_id)?;
    Ok(Registered {
        tokens: TokenPair {
            access_token,
            refresh_token: refresh,
        },
        user,
        organization,
    })
}

/// Checks email + password; the same error for an unknown email and a wrong
/// password. After a few failures, the account and the client's address
/// must wait (exponential backoff) before the next attempt is even checked.
pub async fn login(
    app: &App,
    email: &str,
    password_plain: &str,
    client: Option<std::net::IpAddr>,
) -> ServiceResult<(TokenPair, user::Model)> {
    // Malformed input still fails like a wrong password, to not leak rules.
    let email = email.trim().to_lowercase();
    if password_plain.len() > validate::MAX_PASSWORD || email.len() > validate::MAX_EMAIL {
        return Err(ServiceError::Unauthenticated(LOGIN_FAILED.into()));
    }
    let attempt = throttle::Attempt::new(&email, client);
    app.logins.admit(&attempt)?;
    let checked = async {
        let found = user::Entity::find()
            .filter(user::Column::Email.eq(email.as_str()))
            .one(&app.db)
            .await?;
        let (hash, user) = match found {
            Some(u) => (u.password_hash.clone(), Some(u)),
            None => (dummy_hash(app).await?, None),
        };
        let plain = password_plain.to_owned();
        let ok = app
            .logins
            .hashing(move || password::verify(&plain, &hash))
            .await??;
        ServiceResult::Ok((ok, user))
    }
    .await;
    let (ok, user) = match checked {
        Ok(v) => v,
        Err(e) => {
            // No verdict on the password: not a failure.
            app.logins.retract(&attempt);
            return Err(e);
        }
    };
    let user = match (ok, user) {
        (true, Some(u)) => {
            app.logins.succeeded(&attempt);
            u
        }
        // Already counted when admitted.
        _ => return Err(ServiceError::Unauthenticated(LOGIN_FAILED.into())),
    };
    let txn = crate::db::write_txn(&app.db).await?;
    let refresh = insert_refresh(&txn, app, &user.id, &new_id()).await?;
    txn.commit().await?;
    let access_token = app.tokens.issue(&user.id)?;
    Ok((
        TokenPair {
            access_token,
            refresh_token: refresh,
        },
        user,
    ))
}

/// Spends a refresh token and returns a new pair in the same family. A spent
/// token presented again revokes its whole family (the token was stolen, or
/// the client is confused: either way every session of that family ends).
pub async fn refresh(app: &App, token: &str) -> ServiceResult<TokenPair> {
    let invalid = || ServiceError::Unauthenticated("invalid or expired refresh token".into());
    let row = find_refresh(app, token).await?;
    let now = now_ms();
    if row.revoked_at.is_some() || row.expires_at <= now {
        return Err(invalid());
    }
    let txn = crate::db::write_txn(&app.db).await?;
    // Conditional update: of two concurrent refreshes with one token, one wins.
    let spent = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
        .filter(refresh_token::Column::Id.eq(row.id.as_str()))
        .filter(refresh_token::Column::UsedAt.is_null())
        .exec(&txn)
        .await?;
    if spent.rows_affected == 0 {
        txn.rollback().await?;
        revoke_family(app, &row, "auth.refresh_reuse").await?;
        tracing::warn!(user_id = %row.user_id, family = %row.family_id, "refresh token reused; family revoked");
        return Err(invalid());
    }
    let new_token = insert_refresh(&txn, app, &row.user_id, &row.family_id).await?;
    txn.commit().await?;
    Ok(TokenPair {
        access_token: app.tokens.issue(&row.user_id)?,
        refresh_token: new_token,
    })
}

/// Signs out: revokes the whole family of `token` (every session descended
/// from the same login). Unknown tokens are UNAUTHENTICATED; a token already
/// spent or revoked still signs its family out.
pub async fn logout(app: &App, token: &str) -> ServiceResult<()> {
    let row = find_refresh(app, token).await?;
    revoke_family(app, &row, "auth.logout").await
}

/// The stored refresh token `token` stands for; unknown or malformed ones
/// are UNAUTHENTICATED.
async fn find_refresh(app: &App, token: &str) -> ServiceResult<refresh_token::Model> {
    let invalid = || ServiceError::Unauthenticated("invalid or expired refresh token".into());
    if !token.starts_with(secrets::REFRESH_PREFIX) || token.len() > 200 {
        return Err(invalid());
    }
    let hash = secrets::digest(token);
    refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(hash.as_str()))
        .one(&app.db)
        .await?
        .ok_or_else(invalid)
}

/// Revokes every token of `row`'s family, audited as `action`.
async fn revoke_family(app: &App, row: &refresh_token::Model, action: &str) -> ServiceResult<()> {
    let now = now_ms();
    let txn = crate::db::write_txn(&app.db).await?;
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(now))
        .filter(refresh_token::Column::FamilyId.eq(row.family_id.as_str()))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    audit::record(
        &txn,
        Some(&Principal::User {
            user_id: row.user_id.clone(),
        }),
        AuditRecord::global(action, "refresh_token_family", &row.family_id),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

async fn insert_refresh<C: sea_orm::ConnectionTrait>(
    conn: &C,
    app: &App,
    user_id: &str,
    family_id: &str,
) -> ServiceResult<String> {
    let secret = secrets::generate(secrets::REFRESH_PREFIX);
    let now = now_ms();
    let ttl_ms = i64::try_from(app.config.auth.refresh_token_ttl_secs)
        .unwrap_or(i64::MAX / 2_000)
        .saturating_mul(1000);
    refresh_token::ActiveModel {
        id: Set(new_id()),
        user_id: Set(user_id.to_owned()),
        family_id: Set(family_id.to_owned()),
        token_hash: Set(secrets::digest(&secret)),
        created_at: Set(now),
        expires_at: Set(now.saturating_add(ttl_ms)),
        used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(conn)
    .await?;
    Ok(secret)
}

/// Resolves an `Authorization: Bearer …` credential: an API key (`evs_…`)
/// or an access JWT. Unknown, revoked or malformed credentials are UNAUTHENTICATED.
pub async fn authenticate(app: &App, bearer: &str) -> ServiceResult<Principal> {
    if bearer.starts_with(secrets::API_KEY_PREFIX) {
        let hash = secrets::digest(bearer);
        let key = api_key::Entity::find()
            .filter(api_key::Column::KeyHash.eq(hash.as_str()))
            .filter(api_key::Column::RevokedAt.is_null())
            .one(&app.db)
            .await?
            .ok_or_else(|| ServiceError::Unauthenticated("invalid API key".into()))?;
        let role = key.role;
        // Best effort: a failed timestamp write must not fail the request.
        let _ = api_key::Entity::update_many()
            .col_expr(api_key::Column::LastUsedAt, Expr::value(now_ms()))
            .filter(api_key::Column::Id.eq(key.id.as_str()))
            .exec(&app.db)
            .await;
        return Ok(Principal::ApiKey {
            key_id: key.id,
            organization_id: key.organization_id,
            role,
        });
    }
    let user_id = app.tokens.verify(bearer)?;
    // A deleted user's still-valid token must not work.
    if user::Entity::find_by_id(user_id.as_str())
        .one(&app.db)
        .await?
        .is_none()
    {
        return Err(ServiceError::Unauthenticated("unknown user".into()));
    }
    Ok(Principal::User { user_id })
}

/// Extracts the token from an `Authorization` header value.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
