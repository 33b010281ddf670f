//! Projects end to end, over real HTTP, on SQLite and PostgreSQL:
//!
//! - create, partial update (absent fields stay), delete (then NOT_FOUND);
//! - keyset pagination of `projects`: pages follow `endCursor`, `totalCount`
//!   and `hasNextPage` are right, every project is seen exactly once, and
//!   out-of-range page sizes and bad cursors are BAD_USER_INPUT;
//! - the acceptance `Project` query on a new project (no documents, no forms);
//! - name and description rules, with refused writes changing nothing;
//! - query depth and complexity limits.

use std::collections::HashSet;

use evistream::jobs::JobRegistry;
use evistream_tests::{DbKind, TestDb, TestServer, ok, refused};
use serde_json::{Value, json};

async fn start(db: DbKind) -> (TestDb, TestServer) {
    let tdb = TestDb::new(db).await.unwrap();
    let srv = TestServer::start(tdb.config(), JobRegistry::new())
        .await
        .unwrap();
    (tdb, srv)
}

async fn create(
    srv: &TestServer,
    token: &str,
    org: &str,
    name: &str,
    description: Option<&str>,
) -> Value {
    srv.op(
        Some(token),
        "CreateProject",
        json!({ "organizationId": org, "name": name, "description": description }),
    )
    .await
}

async fn update(srv: &TestServer, token: &str, vars: Value) -> Value {
    srv.op(Some(token), "UpdateProject", vars).await
}

async fn project(srv: &TestServer, token: &str, id: &str) -> Value {
    srv.op(Some(token), "Project", json!({ "id": id })).await
}

async fn page(
    srv: &TestServer,
    token: &str,
    org: &str,
    first: Option<i64>,
    after: Option<&str>,
) -> Value {
    srv.op(
        Some(token),
        "Projects",
        json!({ "organizationId": org, "first": first, "after": after }),
    )
    .await
}

