//! Accounts end to end, over real HTTP, on SQLite and PostgreSQL:
//!
//! - register → login → me, and refresh-token rotation with reuse detection
//!   (a spent token is refused and takes its whole family down with it);
//! - login failures that do not reveal whether the email exists;
//! - bad input at every layer (service rules, GraphQL validation, HTTP body)
//!   answering the right `extensions.code`, with nothing half-written;
//! - forged, expired and malformed bearer tokens refused as UNAUTHENTICATED;
//! - roles (VIEWER / REVIEWER / ADMIN / OWNER) enforced on members and projects;
//! - API keys: shown once, scoped to their organization and role, revocable;
//! - the audit log recording who did what, readable by admins only.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use evistream::jobs::JobRegistry;
use evistream_tests::{DbKind, TestDb, TestServer, assert_code, error_code, ok, refused};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// The JWT signing key the tests configure, so they can sign tokens the server trusts.
const JWT_KEY: &[u8; 32] = b"evistream-test-jwt-secret-32byte";

async fn start(db: DbKind) -> (TestDb, TestServer) {
    let tdb = TestDb::new(db).await.unwrap();
    let mut config = tdb.config();
    config.auth.jwt_secret = STANDARD.encode(JWT_KEY);
    let srv = TestServer::start(config, JobRegistry::new()).await.unwrap();
    (tdb, srv)
}

fn unique_email(label: &str) -> String {
    format!("{label}-{}@example.org", uuid::Uuid::new_v4().simple())
}

async fn register(srv: &TestServer, email: &str, password: &str, name: Option<&str>) -> Value {
    srv.op(
        None,
        "Register",
        json!({ "email": email, "password": password, "name": name }),
    )
    .await
}

async fn login(srv: &TestServer, email: &str, password: &str) -> Value {
    srv.op(
        None,
        "Login",
        json!({ "email": email, "password": password }),
    )
    .await
}

async fn refresh(srv: &TestServer, token: &str) -> Value {
    srv.op(None, "Refresh", json!({ "refreshToken": token }))
        .await
}

async fn me(srv: &TestServer, token: &str) -> Value {
    srv.op(Some(token), "Me", json!({})).await
}

async fn add_member(srv: &TestServer, token: &str, org: &str, email: &str, role: &str) -> Value {
    srv.op(
        Some(token),
        "AddMember",
        json!({ "organizationId": org, "email": email, "role": role }),
    )
    .await
}

async fn create_key(srv: &TestServer, token: &str, org: &str, name: &str, role: &str) -> Value {
    srv.op(
        Some(token),
        "CreateApiKey",
        json!({ "organizationId": org, "name": name, "role": role }),
    )
    .await
}

async fn create_project(srv: &TestServer, token: &str, org: &str, name: &str) -> Value {
    srv.op(
        Some(token),
        "CreateProject",
        json!({ "organizationId": org, "name": name }),
    )
    .await
}

async fn projects(srv: &TestServer, token: &str, org: &str) -> Value {
    srv.op(
        Some(token),
        "Projects",
        json!({ "organizationId": org, "first": 100 }),
    )
    .await
}

