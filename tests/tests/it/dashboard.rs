//! The dashboard in a real browser (Debian's chromium through chromedriver;
//! the journey in Firefox ESR through geckodriver too):
//! the journey of `../shared/acceptance/dashboard.md` over two corpus PDFs
//! with the offline extractor, found by role and accessible name; a failed
//! sign-in shows its error; a VIEWER sees no edit controls and, in a second
//! browser, the reviewer's decision appear without a reload; no console
//! errors on any page; a screenshot of each page under the test's output.

use std::path::PathBuf;
use std::time::Duration;

use evistream::jobs::JobRegistry;
use evistream_tests::browser::{Browser, Engine};
use evistream_tests::{DbKind, TestDb, TestServer, corpus_pdf, ok};
use serde_json::json;

const PAPERS: [&str; 2] = ["PMC3321528.pdf", "PMC4183415.pdf"];

fn form_json() -> String {
    json!({
        "name": "RCT basics",
        "description": "Design and size",
        "fields": [
            { "name": "sample_size", "type": "INTEGER", "unit": "participants",
              "description": "Total number of participants randomised" },
            { "name": "design", "type": "ENUM", "options": ["parallel", "crossover", "cluster", "factorial"],
              "description": "Trial design" },
            { "name": "blinding", "type": "ENUM", "options": ["open-label", "single-blind", "double-blind"],
              "description": "Masking of participants and investigators" },
        ]
    })
    .to_string()
}

/// Where this run's screenshots go (kept after the test for people to look at).
fn shots_dir(db: DbKind) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("dashboard-screenshots")
        .join(format!("{db:?}").to_lowercase())
}

/// The PDFs as files chromedriver can hand to the file input.
fn paper_files(dir: &std::path::Path) -> Vec<PathBuf> {
    PAPERS
        .iter()
        .map(|name| {
            let p = dir.join(name);
            std::fs::write(&p, corpus_pdf(name)).expect("write a paper");
            p
        })
        .collect()
}

/// Fails with the page's console errors, if any.
async fn no_console_errors(b: &Browser, page: &str) {
    let errors = b.console_errors().await.expect("browser log");
    assert!(errors.is_empty(), "console errors on {page}: {errors:#?}");
}

