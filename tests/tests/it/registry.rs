//! The plugin registry end to end, on SQLite and PostgreSQL: built-in
//! plugins listed; organizations install their own components (validated
//! against the declared world; a wrong world, forbidden imports, garbage,
//! bad manifests and id clashes refused with their codes, nothing stored);
//! a project bound to an installed converter converts through it; an LLM
//! adapter bound with config, granted hosts and write-only secrets reaches
//! a real local HTTP server with the secret injected by the host, and is
//! denied hosts it was not granted and private addresses the operator did
//! not allow.

use std::time::Duration;

use evistream::db::entities::project_plugins;
use evistream::jobs::JobRegistry;
use evistream::plugins::sha256_hex;
use evistream_tests::{DbKind, TestDb, TestServer, echo_server, eventually, fixtures, ok, refused};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

pub fn converter_manifest(id: &str, version: &str) -> String {
    format!(
        "id = \"{id}\"\nversion = \"{version}\"\nkind = \"pdf-converter\"\nwit = \"0.1.0\"\n\
         license = \"MIT\"\ndescription = \"echoes the input size\"\n"
    )
}

fn adapter_manifest() -> String {
    r#"
id = "echo-adapter"
version = "1.0.0"
kind = "llm-adapter"
wit = "0.1.0"
license = "Apache-2.0 OR MIT"
description = "posts the prompt to a URL"

[capabilities]
outbound_hosts = ["127.0.0.1", "localhost"]
config_keys = ["url", "header", "mode", "baseUrl"]
secrets = [{ name = "apiKey", header = "authorization", format = "Bearer {secret}" }]

[limits]
memory_mb = 64
timeout_ms = 5000
"#
    .to_owned()
}

fn reason(r: &Value) -> Option<&str> {
    r["errors"][0]["extensions"]["reason"].as_str()
}

async fn list(srv: &TestServer, token: &str) -> Vec<(String, String, bool)> {
    let r = srv.op(Some(token), "Plugins", json!({})).await;
    ok(&r, "plugins")
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["kind"].as_str().unwrap().to_owned(),
                p["builtIn"].as_bool().unwrap(),
            )
        })
        .collect()
}