/// `(role, organization id)` of every membership in a `Me` response.
fn memberships(me: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = ok(me, "me")["memberships"]
        .as_array()
        .expect("memberships is a list")
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["organization"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Signs `claims` with `alg` and `key`, with header kid `kid`.
fn sign(alg: Algorithm, kid: &str, key: &[u8], claims: Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(key)).unwrap()
}

/// Claims the server accepts for `sub`, valid from now for an hour.
fn good_claims(sub: &str) -> Value {
    let now = unix_now();
    json!({ "sub": sub, "iat": now, "exp": now + 3600, "iss": "evistream", "aud": "evistream" })
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

evistream_tests::dual_db_test!(
    register_login_me_and_refresh_rotation,
    |db: DbKind| async move {
        let (tdb, srv) = start(db).await;
        let email = unique_email("ada");

        let r = register(&srv, &email, "correct horse", Some("Ada")).await;
        let reg = ok(&r, "register");
        let user_id = reg["user"]["id"].as_str().unwrap().to_owned();
        let org_id = reg["organization"]["id"].as_str().unwrap().to_owned();
        assert_eq!(reg["user"]["email"], json!(email));
        assert_eq!(reg["user"]["name"], json!("Ada"));
        assert_eq!(reg["organization"]["name"], json!("Ada's workspace"));
        let reg_refresh = reg["refreshToken"].as_str().unwrap().to_owned();

        // Login is case-insensitive on the email and returns the same user.
        let r = login(&srv, &email.to_uppercase(), "correct horse").await;
        let li = ok(&r, "login");
        assert_eq!(li["user"]["id"], json!(user_id));
        assert_eq!(li["user"]["email"], json!(email));
        let login_access = li["accessToken"].as_str().unwrap().to_owned();
        let login_refresh = li["refreshToken"].as_str().unwrap().to_owned();
        assert_ne!(
            login_refresh, reg_refresh,
            "each session gets its own refresh token"
        );

        // Me: the user, OWNER of exactly their personal organization.
        let r = me(&srv, &login_access).await;
        assert_eq!(ok(&r, "me")["id"], json!(user_id));
        assert_eq!(ok(&r, "me")["email"], json!(email));
        assert_eq!(memberships(&r), vec![("OWNER".to_owned(), org_id.clone())]);
        assert_eq!(
            ok(&r, "me")["memberships"][0]["organization"]["name"],
            json!("Ada's workspace")
        );

        // Refresh rotates: a new pair whose access token works.
        let r = refresh(&srv, &reg_refresh).await;
        let p1 = ok(&r, "refresh");
        let r1 = p1["refreshToken"].as_str().unwrap().to_owned();
        assert_ne!(r1, reg_refresh);
        let r = me(&srv, p1["accessToken"].as_str().unwrap()).await;
        assert_eq!(ok(&r, "me")["id"], json!(user_id));
        // ... and again, from the rotated token.
        let r = refresh(&srv, &r1).await;
        let r2 = ok(&r, "refresh")["refreshToken"]
            .as_str()
            .unwrap()
            .to_owned();

        // The spent token is refused, which revokes the family: the newest
        // token of that family (never used) fails too.
        let r = refresh(&srv, &r1).await;
        refused(&r, "refresh", "UNAUTHENTICATED");
        let r = refresh(&srv, &r2).await;
        refused(&r, "refresh", "UNAUTHENTICATED");
        let r = refresh(&srv, &reg_refresh).await;
        refused(&r, "refresh", "UNAUTHENTICATED");

        // Another family (the login session) is untouched.
        let r = refresh(&srv, &login_refresh).await;
        let l1 = ok(&r, "refresh")["refreshToken"]
            .as_str()
            .unwrap()
            .to_owned();

        // Two concurrent refreshes with one token: exactly one wins, and the
        // loser counts as reuse, so the winner's new token is revoked as well.
        let (a, b) = tokio::join!(refresh(&srv, &l1), refresh(&srv, &l1));
        let winners: Vec<&Value> = [&a, &b]
            .into_iter()
            .filter(|r| r.get("errors").is_none())
            .collect();
        assert_eq!(winners.len(), 1, "exactly one refresh must win: {a} / {b}");
        let loser = if a.get("errors").is_none() { &b } else { &a };
        refused(loser, "refresh", "UNAUTHENTICATED");
        let won = winners[0]["data"]["refresh"]["refreshToken"]
            .as_str()
            .unwrap();
        let r = refresh(&srv, won).await;
        refused(&r, "refresh", "UNAUTHENTICATED");

        // Garbage is refused the same way.
        for bad in ["", "evr_nope", "not-a-token"] {
            let r = refresh(&srv, bad).await;
            refused(&r, "refresh", "UNAUTHENTICATED");
        }

        // Logging in again starts a fresh family that works.
        let r = login(&srv, &email, "correct horse").await;
        let fresh = ok(&r, "login")["refreshToken"].as_str().unwrap().to_owned();
        let r = refresh(&srv, &fresh).await;
        ok(&r, "refresh");

        srv.stop().await;
        tdb.drop_db().await;
    }
);

evistream_tests::dual_db_test!(
    login_failures_do_not_reveal_the_email,
    |db: DbKind| async move {
        let (tdb, srv) = start(db).await;
        let user = srv.register("bob").await;

        let wrong_password = login(&srv, &user.email, "wrong horse!").await;
        let unknown_email = login(&srv, &unique_email("nobody"), "correct horse").await;
        refused(&wrong_password, "login", "UNAUTHENTICATED");
        refused(&unknown_email, "login", "UNAUTHENTICATED");
        assert_eq!(
            wrong_password["errors"][0]["message"], unknown_email["errors"][0]["message"],
            "wrong password and unknown email must be indistinguishable"
        );
        assert_eq!(
            wrong_password["errors"][0]["message"],
            json!("invalid email or password")
        );

        // Malformed input fails like a wrong password too.
        let r = login(&srv, "not an email", "x").await;
        refused(&r, "login", "UNAUTHENTICATED");
        assert_eq!(
            r["errors"][0]["message"],
            wrong_password["errors"][0]["message"]
        );

        // The right password still works after failures.
        let r = login(&srv, &user.email, "correct horse").await;
        assert_eq!(ok(&r, "login")["user"]["id"], json!(user.user_id));

        srv.stop().await;
        tdb.drop_db().await;
    }
);

evistream_tests::dual_db_test!(
    bad_input_is_refused_with_its_code_and_writes_nothing,
    |db: DbKind| async move {
        let (tdb, srv) = start(db).await;

        // Invalid emails.
        for bad in [
            "plainaddress",
            "a@b",
            "@example.org",
            "a b@example.org",
            "a@@example.org",
        ] {
            let r = register(&srv, bad, "correct horse", None).await;
            refused(&r, "register", "BAD_USER_INPUT");
        }

        // Short password: refused, and nothing was created under that email.
        let email = unique_email("short");
        let r = register(&srv, &email, "1234567", None).await;
        refused(&r, "register", "BAD_USER_INPUT");
        assert_code(&login(&srv, &email, "1234567").await, "UNAUTHENTICATED");
        // Eight characters is enough, and the email is still free.
        let r = register(&srv, &email, "12345678", None).await;
        ok(&r, "register");
        ok(&login(&srv, &email, "12345678").await, "login");

        // Duplicate email, in another case: CONFLICT, the first account intact.
        let r = register(
            &srv,
            &email.to_uppercase(),
            "another password",
            Some("Impostor"),
        )
        .await;
        refused(&r, "register", "CONFLICT");
        assert_code(
            &login(&srv, &email, "another password").await,
            "UNAUTHENTICATED",
        );
        ok(&login(&srv, &email, "12345678").await, "login");

        // Overlong name: refused and not half-written; 200 characters is fine.
        let email = unique_email("longname");
        let r = register(&srv, &email, "correct horse", Some(&"n".repeat(201))).await;
        refused(&r, "register", "BAD_USER_INPUT");
        assert_code(
            &login(&srv, &email, "correct horse").await,
            "UNAUTHENTICATED",
        );
        let r = register(&srv, &email, "correct horse", Some(&"n".repeat(200))).await;
        assert_eq!(ok(&r, "register")["user"]["name"], json!("n".repeat(200)));
        // The personal organization's name is derived from it and stays a valid name.
        let org_name = ok(&r, "register")["organization"]["name"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(org_name, format!("{}'s workspace", "n".repeat(188)));
        // Likewise from a long email (no name given).
        let long_local = format!("{}{}", "l".repeat(200), uuid::Uuid::new_v4().simple());
        let r = register(
            &srv,
            &format!("{long_local}@example.org"),
            "correct horse",
            None,
        )
        .await;
        let org_name = ok(&r, "register")["organization"]["name"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(org_name, format!("{}'s workspace", &long_local[..188]));

        // GraphQL-level errors are the client's: BAD_USER_INPUT, no data.
        let session = srv.register("carol").await;
        let r = srv
            .gql(
                Some(&session.token),
                "query { me { id nonexistentField } }",
                json!({}),
            )
            .await;
        refused(&r, "me", "BAD_USER_INPUT");
        let r = srv
            .gql(Some(&session.token), "query { me { id ", json!({}))
            .await;
        refused(&r, "me", "BAD_USER_INPUT");
        let r = srv
            .op(
                None,
                "Login",
                json!({ "email": 42, "password": "correct horse" }),
            )
            .await;
        refused(&r, "login", "BAD_USER_INPUT");
        let r = srv
            .op(
                Some(&session.token),
                "Projects",
                json!({ "organizationId": session.org_id, "first": "two" }),
            )
            .await;
        refused(&r, "projects", "BAD_USER_INPUT");
        let r = srv
            .op(
                Some(&session.token),
                "AddMember",
                json!({
        "organizationId": session.org_id, "email": session.email, "role": "EMPEROR" }),
            )
            .await;
        refused(&r, "addMember", "BAD_USER_INPUT");

        // A body that is not JSON: HTTP 400 with BAD_USER_INPUT.
        let resp = srv
            .http
            .post(format!("{}/graphql", srv.base))
            .header("content-type", "application/json")
            .body(r#"{"query": "query { me { id } }""#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let body: Value = resp.json().await.unwrap();
        assert_code(&body, "BAD_USER_INPUT");

        // A body that is not sent as JSON: refused with a code (415).
        let resp = srv
            .http
            .post(format!("{}/graphql", srv.base))
            .header("content-type", "text/plain")
            .body(json!({ "query": "query { me { id } }" }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 415);
        let body: Value = resp.json().await.unwrap();
        assert_code(&body, "BAD_USER_INPUT");
        assert!(
            body.get("data").is_none() || body["data"].is_null(),
            "{body}"
        );

        // A form post (what a cross-site page could send) is refused the same way.
        let resp = srv
            .http
            .post(format!("{}/graphql", srv.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("query=mutation%7Bregister%7D")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 415);

        srv.stop().await;
        tdb.drop_db().await;
    }
);

evistream_tests::dual_db_test!(
    forged_expired_and_garbage_tokens_are_unauthenticated,
    |db: DbKind| async move {
        let (tdb, srv) = start(db).await;
        let user = srv.register("dave").await;
        let now = unix_now();

        // Control: a token signed by hand with the configured key is accepted,
        // so every refusal below is about the one defect it carries.
        let control = sign(Algorithm::HS256, "k1", JWT_KEY, good_claims(&user.user_id));
        let r = me(&srv, &control).await;
        assert_eq!(ok(&r, "me")["id"], json!(user.user_id));

        let with = |patch: Value| {
            let mut c = good_claims(&user.user_id);
            for (k, v) in patch.as_object().unwrap() {
                c[k] = v.clone();
            }
            c
        };
        let other_key = [7u8; 32];
        let alg_none = {
            let header = URL_SAFE_NO_PAD
                .encode(json!({ "alg": "none", "typ": "JWT", "kid": "k1" }).to_string());
            let claims = URL_SAFE_NO_PAD.encode(good_claims(&user.user_id).to_string());
            format!("{header}.{claims}.")
        };
        // The control token with its signature cut off.
        let unsigned = format!("{}.", control.rsplit_once('.').unwrap().0);
        // A token whose claims were edited after signing (another user's id).
        let tampered = {
            let parts: Vec<&str> = control.split('.').collect();
            let claims =
                URL_SAFE_NO_PAD.encode(good_claims(&uuid::Uuid::now_v7().to_string()).to_string());
            format!("{}.{claims}.{}", parts[0], parts[2])
        };
        let cases: Vec<(&str, String)> = vec![
            (
                "expired",
                sign(
                    Algorithm::HS256,
                    "k1",
                    JWT_KEY,
                    with(json!({ "iat": now - 7200, "exp": now - 3600 })),
                ),
            ),
            (
                "signed with another key",
                sign(
                    Algorithm::HS256,
                    "k1",
                    &other_key,
                    good_claims(&user.user_id),
                ),
            ),
            ("alg none", alg_none),
            ("signature removed", unsigned),
            ("claims tampered", tampered),
            (
                "HS512 with the right key",
                sign(Algorithm::HS512, "k1", JWT_KEY, good_claims(&user.user_id)),
            ),
            (
                "unknown kid",
                sign(Algorithm::HS256, "k2", JWT_KEY, good_claims(&user.user_id)),
            ),
            (
                "wrong issuer",
                sign(
                    Algorithm::HS256,
                    "k1",
                    JWT_KEY,
                    with(json!({ "iss": "someone-else" })),
                ),
            ),
            (
                "wrong audience",
                sign(
                    Algorithm::HS256,
                    "k1",
                    JWT_KEY,
                    with(json!({ "aud": "someone-else" })),
                ),
            ),
            (
                "issued in the future",
                sign(
                    Algorithm::HS256,
                    "k1",
                    JWT_KEY,
                    with(json!({ "iat": now + 3600, "exp": now + 7200 })),
                ),
            ),
            (
                "unknown user",
                sign(
                    Algorithm::HS256,
                    "k1",
                    JWT_KEY,
                    good_claims(&uuid::Uuid::now_v7().to_string()),
                ),
            ),
            ("garbage", "garbage".to_owned()),
            ("garbage with dots", "a.b.c".to_owned()),
            (
                "unknown API key",
                "evs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
            ),
            ("a refresh token", user.refresh.clone()),
        ];
        for (why, token) in &cases {
            let r = me(&srv, token).await;
            assert_eq!(error_code(&r), Some("UNAUTHENTICATED"), "{why}: {r}");
            assert!(r["data"].is_null(), "{why}: data despite a bad token: {r}");
        }

        // Missing or malformed Authorization headers.
        let r = srv.op(None, "Me", json!({})).await;
        refused(&r, "me", "UNAUTHENTICATED");
        for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", &control] {
            let resp = srv
                .http
                .post(format!("{}/graphql", srv.base))
                .header("authorization", header)
                .json(&json!({ "query": "query { me { id } }" }))
                .send()
                .await
                .unwrap();
            let r: Value = resp.json().await.unwrap();
            refused(&r, "me", "UNAUTHENTICATED");
        }

        // The real token still works after all that.
        let r = me(&srv, &user.token).await;
        assert_eq!(ok(&r, "me")["id"], json!(user.user_id));

        srv.stop().await;
        tdb.drop_db().await;
    }
);

evistream_tests::dual_db_test!(roles_limit_what_members_can_do, |db: DbKind| async move {
    let (tdb, srv) = start(db).await;
    let owner = srv.register("owner").await;
    let member = srv.register("member").await;
    let third = srv.register("third").await;
    let org = owner.org_id.clone();
    let project = srv.project(&owner.token, &org, "Trial A").await;

    // VIEWER: sees the organization and its projects, cannot create one.
    let r = add_member(&srv, &owner.token, &org, &member.email, "VIEWER").await;
    let m = ok(&r, "addMember");
    assert_eq!(m["role"], json!("VIEWER"));
    assert_eq!(m["user"]["id"], json!(member.user_id));
    assert_eq!(m["user"]["email"], json!(member.email));
    let mut expected = vec![
        ("OWNER".to_owned(), member.org_id.clone()),
        ("VIEWER".to_owned(), org.clone()),
    ];
    expected.sort();
    assert_eq!(memberships(&me(&srv, &member.token).await), expected);
    let r = projects(&srv, &member.token, &org).await;
    assert_eq!(ok(&r, "projects")["totalCount"], json!(1));
    assert_eq!(ok(&r, "projects")["edges"][0]["node"]["id"], json!(project));
    let r = create_project(&srv, &member.token, &org, "Not allowed").await;
    refused(&r, "createProject", "FORBIDDEN");
    let r = srv
        .op(
            Some(&member.token),
            "UpdateProject",
            json!({ "id": project, "name": "Renamed" }),
        )
        .await;
    refused(&r, "updateProject", "FORBIDDEN");
    let r = srv
        .op(
            Some(&member.token),
            "DeleteProject",
            json!({ "id": project }),
        )
        .await;
    refused(&r, "deleteProject", "FORBIDDEN");
    let r = add_member(&srv, &member.token, &org, &third.email, "VIEWER").await;
    refused(&r, "addMember", "FORBIDDEN");

    // REVIEWER: still cannot manage members or keys.
    let r = add_member(&srv, &owner.token, &org, &member.email, "REVIEWER").await;
    assert_eq!(ok(&r, "addMember")["role"], json!("REVIEWER"));
    let r = add_member(&srv, &member.token, &org, &third.email, "VIEWER").await;
    refused(&r, "addMember", "FORBIDDEN");
    let r = create_key(&srv, &member.token, &org, "k", "VIEWER").await;
    refused(&r, "createApiKey", "FORBIDDEN");

    // ADMIN: adds members, but not OWNERs, and cannot demote the OWNER.
    let r = add_member(&srv, &owner.token, &org, &member.email, "ADMIN").await;
    assert_eq!(ok(&r, "addMember")["role"], json!("ADMIN"));
    let r = add_member(&srv, &member.token, &org, &third.email, "OWNER").await;
    refused(&r, "addMember", "FORBIDDEN");
    assert_eq!(
        memberships(&me(&srv, &third.token).await),
        vec![("OWNER".to_owned(), third.org_id.clone())],
        "a refused addMember must not add anyone"
    );
    let r = add_member(&srv, &member.token, &org, &owner.email, "VIEWER").await;
    refused(&r, "addMember", "FORBIDDEN");
    let r = add_member(&srv, &member.token, &org, &member.email, "OWNER").await;
    refused(&r, "addMember", "FORBIDDEN");
    let r = add_member(&srv, &member.token, &org, &third.email, "REVIEWER").await;
    assert_eq!(ok(&r, "addMember")["role"], json!("REVIEWER"));
    let r = create_project(&srv, &member.token, &org, "Admin's project").await;
    assert_eq!(ok(&r, "createProject")["name"], json!("Admin's project"));

    // The owner role is intact.
    assert!(
        memberships(&me(&srv, &owner.token).await).contains(&("OWNER".to_owned(), org.clone()))
    );

    // Unknown email: NOT_FOUND; an invalid one: BAD_USER_INPUT.
    let r = add_member(&srv, &owner.token, &org, &unique_email("ghost"), "VIEWER").await;
    refused(&r, "addMember", "NOT_FOUND");
    let r = add_member(&srv, &owner.token, &org, "not an email", "VIEWER").await;
    refused(&r, "addMember", "BAD_USER_INPUT");

    srv.stop().await;
    tdb.drop_db().await;
});

evistream_tests::dual_db_test!(
    api_keys_act_for_their_organization_and_role,
    |db: DbKind| async move {
        let (tdb, srv) = start(db).await;
        let owner = srv.register("keys").await;
        let admin = srv.register("admin").await;
        let org = owner.org_id.clone();
        let project = srv.project(&owner.token, &org, "Keyed").await;
        ok(
            &add_member(&srv, &owner.token, &org, &admin.email, "ADMIN").await,
            "addMember",
        );

        // Created with its secret, which appears nowhere else in the schema.
        let r = create_key(&srv, &owner.token, &org, "ci", "ADMIN").await;
        let created = ok(&r, "createApiKey");
        let secret = created["secret"].as_str().unwrap().to_owned();
        let key_id = created["apiKey"]["id"].as_str().unwrap().to_owned();
        assert_eq!(created["apiKey"]["name"], json!("ci"));
        assert_eq!(created["apiKey"]["role"], json!("ADMIN"));
        assert!(
            secret.starts_with("evs_") && secret.len() >= 40,
            "secret: {secret}"
        );
        let r = srv
            .gql(
                Some(&owner.token),
                r#"{ __type(name: "ApiKey") { fields { name } } }"#,
                json!({}),
            )
            .await;
        let fields: Vec<&str> = ok(&r, "__type")["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert!(
            fields.contains(&"id") && !fields.contains(&"secret"),
            "{fields:?}"
        );

        // The secret is a Bearer credential for its organization.
        let r = projects(&srv, &secret, &org).await;
        assert_eq!(ok(&r, "projects")["totalCount"], json!(1));
        assert_eq!(ok(&r, "projects")["edges"][0]["node"]["id"], json!(project));
        let r = create_project(&srv, &secret, &org, "By key").await;
        assert_eq!(ok(&r, "createProject")["name"], json!("By key"));
        // ... and of no user.
        let r = me(&srv, &secret).await;
        refused(&r, "me", "FORBIDDEN");
        // ... and of nothing outside its organization.
        let r = projects(&srv, &secret, &admin.org_id).await;
        refused(&r, "projects", "NOT_FOUND");

        // No key above its creator's role, whether the creator is a user or a key.
        let r = create_key(&srv, &admin.token, &org, "too strong", "OWNER").await;
        refused(&r, "createApiKey", "FORBIDDEN");
        let r = create_key(&srv, &secret, &org, "too strong", "OWNER").await;
        refused(&r, "createApiKey", "FORBIDDEN");
        let r = create_key(&srv, &admin.token, &org, "reader", "VIEWER").await;
        let viewer_secret = ok(&r, "createApiKey")["secret"]
            .as_str()
            .unwrap()
            .to_owned();

        // A VIEWER key reads but does not write.
        let r = projects(&srv, &viewer_secret, &org).await;
        assert_eq!(ok(&r, "projects")["totalCount"], json!(2));
        let r = create_project(&srv, &viewer_secret, &org, "Nope").await;
        refused(&r, "createProject", "FORBIDDEN");
        let r = create_key(&srv, &viewer_secret, &org, "nope", "VIEWER").await;
        refused(&r, "createApiKey", "FORBIDDEN");
        let r = srv
            .op(
                Some(&viewer_secret),
                "RevokeApiKey",
                json!({ "id": key_id }),
            )
            .await;
        refused(&r, "revokeApiKey", "FORBIDDEN");
        let r = projects(&srv, &secret, &org).await;
        assert_eq!(
            ok(&r, "projects")["totalCount"],
            json!(2),
            "the refused project was not created"
        );

        // Revoked: the secret stops working; other keys do not.
        let r = srv
            .op(
                Some(&owner.token),
                "RevokeApiKeyState",
                json!({ "id": key_id }),
            )
            .await;
        assert_eq!(ok(&r, "revokeApiKey")["id"], json!(key_id));
        assert_eq!(ok(&r, "revokeApiKey")["revoked"], json!(true));
        let r = projects(&srv, &secret, &org).await;
        refused(&r, "projects", "UNAUTHENTICATED");
        let r = create_project(&srv, &secret, &org, "After revoke").await;
        refused(&r, "createProject", "UNAUTHENTICATED");
        let r = projects(&srv, &viewer_secret, &org).await;
        assert_eq!(ok(&r, "projects")["totalCount"], json!(2));

        srv.stop().await;
        tdb.drop_db().await;
    }
);

evistream_tests::dual_db_test!(
    audit_log_records_actors_and_is_admin_only,
    |db: DbKind| async move {
        let (tdb, srv) = start(db).await;
        let owner = srv.register("audited").await;
        let viewer = srv.register("viewer").await;
        let org = owner.org_id.clone();

        ok(
            &add_member(&srv, &owner.token, &org, &viewer.email, "VIEWER").await,
            "addMember",
        );
        let r = create_key(&srv, &owner.token, &org, "bot", "ADMIN").await;
        let key_id = ok(&r, "createApiKey")["apiKey"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let secret = ok(&r, "createApiKey")["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        let by_user = srv.project(&owner.token, &org, "By owner").await;
        let by_key = srv.project(&secret, &org, "By bot").await;

        let r = srv
            .op(
                Some(&owner.token),
                "AuditLog",
                json!({ "organizationId": org, "first": 50 }),
            )
            .await;
        let log = ok(&r, "auditLog");
        let entries: Vec<&Value> = log["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["node"])
            .collect();
        assert_eq!(log["totalCount"], json!(entries.len()));
        let summary: Vec<(&str, &str, &Value, &Value)> = entries
            .iter()
            .map(|e| {
                (
                    e["action"].as_str().unwrap(),
                    e["objectId"].as_str().unwrap(),
                    &e["actorUserId"],
                    &e["actorApiKeyId"],
                )
            })
            .collect();
        let owner_id = json!(owner.user_id);
        let key = json!(key_id);
        assert_eq!(
            summary,
            vec![
                (
                    "user.register",
                    owner.user_id.as_str(),
                    &owner_id,
                    &Value::Null
                ),
                (
                    "member.add",
                    viewer.user_id.as_str(),
                    &owner_id,
                    &Value::Null
                ),
                ("api_key.create", key_id.as_str(), &owner_id, &Value::Null),
                ("project.create", by_user.as_str(), &owner_id, &Value::Null),
                ("project.create", by_key.as_str(), &Value::Null, &key),
            ],
            "audit log, oldest first: {log}"
        );
        assert_eq!(entries[1]["objectType"], json!("user"));
        assert_eq!(entries[1]["details"], json!({ "role": "VIEWER" }));
        assert_eq!(entries[2]["objectType"], json!("api_key"));
        assert!(
            !entries[2]["details"].to_string().contains(&secret),
            "the audit log must never hold a secret"
        );
        assert_eq!(entries[3]["objectType"], json!("project"));

        // The viewer's own registration is in their organization, not this one.
        let r = srv
            .op(
                Some(&viewer.token),
                "AuditLog",
                json!({ "organizationId": viewer.org_id }),
            )
            .await;
        let own = ok(&r, "auditLog");
        assert_eq!(own["totalCount"], json!(1));
        assert_eq!(own["edges"][0]["node"]["action"], json!("user.register"));

        // A VIEWER of the organization cannot read its log.
        let r = srv
            .op(
                Some(&viewer.token),
                "AuditLog",
                json!({ "organizationId": org }),
            )
            .await;
        refused(&r, "auditLog", "FORBIDDEN");

        srv.stop().await;
        tdb.drop_db().await;
    }
);

evistream_tests::dual_db_test!(signing_keys_rotate_by_kid, |db: DbKind| async move {
    // Rotation: k2 is the new signing key, k1 (the old one) is still accepted.
    const NEW_KEY: &[u8] = b"a brand new signing key of 32+ bytes!!";
    let tdb = TestDb::new(db).await.unwrap();
    let mut config = tdb.config();
    config.auth.jwt_kid = "k2".into();
    config.auth.jwt_secret = STANDARD.encode(NEW_KEY);
    config.auth.jwt_previous_keys = vec![evistream::config::PreviousKey {
        kid: "k1".into(),
        secret: STANDARD.encode(JWT_KEY),
    }];
    let srv = TestServer::start(config.clone(), JobRegistry::new())
        .await
        .unwrap();
    let user = srv.register("rot").await;
    // New tokens carry the new kid.
    let header = user.token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], "k2");
    let old = sign(Algorithm::HS256, "k1", JWT_KEY, good_claims(&user.user_id));
    assert_eq!(ok(&me(&srv, &old).await, "me")["id"], json!(user.user_id));
    // A kid must match its key: the old key under the new kid, or the new
    // key under the old kid, is refused.
    let mixed = sign(Algorithm::HS256, "k2", JWT_KEY, good_claims(&user.user_id));
    refused(&me(&srv, &mixed).await, "me", "UNAUTHENTICATED");
    let mixed = sign(Algorithm::HS256, "k1", NEW_KEY, good_claims(&user.user_id));
    refused(&me(&srv, &mixed).await, "me", "UNAUTHENTICATED");
    srv.stop().await;
    // Rotation finished: the old key is dropped and its tokens stop working.
    config.auth.jwt_previous_keys.clear();
    let srv = TestServer::start(config, JobRegistry::new()).await.unwrap();
    refused(&me(&srv, &old).await, "me", "UNAUTHENTICATED");
    assert_eq!(
        ok(&me(&srv, &user.token).await, "me")["id"],
        json!(user.user_id)
    );
    srv.stop().await;
    tdb.drop_db().await;
});

evistream_tests::dual_db_test!(members_and_api_keys_are_listed, |db: DbKind| async move {
    let (tdb, srv) = start(db).await;
    let owner = srv.register("owner").await;
    let reviewer = srv.register("reviewer").await;
    let outsider = srv.register("outsider").await;
    ok(
        &add_member(
            &srv,
            &owner.token,
            &owner.org_id,
            &reviewer.email,
            "REVIEWER",
        )
        .await,
        "addMember",
    );
    let key = create_key(&srv, &owner.token, &owner.org_id, "ci", "VIEWER").await;
    let key_id = ok(&key, "createApiKey")["apiKey"]["id"].clone();
    let members_q =
        "query($id: ID!) { organization(id: $id) { members { role user { id email } } } }";
    let keys_q =
        "query($id: ID!) { organization(id: $id) { apiKeys { id name role prefix revoked } } }";

    // A member sees who belongs, with roles.
    let r = srv
        .gql(
            Some(&reviewer.token),
            members_q,
            json!({ "id": owner.org_id }),
        )
        .await;
    let members: Vec<(String, String)> = ok(&r, "organization")["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user"]["email"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        members,
        [
            (owner.email.clone(), "OWNER".to_owned()),
            (reviewer.email.clone(), "REVIEWER".to_owned())
        ]
    );
    // API keys: administrators only; the secret is never listed.
    let r = srv
        .gql(Some(&reviewer.token), keys_q, json!({ "id": owner.org_id }))
        .await;
    assert_code(&r, "FORBIDDEN");
    let r = srv
        .gql(Some(&owner.token), keys_q, json!({ "id": owner.org_id }))
        .await;
    let keys = ok(&r, "organization")["apiKeys"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["id"], key_id);
    assert_eq!(keys[0]["revoked"], false);
    assert!(!keys[0].to_string().contains("secret"));
    let r = srv
        .op(Some(&owner.token), "RevokeApiKey", json!({ "id": key_id }))
        .await;
    ok(&r, "revokeApiKey");
    let r = srv
        .gql(Some(&owner.token), keys_q, json!({ "id": owner.org_id }))
        .await;
    assert_eq!(ok(&r, "organization")["apiKeys"][0]["revoked"], true);
    // Another organization's members are not found.
    let r = srv
        .gql(
            Some(&outsider.token),
            members_q,
            json!({ "id": owner.org_id }),
        )
        .await;
    assert_code(&r, "NOT_FOUND");

    srv.stop().await;
    tdb.drop_db().await;
});