/// Checks that what the page logs as an error reaches [`no_console_errors`]
/// (a probe logged through the page), so that its silence means something.
async fn console_is_watched(b: &Browser) {
    no_console_errors(b, "the sign-in page").await;
    b.client
        .execute("console.error('console probe');", vec![])
        .await
        .unwrap();
    // Firefox's output reaches the log file a moment later.
    for _ in 0..50 {
        let errors = b.console_errors().await.expect("browser log");
        if errors.iter().any(|e| e.contains("console probe")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{:?} did not report the probe logged as a console error",
        b.engine
    );
}

/// The state word shown in a document's row of the Documents table.
async fn document_states(b: &Browser) -> Vec<String> {
    let v = b
        .client
        .execute(
            "return [...document.querySelectorAll('tr[data-document] .badge')].map(e => e.textContent)",
            vec![],
        )
        .await
        .expect("states");
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

evistream_tests::dual_db_test!(the_reviewers_journey, |db: DbKind| async move {
    journey(db, Engine::Chromium).await
});

/// The journey in Firefox as well (the contract names both browsers); the
/// database makes no difference to the browser, so SQLite only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reviewers_journey_in_firefox() {
    let _process = evistream_tests::shared().await;
    journey(DbKind::Sqlite, Engine::Firefox).await
}

async fn journey(db: DbKind, engine: Engine) {
    let tdb = TestDb::new(db).await.unwrap();
    let srv = TestServer::start(tdb.config(), JobRegistry::new())
        .await
        .unwrap();
    let shots = match engine {
        Engine::Chromium => shots_dir(db),
        Engine::Firefox => shots_dir(db).with_file_name("firefox"),
    };
    for who in ["reviewer", "viewer"] {
        let _ = std::fs::remove_dir_all(shots.join(who));
    }
    let mut a = Browser::launch_engine(engine, &shots.join("reviewer"))
        .await
        .unwrap();
    let base = srv.base.clone();

    // A sign-in that fails shows why.
    a.goto(&format!("{base}/")).await.unwrap();
    a.find("button", "Sign in").await.unwrap();
    a.shot("sign-in").await.unwrap();
    console_is_watched(&a).await;
    // The first load of the sign-in page, compressed, as the browser counts it.
    let bytes = a
        .client
        .execute(
            "const n = performance.getEntriesByType('navigation')[0]; \
             return n.transferSize + performance.getEntriesByType('resource') \
               .reduce((s, r) => s + r.transferSize, 0);",
            vec![],
        )
        .await
        .unwrap();
    let bytes = bytes.as_u64().unwrap();
    eprintln!("dashboard first load: {bytes} bytes transferred");
    assert!(
        (1_000..=300_000).contains(&bytes),
        "the sign-in page's first load transferred {bytes} bytes"
    );
    let email = format!("ada-{}@example.org", uuid::Uuid::new_v4().simple());
    a.fill("textbox", "Email", &email).await.unwrap();
    a.fill("textbox", "Password", "not the password")
        .await
        .unwrap();
    a.click("button", "Sign in").await.unwrap();
    let text = a
        .wait_js(
            "an alert",
            "const e = document.querySelector('[role=alert]'); return e && e.textContent;",
            vec![],
        )
        .await
        .unwrap();
    let text = text.as_str().unwrap_or_default();
    assert!(text.contains("Wrong email or password"), "{text}");
    a.shot("sign-in-failed").await.unwrap();

    // Create an account, sign out, sign in.
    a.click("link", "Create account").await.unwrap();
    // The sign-in page's Email box stays until the new page is drawn.
    a.find("textbox", "Name").await.unwrap();
    a.fill("textbox", "Email", &email).await.unwrap();
    a.fill("textbox", "Password", "correct horse battery")
        .await
        .unwrap();
    a.fill("textbox", "Name", "Ada").await.unwrap();
    a.shot("create-account").await.unwrap();
    a.click("button", "Create account").await.unwrap();
    // Then sign in, on the sign-in page, the address already filled in.
    a.wait_text("Account created. Sign in to start.")
        .await
        .unwrap();
    let prefilled = a.find("textbox", "Email").await.unwrap();
    assert_eq!(
        prefilled.prop("value").await.unwrap().as_deref(),
        Some(email.as_str())
    );
    a.fill("textbox", "Email", &email).await.unwrap();
    a.fill("textbox", "Password", "correct horse battery")
        .await
        .unwrap();
    a.click("button", "Sign in").await.unwrap();

    // A reload signs in again from the stored refresh token; the access
    // token itself is kept in memory only.
    a.find("button", "New project").await.unwrap();
    a.client.refresh().await.unwrap();
    a.find("button", "New project").await.unwrap();
    let stored = a
        .client
        .execute(
            "return Object.keys(localStorage).map(k => k + '=' + localStorage.getItem(k)).join('\\n')",
            vec![],
        )
        .await
        .unwrap();
    let stored = stored.as_str().unwrap_or_default().to_owned();
    assert!(stored.contains("evistream.refreshToken="), "{stored}");
    assert!(!stored.contains("eyJ"), "no JWT in storage: {stored}");

    // A project.
    a.click("button", "New project").await.unwrap();
    a.fill("textbox", "Name", "Hypertension trials")
        .await
        .unwrap();
    a.click("button", "Create").await.unwrap();
    a.find("link", "Documents").await.unwrap();
    a.shot("documents-empty").await.unwrap();
    let project_url = a.client.current_url().await.unwrap().to_string();
    let project_id = project_url
        .split("#/p/")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .expect("project id in the URL")
        .to_owned();

    // Two PDFs, converted live (the page is never reloaded).
    let tmp = tempfile::tempdir().unwrap();
    let files = paper_files(tmp.path());
    let list = files
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    a.fill("file", "Upload PDFs", &list).await.unwrap();
    for name in PAPERS {
        a.wait_text(name).await.unwrap();
    }
    a.wait_js(
        "both documents Completed",
        "return [...document.querySelectorAll('tr[data-document] .badge')].filter(e => e.textContent === 'Completed').length === 2;",
        vec![],
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: states {:?}", futures::executor::block_on(document_states(&a))));
    a.shot("documents-completed").await.unwrap();
    no_console_errors(&a, "documents").await;

    // A form from JSON, approved.
    a.click("link", "Forms").await.unwrap();
    a.fill("textbox", "Form JSON", &form_json()).await.unwrap();
    a.click("button", "Import").await.unwrap();
    a.wait_text("Awaiting review").await.unwrap();
    a.shot("forms-imported").await.unwrap();
    a.click("button", "Approve").await.unwrap();
    a.wait_text("Active").await.unwrap();
    a.click("button", "Program").await.unwrap();
    a.wait_text("Program of v1").await.unwrap();
    a.shot("forms-approved").await.unwrap();
    no_console_errors(&a, "forms").await;

    // The extraction, watched to the end.
    a.click("link", "Extraction").await.unwrap();
    a.click("button", "Run extraction").await.unwrap();
    a.find("progressbar", "Extraction progress").await.unwrap();
    a.wait_js(
        "the progress bar at 100 and the run Succeeded",
        "const p = document.querySelector('[role=progressbar]'); \
         const s = document.querySelector('.run-state'); \
         return p && p.getAttribute('aria-valuenow') === '100' && s && s.textContent === 'Succeeded' \
           && document.body.innerText.includes('2 of 2 documents done');",
        vec![],
    )
    .await
    .unwrap();
    a.shot("extraction-done").await.unwrap();
    no_console_errors(&a, "extraction").await;

    // A VIEWER in a second browser, on the same review page.
    let viewer = srv.register("viewer").await;
    let me = srv
        .gql(Some(&viewer.token), "query { me { id } }", json!({}))
        .await;
    ok(&me, "me");
    let owner_token = {
        let r = srv
            .op(
                None,
                "Login",
                json!({ "email": email, "password": "correct horse battery" }),
            )
            .await;
        ok(&r, "login")["accessToken"].as_str().unwrap().to_owned()
    };
    let org = srv
        .gql(
            Some(&owner_token),
            "query($id: ID!) { project(id: $id) { organizationId } }",
            json!({ "id": project_id }),
        )
        .await;
    let org = ok(&org, "project")["organizationId"]
        .as_str()
        .unwrap()
        .to_owned();
    srv.add_member(&owner_token, &org, &viewer.email, "VIEWER")
        .await;

    // Review: the first paper's values beside its page.
    a.click("link", "Review").await.unwrap();
    a.click("link", PAPERS[0]).await.unwrap();
    a.find_in(
        Some("li.value-row[data-path='sample_size']"),
        "button",
        "Accept",
    )
    .await
    .unwrap();
    let review_url = a.client.current_url().await.unwrap().to_string();
    // The first value with evidence, selected, is drawn on its page.
    let quoted = a
        .wait_js(
            "a value with a quote",
            "const r = [...document.querySelectorAll('li.value-row')].find(r => r.querySelector('blockquote')); \
             return r && r.dataset.path;",
            vec![],
        )
        .await
        .unwrap();
    let quoted = quoted.as_str().unwrap().to_owned();
    a.client
        .find(fantoccini::Locator::Css(&format!(
            "li.value-row[data-path='{quoted}'] code.path"
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let boxes = a
        .wait_js(
            "highlight boxes on the page image",
            "const img = document.querySelector('.page-layer img'); \
             const b = document.querySelectorAll('[data-evidence-box]'); \
             return img && img.complete && img.naturalWidth > 0 && b.length;",
            vec![],
        )
        .await
        .unwrap();
    assert!(boxes.as_u64().unwrap() >= 1, "{boxes}");
    let head = a
        .client
        .execute(
            "return document.querySelector(\"li.value-row[data-path='sample_size'] .value-head\").textContent",
            vec![],
        )
        .await
        .unwrap();
    let head = head.as_str().unwrap_or_default();
    assert!(
        head.contains("Unreviewed")
            && (head.contains("confidence 0.") || head.contains("confidence 1.00")),
        "state, grounding and confidence: {head}"
    );
    a.shot("review-evidence").await.unwrap();

    let mut v = Browser::launch_engine(engine, &shots.join("viewer"))
        .await
        .unwrap();
    v.goto(&format!("{base}/")).await.unwrap();
    v.fill("textbox", "Email", &viewer.email).await.unwrap();
    v.fill("textbox", "Password", "correct horse")
        .await
        .unwrap();
    v.click("button", "Sign in").await.unwrap();
    v.find("button", "Sign out").await.unwrap();
    v.goto(&review_url).await.unwrap();
    // The page is drawn and its subscription is live.
    v.wait_js(
        "the viewer's review page, live",
        "return document.querySelectorAll('li.value-row').length > 0 && document.body.dataset.live === 'connected';",
        vec![],
    )
    .await
    .unwrap();
    for name in ["Accept", "Correct", "Reject", "Complete review"] {
        assert!(
            !v.has("button", name).await.unwrap(),
            "a VIEWER sees the {name} button"
        );
    }
    let before = v
        .client
        .execute(
            "return document.querySelector(\"li.value-row[data-path='design'] .badge\").textContent",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(before, json!("Unreviewed"));
    v.shot("viewer-review").await.unwrap();

    // Accept one value, correct another.
    a.find_in(Some("li.value-row[data-path='design']"), "button", "Accept")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    a.wait_js(
        "design Verified",
        "const b = document.querySelector(\"li.value-row[data-path='design'] .badge\"); return b && b.textContent === 'Verified';",
        vec![],
    )
    .await
    .unwrap();
    // The viewer's page follows without a reload.
    v.wait_js(
        "the viewer sees design Verified",
        "const b = document.querySelector(\"li.value-row[data-path='design'] .badge\"); return b && b.textContent === 'Verified';",
        vec![],
    )
    .await
    .unwrap();
    v.shot("viewer-sees-decision").await.unwrap();
    no_console_errors(&v, "the viewer's review").await;

    a.find_in(
        Some("li.value-row[data-path='sample_size']"),
        "button",
        "Correct",
    )
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    a.fill("textbox", "Value", "4321").await.unwrap();
    a.shot("review-correcting").await.unwrap();
    a.find_in(
        Some("li.value-row[data-path='sample_size']"),
        "button",
        "Save",
    )
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    a.wait_js(
        "sample_size Corrected",
        "const b = document.querySelector(\"li.value-row[data-path='sample_size'] .badge\"); return b && b.textContent === 'Corrected';",
        vec![],
    )
    .await
    .unwrap();
    a.click("button", "Complete review").await.unwrap();
    a.find("button", "Reopen review").await.unwrap();
    a.shot("review-complete").await.unwrap();
    no_console_errors(&a, "review").await;

    // Results show the corrected value; the wide CSV holds it.
    a.click("link", "Results").await.unwrap();
    a.wait_js(
        "the corrected value in Results",
        "const t = document.querySelector('table.results'); return t && [...t.querySelectorAll('tbody tr')].some(r => r.textContent.includes(arguments[0]) && r.textContent.includes('4321'));",
        vec![json!(PAPERS[0])],
    )
    .await
    .unwrap();
    let rows = a
        .client
        .execute(
            "return document.querySelectorAll('table.results tbody tr').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(rows, json!(2), "one row per document");
    a.shot("results").await.unwrap();
    a.click("button", "Export").await.unwrap();
    a.click("button", "CSV (wide)").await.unwrap();
    let link = a.find("link", "Download CSV (wide)").await.unwrap();
    let href = link.attr("href").await.unwrap().expect("a link");
    let url = if href.starts_with("http") {
        href
    } else {
        format!("{base}{href}")
    };
    // A signed link: no header needed.
    let csv = reqwest::get(&url).await.unwrap();
    assert!(csv.status().is_success(), "{}", csv.status());
    let csv = csv.text().await.unwrap();
    assert!(csv.contains("4321"), "{csv}");
    a.shot("results-exported").await.unwrap();

    // Settings: the LLM adapter's controls.
    a.click("link", "Settings").await.unwrap();
    for (role, name) in [
        ("combobox", "LLM adapter"),
        ("textbox", "Base URL"),
        ("textbox", "Model"),
        ("textbox", "API key"),
        ("button", "Save"),
        ("button", "Test connection"),
    ] {
        a.find(role, name).await.unwrap();
    }
    a.shot("settings").await.unwrap();
    no_console_errors(&a, "results and settings").await;

    // The account: members with roles; an API key shown once, then revoked.
    a.click("link", &email).await.unwrap();
    a.wait_text(&viewer.email).await.unwrap();
    a.fill("textbox", "Key name", "nightly export")
        .await
        .unwrap();
    a.click("button", "Create API key").await.unwrap();
    let secret = a
        .find("textbox", "API key secret (shown once: copy it now)")
        .await
        .unwrap();
    let secret = secret.prop("value").await.unwrap().unwrap_or_default();
    let me = srv
        .gql(Some(&secret), "query { plugins { id } }", json!({}))
        .await;
    ok(&me, "plugins");
    a.shot("account").await.unwrap();
    a.click("button", "Revoke nightly export").await.unwrap();
    a.click("button", "Revoke").await.unwrap();
    a.wait_js(
        "the key revoked",
        "return [...document.querySelectorAll('tr')].some(r => r.textContent.includes('nightly export') && r.textContent.includes('Revoked'));",
        vec![],
    )
    .await
    .unwrap();
    let r = srv
        .gql(Some(&secret), "query { plugins { id } }", json!({}))
        .await;
    assert_eq!(
        evistream_tests::error_code(&r),
        Some("UNAUTHENTICATED"),
        "{r}"
    );
    no_console_errors(&a, "account").await;

    // The viewer's pages hold no edit controls either.
    for (section, controls) in [
        ("documents", vec![("file", "Upload PDFs")]),
        ("forms", vec![("button", "New form"), ("button", "Import")]),
        ("extraction", vec![("button", "Run extraction")]),
        ("settings", vec![("button", "Save")]),
    ] {
        v.goto(&format!("{base}/#/p/{project_id}/{section}"))
            .await
            .unwrap();
        v.find("link", "Results").await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        for (role, name) in controls {
            assert!(
                !v.has(role, name).await.unwrap(),
                "a VIEWER sees {role} {name:?} on {section}"
            );
        }
        v.shot(&format!("viewer-{section}")).await.unwrap();
    }
    no_console_errors(&v, "the viewer's pages").await;

    a.close().await;
    v.close().await;
    srv.node.shutdown().await;
    tdb.drop_db().await;
}

/// Signs in through the page.
async fn sign_in(b: &Browser, base: &str, email: &str, password: &str) {
    b.goto(&format!("{base}/#/signin")).await.unwrap();
    b.fill("textbox", "Email", email).await.unwrap();
    b.fill("textbox", "Password", password).await.unwrap();
    b.click("button", "Sign in").await.unwrap();
    b.find("button", "Sign out").await.unwrap();
}

/// Waits for the latest run's state word to be `state`.
async fn run_state(b: &Browser, state: &str) {
    b.wait_js(
        &format!("the run {state}"),
        "const s = document.querySelector('.run-state'); return s && s.textContent === arguments[0];",
        vec![json!(state)],
    )
    .await
    .unwrap();
}

/// Waits for the state word of `path`'s row to be `state`.
async fn row_state(b: &Browser, path: &str, state: &str) {
    b.wait_js(
        &format!("{path} {state}"),
        "const b = document.querySelector(`.value-row[data-path='${arguments[0]}'] .badge`); \
         return b && b.textContent === arguments[1];",
        vec![json!(path), json!(state)],
    )
    .await
    .unwrap();
}

evistream_tests::dual_db_test!(dual_extraction_in_the_browser, |db: DbKind| async move {
    let tdb = TestDb::new(db).await.unwrap();
    let srv = TestServer::start(tdb.config(), JobRegistry::new())
        .await
        .unwrap();
    let base = srv.base.clone();
    let owner = srv.register("owner").await;
    let ra = srv.register("ra").await;
    let rb = srv.register("rb").await;
    for r in [&ra, &rb] {
        srv.add_member(&owner.token, &owner.org_id, &r.email, "REVIEWER")
            .await;
    }
    let project = srv.project(&owner.token, &owner.org_id, "Dual").await;
    let docs = srv
        .converted_papers(&owner.token, &project, &[PAPERS[0]])
        .await;
    let version = srv
        .approved_version(
            &owner.token,
            &project,
            json!([{ "name": "sample_size", "type": "INTEGER",
                     "description": "Total number of participants randomised" }]),
        )
        .await;
    let r = srv
        .op(
            Some(&owner.token),
            "ConfigureReview",
            json!({ "projectId": project, "mode": "DUAL", "reviewersPerDocument": 2 }),
        )
        .await;
    ok(&r, "configureReview");
    srv.run_extraction(&owner.token, &project, &version).await;
    let url = format!("{base}/#/p/{project}/review/{}", docs[0]);

    // Reviewer A extracts blind: no extractor values, no one else's.
    let shots = shots_dir(db).join("dual");
    let _ = std::fs::remove_dir_all(&shots);
    let mut b = Browser::launch(&shots).await.unwrap();
    sign_in(&b, &base, &ra.email, "correct horse").await;
    b.goto(&url).await.unwrap();
    b.find("button", "Submit my extraction").await.unwrap();
    for name in ["Accept", "Correct", "Complete review"] {
        assert!(
            !b.has("button", name).await.unwrap(),
            "a blind reviewer sees {name}"
        );
    }
    assert!(
        b.client
            .find_all(fantoccini::Locator::Css("table.dual"))
            .await
            .unwrap()
            .is_empty()
    );
    b.fill("textbox", "sample_size", "111").await.unwrap();
    b.shot("blind-extraction").await.unwrap();
    b.click("button", "Submit my extraction").await.unwrap();
    b.wait_js(
        "the side-by-side view after submitting",
        "return !!document.querySelector('table.dual');",
        vec![],
    )
    .await
    .unwrap();
    no_console_errors(&b, "the blind extraction").await;

    // Reviewer B submits through the API; the owner adjudicates.
    let r = srv
        .op(
            Some(&rb.token),
            "SubmitReviewerValues",
            json!({ "documentId": docs[0], "formVersionId": version,
                    "values": { "sample_size": 222 }, "submit": true }),
        )
        .await;
    ok(&r, "submitReviewerValues");
    b.click("button", "Sign out").await.unwrap();
    sign_in(&b, &base, &owner.email, "correct horse").await;
    b.goto(&url).await.unwrap();
    row_state(&b, "sample_size", "Disputed").await;
    let head = b
        .client
        .execute(
            "return document.querySelector('table.dual thead').textContent",
            vec![],
        )
        .await
        .unwrap();
    let head = head.as_str().unwrap();
    assert!(
        head.contains("Extractor") && head.contains(&ra.email) && head.contains(&rb.email),
        "{head}"
    );
    let row = b
        .client
        .execute(
            "return document.querySelector(\".value-row[data-path='sample_size']\").textContent",
            vec![],
        )
        .await
        .unwrap();
    let row = row.as_str().unwrap();
    assert!(row.contains("111") && row.contains("222"), "{row}");
    b.shot("adjudication").await.unwrap();
    b.find_in(
        Some(".value-row[data-path='sample_size']"),
        "button",
        "Resolve",
    )
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    b.fill("textbox", "Value", "150").await.unwrap();
    b.fill("textbox", "Why", "Table 1 gives 150 randomised")
        .await
        .unwrap();
    b.find_in(
        Some(".value-row[data-path='sample_size']"),
        "button",
        "Save",
    )
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    row_state(&b, "sample_size", "Resolved").await;
    b.click("button", "Complete review").await.unwrap();
    b.find("button", "Reopen review").await.unwrap();
    b.shot("adjudicated").await.unwrap();
    no_console_errors(&b, "adjudication").await;
    let r = srv
        .op(
            Some(&owner.token),
            "Review",
            json!({ "documentId": docs[0], "formVersionId": version }),
        )
        .await;
    let rv = ok(&r, "review");
    assert_eq!(rv["status"], "COMPLETE");
    assert_eq!(rv["values"][0]["value"], 150);

    b.close().await;
    srv.node.shutdown().await;
    tdb.drop_db().await;
});

/// Fills the last visible textbox named `name` (the newest of repeated ones).
async fn fill_last(b: &Browser, name: &str, text: &str) {
    let all = b.all_by_role(None, "textbox", name).await.unwrap();
    let e = all.last().unwrap_or_else(|| panic!("no textbox {name:?}"));
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

/// Picks `value` in the last visible combobox named `name`.
async fn choose_last(b: &Browser, name: &str, value: &str) {
    let all = b.all_by_role(None, "combobox", name).await.unwrap();
    all.last()
        .unwrap_or_else(|| panic!("no combobox {name:?}"))
        .select_by_value(value)
        .await
        .unwrap();
}

evistream_tests::dual_db_test!(editing_tools_in_the_browser, |db: DbKind| async move {
    let tdb = TestDb::new(db).await.unwrap();
    let fake = evistream_tests::llm::FakeLlm::start().await;
    let mut config = tdb.config();
    config.plugins.allow_private_networks = true; // the provider is on loopback
    let srv = TestServer::start(config, JobRegistry::new()).await.unwrap();
    let base = srv.base.clone();
    let owner = srv.register("editor").await;
    let project = srv.project(&owner.token, &owner.org_id, "Tools").await;
    let docs = srv
        .converted_papers(&owner.token, &project, &[PAPERS[1]])
        .await;
    let shots = shots_dir(db).join("tools");
    let _ = std::fs::remove_dir_all(&shots);
    let mut b = Browser::launch(&shots).await.unwrap();
    sign_in(&b, &base, &owner.email, "correct horse").await;

    // Projects: rename one, create and delete another (after confirming).
    b.click("button", "Rename Tools").await.unwrap();
    b.fill("textbox", "Name", "Tools renamed").await.unwrap();
    b.click("button", "Save").await.unwrap();
    b.find("link", "Tools renamed").await.unwrap();
    b.click("button", "New project").await.unwrap();
    b.fill("textbox", "Name", "Scratch").await.unwrap();
    b.click("button", "Create").await.unwrap();
    b.find("link", "Documents").await.unwrap();
    b.click("link", "Projects").await.unwrap();
    b.click("button", "Delete Scratch").await.unwrap();
    b.shot("confirm-delete").await.unwrap();
    b.click("button", "Delete").await.unwrap();
    b.wait_js(
        "Scratch gone",
        "return !document.body.innerText.includes('Scratch');",
        vec![],
    )
    .await
    .unwrap();
    b.find("link", "Tools renamed").await.unwrap();

    // The form builder: typed fields, a list with a sub-field.
    b.goto(&format!("{base}/#/p/{project}/forms"))
        .await
        .unwrap();
    b.click("button", "New form").await.unwrap();
    b.fill("textbox", "Form name", "Built here").await.unwrap();
    b.click("button", "Add field").await.unwrap();
    fill_last(&b, "Field name", "sample_size").await;
    choose_last(&b, "Type", "INTEGER").await;
    fill_last(&b, "Description", "Total number of participants randomised").await;
    b.click("button", "Add field").await.unwrap();
    fill_last(&b, "Field name", "arms").await;
    choose_last(&b, "Type", "ARRAY").await;
    b.click("button", "Add sub-field").await.unwrap();
    fill_last(&b, "Field name", "name").await;
    b.shot("builder").await.unwrap();
    b.click("button", "Save").await.unwrap();
    b.wait_text("Awaiting review").await.unwrap();
    b.click("button", "Approve").await.unwrap();
    b.wait_text("Active").await.unwrap();
    // A second version adds an ENUM; the two programs compare line by line.
    b.click("button", "Edit fields").await.unwrap();
    b.click("button", "Add field").await.unwrap();
    fill_last(&b, "Field name", "blinding").await;
    choose_last(&b, "Type", "ENUM").await;
    fill_last(&b, "Options", "open-label, double-blind").await;
    b.click("button", "Save").await.unwrap();
    b.wait_text("v2").await.unwrap();
    b.click("button", "Compare versions").await.unwrap();
    b.wait_js(
        "a diff adding blinding",
        "return [...document.querySelectorAll('.diff .add')].some(l => l.textContent.includes('blinding'));",
        vec![],
    )
    .await
    .unwrap();
    b.shot("compare").await.unwrap();
    b.click("button", "Close").await.unwrap();
    let fields = srv
        .gql(
            Some(&owner.token),
            "query($id: ID!) { project(id: $id) { forms { versions { number fields } } } }",
            json!({ "id": project }),
        )
        .await;
    let versions = ok(&fields, "project")["forms"][0]["versions"].clone();
    assert_eq!(
        versions[0]["fields"],
        json!([
            { "name": "sample_size", "type": "INTEGER",
              "description": "Total number of participants randomised" },
            { "name": "arms", "type": "ARRAY", "fields": [ { "name": "name", "type": "TEXT" } ] },
        ])
    );
    assert_eq!(
        versions[1]["fields"][2],
        json!({ "name": "blinding", "type": "ENUM", "options": ["open-label", "double-blind"] })
    );
    no_console_errors(&b, "forms").await;

    // Extraction of v1, then review by keyboard.
    b.click("link", "Extraction").await.unwrap();
    b.click("button", "Run extraction").await.unwrap();
    run_state(&b, "Succeeded").await;
    b.goto(&format!("{base}/#/p/{project}/review/{}", docs[0]))
        .await
        .unwrap();
    b.find("button", "Complete review").await.unwrap();
    b.press('a').await.unwrap();
    row_state(&b, "sample_size", "Verified").await;
    // Selection moved on; `k` goes back, `c` opens the correction.
    b.press('k').await.unwrap();
    b.press('c').await.unwrap();
    let value = b.find("textbox", "Value").await.unwrap();
    value.clear().await.unwrap();
    value.send_keys("77").await.unwrap();
    b.click("button", "Save").await.unwrap();
    row_state(&b, "sample_size", "Corrected").await;
    b.shot("review-keyboard").await.unwrap();

    // Results filters.
    b.click("link", "Results").await.unwrap();
    b.wait_text("1 of 1 documents").await.unwrap();
    b.find("combobox", "Show")
        .await
        .unwrap()
        .select_by_value("disputed")
        .await
        .unwrap();
    b.wait_text("0 of 1 documents").await.unwrap();
    b.shot("results-filtered").await.unwrap();

    // Settings: an LLM adapter, saved and tested against a local server
    // that speaks the OpenAI protocol.
    b.click("link", "Settings").await.unwrap();
    b.find("combobox", "LLM adapter")
        .await
        .unwrap()
        .select_by_value("openai-compatible")
        .await
        .unwrap();
    b.fill("textbox", "Base URL", &fake.base_url).await.unwrap();
    b.fill("textbox", "Model", "test-model").await.unwrap();
    b.fill("textbox", "API key", "sk-browser-1").await.unwrap();
    b.click("button", "Save").await.unwrap();
    b.wait_text("Saved.").await.unwrap();
    b.click("button", "Test connection").await.unwrap();
    b.wait_text("Connected to test-model").await.unwrap();
    b.shot("settings-tested").await.unwrap();
    let (headers, _) = fake
        .requests()
        .pop()
        .expect("the check reached the provider");
    assert_eq!(headers["authorization"], "Bearer sk-browser-1");
    no_console_errors(&b, "settings").await;

    // A run through the (slow) LLM, cancelled from the page.
    fake.set_latency(Duration::from_secs(4));
    b.click("link", "Extraction").await.unwrap();
    b.click("button", "Run extraction").await.unwrap();
    run_state(&b, "Running").await;
    b.click("button", "Cancel").await.unwrap();
    run_state(&b, "Cancelled").await;
    b.shot("extraction-cancelled").await.unwrap();
    fake.set_latency(Duration::ZERO);
    // Retried from the page, the cancelled document runs to the end.
    b.click("button", "Retry 1 failed or cancelled")
        .await
        .unwrap();
    run_state(&b, "Succeeded").await;
    b.wait_text("1 of 1 documents done").await.unwrap();
    b.shot("extraction-retried").await.unwrap();

    // Documents: delete, after confirming.
    b.click("link", "Documents").await.unwrap();
    b.click("button", &format!("Delete {}", PAPERS[1]))
        .await
        .unwrap();
    b.click("button", "Delete").await.unwrap();
    b.wait_text("No documents yet.").await.unwrap();
    // Dropped files: a text file is refused with the server's reason; a
    // PDF that will not convert shows Failed and why.
    b.client
        .execute(
            "const dt = new DataTransfer(); \
             dt.items.add(new File(['%PDF-1.4\\nthis is not a PDF body at all\\n%%EOF\\n'], 'broken.pdf', { type: 'application/pdf' })); \
             dt.items.add(new File(['just notes'], 'notes.txt', { type: 'text/plain' })); \
             document.querySelector('.drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));",
            vec![],
        )
        .await
        .unwrap();
    b.wait_js(
        "the text file refused",
        "const a = [...document.querySelectorAll('.uploads [role=alert]')].find(e => e.textContent.startsWith('notes.txt: ')); return a && a.textContent;",
        vec![],
    )
    .await
    .unwrap();
    let why = b
        .wait_js(
            "broken.pdf Failed with a reason",
            "const r = [...document.querySelectorAll('tr[data-document]')].find(r => r.textContent.includes('broken.pdf')); \
             return r && r.querySelector('.badge').textContent === 'Failed' && r.querySelector('.why') && r.querySelector('.why').textContent;",
            vec![],
        )
        .await
        .unwrap();
    assert!(!why.as_str().unwrap_or_default().is_empty(), "{why}");
    b.shot("documents-dropped").await.unwrap();
    no_console_errors(&b, "documents").await;

    b.close().await;
    srv.node.shutdown().await;
    tdb.drop_db().await;
});