evistream_tests::dual_db_test!(
    organizations_install_components_and_bind_them,
    |db: DbKind| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let srv = TestServer::start(tdb.config(), JobRegistry::new())
            .await
            .unwrap();
        let a = srv.register("alice").await;
        let b = srv.register("bob").await;

        // Built-ins, with licence and kind.
        let r = srv.op(Some(&a.token), "Plugins", json!({})).await;
        let builtins = ok(&r, "plugins").as_array().unwrap().clone();
        let pdf_text = builtins
            .iter()
            .find(|p| p["id"] == "pdf-text")
            .expect("pdf-text listed");
        assert_eq!(pdf_text["kind"], "PDF_CONVERTER");
        assert_eq!(pdf_text["license"], "Apache-2.0");
        assert_eq!(pdf_text["builtIn"], true);
        let before = list(&srv, &a.token).await;

        // Refusals store nothing.
        let wasm = fixtures::wasm("hostile_converter");
        let cases: Vec<(String, Vec<u8>, &str, Option<&str>)> = vec![
            (
                converter_manifest("wrong", "1.0.0"),
                fixtures::wasm("wrong_world"),
                "PLUGIN_FAILED",
                Some("INCOMPATIBLE"),
            ),
            (
                // An adapter's component declared as a converter imports wasi:http.
                converter_manifest("sneaky", "1.0.0"),
                fixtures::wasm("hostile_adapter"),
                "PLUGIN_FAILED",
                Some("CAPABILITY_DENIED"),
            ),
            (
                converter_manifest("garbage", "1.0.0"),
                b"\0asm not really".to_vec(),
                "PLUGIN_FAILED",
                Some("INCOMPATIBLE"),
            ),
            ("id = \"x\"".into(), wasm.clone(), "BAD_USER_INPUT", None),
            (
                converter_manifest("pdf-text", "9.9.9"),
                wasm.clone(),
                "CONFLICT",
                None,
            ),
            (
                converter_manifest("empty", "1.0.0"),
                Vec::new(),
                "BAD_USER_INPUT",
                None,
            ),
        ];
        for (manifest, bytes, code, why) in cases {
            let r = srv
                .install_plugin(&a.token, &a.org_id, &manifest, bytes)
                .await;
            refused(&r, "installPlugin", code);
            assert_eq!(reason(&r), why, "{r}");
        }
        assert_eq!(list(&srv, &a.token).await, before, "nothing was installed");

        // A good component.
        let r = srv
            .install_plugin(
                &a.token,
                &a.org_id,
                &converter_manifest("echo-converter", "1.0.0"),
                wasm.clone(),
            )
            .await;
        let p = ok(&r, "installPlugin");
        assert_eq!(p["id"], "echo-converter");
        assert_eq!(p["kind"], "PDF_CONVERTER");
        assert_eq!(p["builtIn"], false);
        assert_eq!(p["license"], "MIT");
        assert_eq!(p["sha256"], json!(sha256_hex(&wasm)));
        assert_eq!(p["organizationId"], json!(a.org_id));
        // Same id, version and bytes: the same plugin; other bytes: CONFLICT.
        let again = srv
            .install_plugin(
                &a.token,
                &a.org_id,
                &converter_manifest("echo-converter", "1.0.0"),
                wasm.clone(),
            )
            .await;
        assert_eq!(ok(&again, "installPlugin")["sha256"], p["sha256"]);
        let other = srv
            .install_plugin(
                &a.token,
                &a.org_id,
                &converter_manifest("echo-converter", "1.0.0"),
                fixtures::wasm("hostile_adapter"),
            )
            .await;
        refused(&other, "installPlugin", "CONFLICT");
        assert!(list(&srv, &a.token).await.contains(&(
            "echo-converter".into(),
            "PDF_CONVERTER".into(),
            false
        )));
        // Another organization neither sees it nor can bind it.
        assert_eq!(list(&srv, &b.token).await, before);
        let b_project = srv.project(&b.token, &b.org_id, "B's").await;
        let r = srv
            .op(
                Some(&b.token),
                "ConfigureProjectPlugins",
                json!({ "projectId": b_project, "converter": "echo-converter" }),
            )
            .await;
        refused(&r, "configureProjectPlugins", "NOT_FOUND");

        // Bound to a project, the installed converter does the conversion.
        let project = srv.project(&a.token, &a.org_id, "Bound").await;
        let r = srv
            .op(
                Some(&a.token),
                "ConfigureProjectPlugins",
                json!({ "projectId": project, "converter": "echo-converter" }),
            )
            .await;
        let bound = ok(&r, "configureProjectPlugins");
        assert_eq!(
            bound["converter"],
            json!({ "id": "echo-converter", "version": "1.0.0" })
        );
        assert_eq!(bound["llmAdapter"], Value::Null);
        // A kind mismatch is the caller's mistake.
        let r = srv
            .op(
                Some(&a.token),
                "ConfigureProjectPlugins",
                json!({ "projectId": project, "llmAdapter": "echo-converter" }),
            )
            .await;
        refused(&r, "configureProjectPlugins", "BAD_USER_INPUT");
        let pdf = b"%PDF-1.7\n% seventeen\n".to_vec();
        let n = pdf.len();
        let up = srv.upload(Some(&a.token), &project, "a.pdf", pdf).await;
        let doc_id = ok(&up, "uploadDocument")["id"].as_str().unwrap().to_owned();
        let doc = eventually(Duration::from_secs(60), || async {
            let r = srv
                .gql(
                    Some(&a.token),
                    "query($id: ID!) { document(id: $id) { status text converter } }",
                    json!({ "id": doc_id }),
                )
                .await;
            let d = r["data"]["document"].clone();
            (d["status"] == "COMPLETED" || d["status"] == "FAILED").then_some(d)
        })
        .await;
        assert_eq!(doc["status"], "COMPLETED", "{doc}");
        assert_eq!(doc["text"], json!(format!("# Echo\n\n{n} bytes")));
        assert_eq!(
            doc["converter"],
            json!(format!("echo-converter@1.0.0#{}", sha256_hex(&wasm)))
        );

        // Uninstall: refused while bound, then done.
        let un = json!({ "organizationId": a.org_id, "id": "echo-converter", "version": "1.0.0" });
        let r = srv.op(Some(&a.token), "UninstallPlugin", un.clone()).await;
        refused(&r, "uninstallPlugin", "CONFLICT");
        let r = srv
            .op(
                Some(&a.token),
                "ConfigureProjectPlugins",
                json!({ "projectId": project, "converter": "pdf-text" }),
            )
            .await;
        assert_eq!(
            ok(&r, "configureProjectPlugins")["converter"]["id"],
            "pdf-text"
        );
        let r = srv.op(Some(&a.token), "UninstallPlugin", un.clone()).await;
        assert_eq!(ok(&r, "uninstallPlugin"), &json!(true));
        assert_eq!(list(&srv, &a.token).await, before);
        let r = srv.op(Some(&a.token), "UninstallPlugin", un).await;
        refused(&r, "uninstallPlugin", "NOT_FOUND");

        srv.stop().await;
        tdb.drop_db().await;
    }
);