fn node_ids(conn: &Value) -> Vec<String> {
    conn["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

evistream_tests::dual_db_test!(create_update_delete, |db: DbKind| async move {
    let (tdb, srv) = start(db).await;
    let u = srv.register("pm").await;
    let other = srv.project(&u.token, &u.org_id, "Bystander").await;

    // Created with trimmed name and description.
    let r = create(&srv, &u.token, &u.org_id, "  Trial  ", Some(" first ")).await;
    let p = ok(&r, "createProject").clone();
    let id = p["id"].as_str().unwrap().to_owned();
    assert_eq!(
        p,
        json!({ "id": id, "name": "Trial", "description": "first" })
    );

    // Only the name: the description stays.
    let r = update(&srv, &u.token, json!({ "id": id, "name": "Renamed" })).await;
    assert_eq!(
        ok(&r, "updateProject"),
        &json!({ "id": id, "name": "Renamed", "description": "first" })
    );
    // Only the description (name sent as explicit null): the name stays.
    let r = update(
        &srv,
        &u.token,
        json!({ "id": id, "name": null, "description": "second" }),
    )
    .await;
    assert_eq!(
        ok(&r, "updateProject"),
        &json!({ "id": id, "name": "Renamed", "description": "second" })
    );
    // Neither: nothing changes.
    let r = update(&srv, &u.token, json!({ "id": id })).await;
    assert_eq!(
        ok(&r, "updateProject"),
        &json!({ "id": id, "name": "Renamed", "description": "second" })
    );
    // An empty description clears it.
    let r = update(&srv, &u.token, json!({ "id": id, "description": "" })).await;
    assert_eq!(
        ok(&r, "updateProject"),
        &json!({ "id": id, "name": "Renamed", "description": null })
    );
    // The stored state matches what the mutations returned.
    let r = project(&srv, &u.token, &id).await;
    assert_eq!(ok(&r, "project")["name"], json!("Renamed"));

    // Delete: true, then the project is gone for every operation.
    let r = srv
        .op(Some(&u.token), "DeleteProject", json!({ "id": id }))
        .await;
    assert_eq!(r, json!({ "data": { "deleteProject": true } }));
    refused(&project(&srv, &u.token, &id).await, "project", "NOT_FOUND");
    refused(
        &srv.op(Some(&u.token), "DeleteProject", json!({ "id": id }))
            .await,
        "deleteProject",
        "NOT_FOUND",
    );
    refused(
        &update(&srv, &u.token, json!({ "id": id, "name": "Zombie" })).await,
        "updateProject",
        "NOT_FOUND",
    );
    let r = page(&srv, &u.token, &u.org_id, None, None).await;
    assert_eq!(ok(&r, "projects")["totalCount"], json!(1));
    assert_eq!(node_ids(ok(&r, "projects")), vec![other.clone()]);
    assert_eq!(
        ok(&project(&srv, &u.token, &other).await, "project")["name"],
        json!("Bystander")
    );

    srv.stop().await;
    tdb.drop_db().await;
});

evistream_tests::dual_db_test!(projects_paginate_by_cursor, |db: DbKind| async move {
    let (tdb, srv) = start(db).await;
    let u = srv.register("pager").await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(srv.project(&u.token, &u.org_id, &format!("P{i}")).await);
    }
    // Another organization's projects are not counted.
    let other = srv.register("other").await;
    srv.project(&other.token, &other.org_id, "Elsewhere").await;

    let mut seen: Vec<String> = Vec::new();
    let mut has_next = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..3 {
        let r = page(&srv, &u.token, &u.org_id, Some(2), after.as_deref()).await;
        let conn = ok(&r, "projects");
        assert_eq!(
            conn["totalCount"],
            json!(5),
            "totalCount on every page: {r}"
        );
        seen.extend(node_ids(conn));
        has_next.push(conn["pageInfo"]["hasNextPage"].as_bool().unwrap());
        after = Some(
            conn["pageInfo"]["endCursor"]
                .as_str()
                .expect("endCursor")
                .to_owned(),
        );
    }
    assert_eq!(has_next, vec![true, true, false]);
    assert_eq!(seen.len(), 5, "2 + 2 + 1 items: {seen:?}");
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 5, "every project once: {seen:?}");
    assert_eq!(unique, created.iter().collect::<HashSet<_>>());
    // Ordered by (time-ordered) id, i.e. creation order.
    assert_eq!(seen, created);

    // Past the end: an empty page, still with the total.
    let r = page(&srv, &u.token, &u.org_id, Some(2), after.as_deref()).await;
    let conn = ok(&r, "projects");
    assert_eq!(node_ids(conn), Vec::<String>::new());
    assert_eq!(conn["totalCount"], json!(5));
    assert_eq!(conn["pageInfo"]["hasNextPage"], json!(false));

    // Without `first`: the default page holds all five.
    let r = page(&srv, &u.token, &u.org_id, None, None).await;
    assert_eq!(node_ids(ok(&r, "projects")), created);
    assert_eq!(ok(&r, "projects")["pageInfo"]["hasNextPage"], json!(false));
    // The largest page size is accepted.
    let r = page(&srv, &u.token, &u.org_id, Some(100), None).await;
    assert_eq!(node_ids(ok(&r, "projects")), created);

    // Out-of-range sizes and bad cursors.
    for first in [0, -1, 101, 1000] {
        let r = page(&srv, &u.token, &u.org_id, Some(first), None).await;
        refused(&r, "projects", "BAD_USER_INPUT");
    }
    for cursor in ["!!!not a cursor!!!", "%%%", "\u{1F600}"] {
        let r = page(&srv, &u.token, &u.org_id, Some(2), Some(cursor)).await;
        refused(&r, "projects", "BAD_USER_INPUT");
    }

    srv.stop().await;
    tdb.drop_db().await;
});

evistream_tests::dual_db_test!(
    a_new_project_has_no_documents_or_forms,
    |db: DbKind| async move {
        let (tdb, srv) = start(db).await;
        let u = srv.register("empty").await;
        let id = srv.project(&u.token, &u.org_id, "Empty").await;

        let r = project(&srv, &u.token, &id).await;
        assert_eq!(
            r,
            json!({ "data": { "project": {
            "id": id,
            "name": "Empty",
            "documents": { "totalCount": 0, "edges": [] },
            "forms": [],
        } } })
        );

        // An id that never existed.
        let r = project(&srv, &u.token, &uuid::Uuid::now_v7().to_string()).await;
        refused(&r, "project", "NOT_FOUND");
        assert_eq!(r["errors"][0]["message"], json!("project not found"));

        srv.stop().await;
        tdb.drop_db().await;
    }
);

