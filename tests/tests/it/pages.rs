//! Pages as images, on SQLite and PostgreSQL: a signed URL renders the page
//! in the sandbox at the width asked, without any token, then serves it
//! from the cache; an altered, re-targeted or expired URL is refused (403)
//! and renders nothing; bad pages and widths are BAD_USER_INPUT; another
//! organization's document is NOT_FOUND; a document keeps images at a few
//! widths only; a converter that cannot render gives a placeholder and a
//! warning on the document.

use std::time::Duration;

use evistream::jobs::JobRegistry;
use evistream_tests::{DbKind, TestDb, TestServer, assert_code, eventually, fixtures, ok};
use serde_json::{Value, json};

use super::registry::converter_manifest;

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&png[16..20]), be(&png[20..24]))
}

async fn url(srv: &TestServer, token: &str, doc: &str, page: i64, width: i64) -> Value {
    srv.gql(
        Some(token),
        "query($id: ID!, $p: Int!, $w: Int!) { document(id: $id) { pageImageUrl(page: $p, width: $w) } }",
        json!({ "id": doc, "p": page, "w": width }),
    )
    .await
}

evistream_tests::dual_db_test!(
    pages_render_through_signed_urls_only,
    |db: DbKind| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let srv = TestServer::start(tdb.config(), JobRegistry::new())
            .await
            .unwrap();
        let owner = srv.register("owner").await;
        let outsider = srv.register("outsider").await;
        let project = srv.project(&owner.token, &owner.org_id, "Pages").await;
        let doc = srv
            .converted_papers(&owner.token, &project, &["PMC3321528.pdf"])
            .await
            .remove(0);
        let r = srv
            .gql(
                Some(&owner.token),
                "query($id: ID!) { document(id: $id) { pageCount layout { width height } } }",
                json!({ "id": doc }),
            )
            .await;
        let d = ok(&r, "document").clone();
        let pages = d["pageCount"].as_i64().unwrap();
        let (pw, ph) = (
            d["layout"][1]["width"].as_f64().unwrap(),
            d["layout"][1]["height"].as_f64().unwrap(),
        );

        let r = url(&srv, &owner.token, &doc, 2, 800).await;
        let link = ok(&r, "document")["pageImageUrl"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(link.starts_with(&srv.base), "{link}");
        assert!(!link.contains(&owner.token), "no token in a URL");
        // A plain GET: no Authorization header.
        let get = |u: String| async move {
            let r = reqwest::get(u).await.unwrap();
            let status = r.status().as_u16();
            let ctype = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, ctype, r.bytes().await.unwrap().to_vec())
        };
        let (status, ctype, png) = get(link.clone()).await;
        assert_eq!((status, ctype.as_deref()), (200, Some("image/png")));
        let (w, h) = png_size(&png);
        assert_eq!(w, 800);
        assert!(h.abs_diff((800.0 * ph / pw).round() as u32) <= 1, "{h}");
        assert!(png.len() > 20_000, "a page of text, not a blank");
        // Cached: the same bytes again, and the blob is there.
        let (_, _, again) = get(link.clone()).await;
        assert_eq!(again, png);
        let op = srv.node.app.blobs.operator().clone();
        let key = format!("orgs/{}/documents/{doc}/page-2-800.png", owner.org_id);
        assert_eq!(op.read(&key).await.unwrap().to_vec(), png);

        // Altered links: 403, nothing rendered.
        let flipped = {
            let i = link.rfind("signature=").unwrap() + "signature=".len();
            let mut l = link.clone().into_bytes();
            l[i] = if l[i] == b'0' { b'1' } else { b'0' };
            String::from_utf8(l).unwrap()
        };
        let wider = link.replace("width=800", "width=801");
        let other_page = link.replace("/pages/2.png", "/pages/3.png");
        let expired = {
            let past = chrono::Utc::now().timestamp() - 5;
            let sig = evistream::documents::pages::sign(&srv.node.app.url_key, &doc, 2, 640, past);
            format!(
                "{}/documents/{doc}/pages/2.png?width=640&expires={past}&signature={sig}",
                srv.base
            )
        };
        for bad in [
            flipped,
            wider,
            other_page,
            expired,
            format!("{}/documents/{doc}/pages/2.png", srv.base),
        ] {
            let (status, _, _) = get(bad.clone()).await;
            assert_eq!(status, 403, "{bad}");
        }
        for key in ["page-2-801.png", "page-3-800.png", "page-2-640.png"] {
            let k = format!("orgs/{}/documents/{doc}/{key}", owner.org_id);
            assert!(!op.exists(&k).await.unwrap(), "{k} was rendered");
        }

        // Bad pages and widths; another organization.
        for (page, width) in [(0, 800), (pages + 1, 800), (1, 99), (1, 3001)] {
            assert_code(
                &url(&srv, &owner.token, &doc, page, width).await,
                "BAD_USER_INPUT",
            );
        }
        assert_code(&url(&srv, &outsider.token, &doc, 1, 800).await, "NOT_FOUND");

        // The cache keeps a few widths per document: asking for many more
        // replaces the one with the fewest pages (here, ties: the smallest).
        let widths_cached = || async {
            let folder = format!("orgs/{}/documents/{doc}/", owner.org_id);
            let mut widths: Vec<u32> = op
                .list(&folder)
                .await
                .unwrap()
                .iter()
                .filter_map(|e| {
                    let name = e.name().strip_prefix("page-")?.strip_suffix(".png")?;
                    name.split_once('-')?.1.parse().ok()
                })
                .collect();
            widths.sort_unstable();
            widths.dedup();
            widths
        };
        for width in [300, 400, 500, 600] {
            let link =
                ok(&url(&srv, &owner.token, &doc, 1, width).await, "document")["pageImageUrl"]
                    .as_str()
                    .unwrap()
                    .to_owned();
            let (status, _, png) = get(link).await;
            assert_eq!(status, 200);
            assert_eq!(png_size(&png).0, width as u32);
        }
        assert_eq!(
            widths_cached().await,
            [400, 500, 600, 800],
            "at most {} widths",
            evistream::documents::pages::MAX_CACHED_WIDTHS
        );

        // A converter of contract 0.1 renders nothing: a placeholder, and
        // the document says why.
        let r = srv
            .install_plugin(
                &owner.token,
                &owner.org_id,
                &converter_manifest("echo-converter", "1.0.0"),
                fixtures::wasm("hostile_converter"),
            )
            .await;
        ok(&r, "installPlugin");
        let old = srv
            .project(&owner.token, &owner.org_id, "Old converter")
            .await;
        let r = srv
            .op(
                Some(&owner.token),
                "ConfigureProjectPlugins",
                json!({ "projectId": old, "converter": "echo-converter" }),
            )
            .await;
        ok(&r, "configureProjectPlugins");
        let up = srv
            .upload(
                Some(&owner.token),
                &old,
                "a.pdf",
                b"%PDF-1.7\n% echo\n".to_vec(),
            )
            .await;
        let echo = ok(&up, "uploadDocument")["id"].as_str().unwrap().to_owned();
        eventually(Duration::from_secs(60), || async {
            let r = srv
                .gql(
                    Some(&owner.token),
                    "query($id: ID!) { document(id: $id) { status } }",
                    json!({ "id": echo }),
                )
                .await;
            (r["data"]["document"]["status"] == "COMPLETED").then_some(())
        })
        .await;
        let r = url(&srv, &owner.token, &echo, 1, 400).await;
        let link = ok(&r, "document")["pageImageUrl"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, ctype, png) = get(link).await;
        assert_eq!((status, ctype.as_deref()), (200, Some("image/png")));
        assert_eq!(png, evistream::documents::pages::PLACEHOLDER_PNG);
        let r = srv
            .gql(
                Some(&owner.token),
                "query($id: ID!) { document(id: $id) { warnings } }",
                json!({ "id": echo }),
            )
            .await;
        let warnings = ok(&r, "document")["warnings"].to_string();
        assert!(
            warnings.contains("page 1 could not be rendered"),
            "{warnings}"
        );

        srv.stop().await;
        tdb.drop_db().await;
    }
);