evistream_tests::dual_db_test!(
    an_llm_adapter_gets_its_secret_only_through_the_host_and_only_granted_hosts,
    |db: DbKind| async move {
        let port = echo_server().await;
        let tdb = TestDb::new(db).await.unwrap();
        let mut config = tdb.config();
        // Like an operator running a local model server.
        config.plugins.allow_private_networks = true;
        let srv = TestServer::start(config, JobRegistry::new()).await.unwrap();
        let a = srv.register("alice").await;
        let r = srv
            .install_plugin(
                &a.token,
                &a.org_id,
                &adapter_manifest(),
                fixtures::wasm("hostile_adapter"),
            )
            .await;
        assert_eq!(ok(&r, "installPlugin")["kind"], "LLM_ADAPTER");
        let project = srv.project(&a.token, &a.org_id, "LLM").await;
        let url = format!("http://127.0.0.1:{port}/echo");

        // Settings the manifest does not declare are refused.
        for (vars, what) in [
            (
                json!({ "llmAllowedHosts": ["api.evil.example"] }),
                "ungranted host",
            ),
            (
                json!({ "llmSecrets": { "password": "x" } }),
                "undeclared secret",
            ),
            (
                json!({ "llmConfig": { "temperatureOfMars": 3 } }),
                "undeclared config key",
            ),
            (
                json!({ "llmConfig": { "baseUrl": "https://api.evil.example/v1" } }),
                "baseUrl host",
            ),
            (
                json!({ "llmSecrets": { "apiKey": 42 } }),
                "non-string secret",
            ),
        ] {
            let mut v = vars;
            v["projectId"] = json!(project);
            v["llmAdapter"] = json!("echo-adapter");
            let r = srv.op(Some(&a.token), "GrantLlmHosts", v).await;
            refused(&r, "configureProjectPlugins", "BAD_USER_INPUT");
            assert!(r["errors"][0]["message"].is_string(), "{what}: {r}");
        }

        let r = srv
            .op(
                Some(&a.token),
                "ConfigureProjectPlugins",
                json!({
                    "projectId": project,
                    "llmAdapter": "echo-adapter",
                    "llmConfig": { "url": url },
                    "llmSecrets": { "apiKey": "sk-live-123" },
                }),
            )
            .await;
        let bound = ok(&r, "configureProjectPlugins");
        assert_eq!(
            bound["llmAdapter"],
            json!({ "id": "echo-adapter", "version": "1.0.0" })
        );
        assert!(!r.to_string().contains("sk-live-123"), "secret echoed: {r}");
        let r = srv
            .op(Some(&a.token), "ProjectPlugins", json!({ "id": project }))
            .await;
        let plugins = &ok(&r, "project")["plugins"];
        assert_eq!(plugins["llmSecretNames"], json!(["apiKey"]));
        assert_eq!(plugins["llmConfig"], json!({ "url": url }));
        assert!(
            !r.to_string().contains("sk-live-123"),
            "secret readable: {r}"
        );
        // Sealed at rest.
        let row = project_plugins::Entity::find_by_id(project.as_str())
            .one(&srv.node.app.db)
            .await
            .unwrap()
            .expect("binding row");
        let sealed = row.llm_secrets.expect("secrets stored");
        assert!(
            !sealed.contains("sk-live") && sealed.starts_with("v1:"),
            "{sealed}"
        );

        // No host granted yet: capability denied, nothing sent.
        let r = srv
            .op(
                Some(&a.token),
                "CheckLlmConnectionStats",
                json!({ "projectId": project }),
            )
            .await;
        refused(&r, "checkLlmConnection", "PLUGIN_FAILED");
        assert_eq!(reason(&r), Some("CAPABILITY_DENIED"), "{r}");

        // Granted: the request arrives with the secret the host injected.
        let r = srv
            .op(
                Some(&a.token),
                "GrantLlmHosts",
                json!({ "projectId": project, "llmAllowedHosts": ["127.0.0.1"] }),
            )
            .await;
        assert_eq!(
            ok(&r, "configureProjectPlugins")["llmAllowedHosts"],
            json!(["127.0.0.1"])
        );
        // Granting a host drops the secrets entered before (they were not
        // entered for it): whoever may edit the binding cannot redirect
        // them. They are entered again for the granted host.
        assert_eq!(
            ok(&r, "configureProjectPlugins")["llmSecretNames"],
            json!([])
        );
        let r = srv
            .op(
                Some(&a.token),
                "GrantLlmHosts",
                json!({ "projectId": project, "llmSecrets": { "apiKey": "sk-live-123" } }),
            )
            .await;
        assert_eq!(
            ok(&r, "configureProjectPlugins")["llmSecretNames"],
            json!(["apiKey"])
        );
        let r = srv
            .op(
                Some(&a.token),
                "CheckLlmConnectionStats",
                json!({ "projectId": project }),
            )
            .await;
        let check = ok(&r, "checkLlmConnection");
        assert_eq!(check["text"], "200 authorization=Bearer sk-live-123");
        assert_eq!(check["model"], "hostile");
        assert_eq!(check["requests"], 1);

        // The guest setting the credential itself is refused.
        let r = srv
            .op(
                Some(&a.token),
                "GrantLlmHosts",
                json!({ "projectId": project, "llmConfig": { "url": url, "header": "authorization: Bearer mine" } }),
            )
            .await;
        ok(&r, "configureProjectPlugins");
        let r = srv
            .op(
                Some(&a.token),
                "CheckLlmConnectionStats",
                json!({ "projectId": project }),
            )
            .await;
        assert_eq!(reason(&r), Some("CAPABILITY_DENIED"), "{r}");
        srv.stop().await;

        // The same binding on a node whose operator does not allow private
        // networks: the loopback address is refused after resolution.
        let strict = TestServer::start(tdb.config(), JobRegistry::new())
            .await
            .unwrap();
        let r = strict
            .op(
                Some(&a.token),
                "GrantLlmHosts",
                json!({ "projectId": project, "llmConfig": { "url": url } }),
            )
            .await;
        ok(&r, "configureProjectPlugins");
        let r = strict
            .op(
                Some(&a.token),
                "CheckLlmConnectionStats",
                json!({ "projectId": project }),
            )
            .await;
        refused(&r, "checkLlmConnection", "PLUGIN_FAILED");
        assert_eq!(reason(&r), Some("CAPABILITY_DENIED"), "{r}");
        assert!(
            r["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("non-public"),
            "{r}"
        );
        strict.stop().await;
        tdb.drop_db().await;
    }
);