evistream_tests::dual_db_test!(
    names_and_descriptions_are_validated,
    |db: DbKind| async move {
        let (tdb, srv) = start(db).await;
        let u = srv.register("namer").await;
        let org = u.org_id.clone();
        let id = srv.project(&u.token, &org, "Original").await;

        let too_long = "x".repeat(201);
        let bad_names = ["", "   ", too_long.as_str(), "tab\tinside", "line\nbreak"];
        for name in bad_names {
            let r = create(&srv, &u.token, &org, name, None).await;
            refused(&r, "createProject", "BAD_USER_INPUT");
            let r = update(
                &srv,
                &u.token,
                json!({ "id": id, "name": name, "description": "changed" }),
            )
            .await;
            refused(&r, "updateProject", "BAD_USER_INPUT");
        }
        let long_description = "d".repeat(10_001);
        let r = create(&srv, &u.token, &org, "Fine", Some(&long_description)).await;
        refused(&r, "createProject", "BAD_USER_INPUT");
        let r = update(
            &srv,
            &u.token,
            json!({ "id": id, "description": long_description }),
        )
        .await;
        refused(&r, "updateProject", "BAD_USER_INPUT");

        // Nothing was written by the refused calls.
        let r = page(&srv, &u.token, &org, None, None).await;
        assert_eq!(ok(&r, "projects")["totalCount"], json!(1));
        let r = srv
            .gql(
                Some(&u.token),
                "query($id: ID!) { project(id: $id) { name description } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(
            ok(&r, "project"),
            &json!({ "name": "Original", "description": null })
        );

        // The limits themselves are accepted: 200 characters of name (multi-byte
        // counts as one), 10 000 of description.
        let name = "é".repeat(200);
        let r = create(&srv, &u.token, &org, &name, Some(&"d".repeat(10_000))).await;
        assert_eq!(ok(&r, "createProject")["name"], json!(name));
        let r = update(&srv, &u.token, json!({ "id": id, "name": "n".repeat(200) })).await;
        assert_eq!(ok(&r, "updateProject")["name"], json!("n".repeat(200)));

        srv.stop().await;
        tdb.drop_db().await;
    }
);

/// A `me { memberships { user { memberships … } } }` query with exactly
/// `depth` nested fields (the innermost a scalar).
fn nested_query(depth: usize) -> String {
    assert!(depth >= 2);
    // Objects: me, then memberships / user alternating; the leaf fits the last one.
    let objects: Vec<&str> = (0..depth - 1)
        .map(|i| match i {
            0 => "me",
            i if i % 2 == 1 => "memberships",
            _ => "user",
        })
        .collect();
    let leaf = if objects.last() == Some(&"memberships") {
        "role"
    } else {
        "id"
    };
    let mut q = String::from("query Deep ");
    for o in &objects {
        q.push_str(&format!("{{ {o} "));
    }
    q.push_str(&format!("{{ {leaf} }}"));
    for _ in &objects {
        q.push_str(" }");
    }
    q
}

evistream_tests::dual_db_test!(depth_and_complexity_are_limited, |db: DbKind| async move {
    let (tdb, srv) = start(db).await;
    let max_depth = tdb.config().limits.max_depth;
    assert_eq!(max_depth, 12, "the default this test is written for");
    let u = srv.register("deep").await;
    srv.project(&u.token, &u.org_id, "One").await;

    // At the limit: answered.
    let r = srv
        .gql(Some(&u.token), &nested_query(max_depth), json!({}))
        .await;
    let mut innermost = ok(&r, "me");
    for _ in 0..(max_depth - 2) / 2 {
        innermost = &innermost["memberships"][0]["user"];
    }
    assert_eq!(innermost["id"], json!(u.user_id), "{r}");
    // One deeper: refused before execution.
    let r = srv
        .gql(Some(&u.token), &nested_query(max_depth + 1), json!({}))
        .await;
    refused(&r, "me", "BAD_USER_INPUT");
    let r = srv.gql(Some(&u.token), &nested_query(40), json!({})).await;
    refused(&r, "me", "BAD_USER_INPUT");

    // Complexity: page sizes multiply; nested 100 × 100 is far over the limit.
    let vars = json!({ "org": u.org_id });
    let heavy = "query($org: ID!) { projects(organizationId: $org, first: 100) {
        edges { node { id documents(first: 100) { edges { node { id filename } } } } } } }";
    let r = srv.gql(Some(&u.token), heavy, vars.clone()).await;
    refused(&r, "projects", "BAD_USER_INPUT");
    // The same shape with small pages is fine.
    let light = "query($org: ID!) { projects(organizationId: $org, first: 5) {
        edges { node { id documents(first: 5) { edges { node { id filename } } } } } } }";
    let r = srv.gql(Some(&u.token), light, vars).await;
    assert_eq!(
        ok(&r, "projects")["edges"][0]["node"]["documents"]["edges"],
        json!([])
    );

    srv.stop().await;
    tdb.drop_db().await;
});
