//! Evidence on the page, on SQLite and PostgreSQL: the built-in converter
//! (contract 0.2) stores where the text lies; `document { layout boxes }`
//! answers page sizes and the boxes of any span, which land on the words
//! poppler (`pdftotext -bbox-layout`) finds there; extracted and reviewed
//! evidence carries its boxes; tables come as cells whose spans land on
//! their numbers; bad spans are refused; deleting the document removes
//! its layout.

use std::process::Command;

use evistream::jobs::JobRegistry;
use evistream_tests::{DbKind, TestDb, TestServer, assert_code, corpus_pdf, ok};
use serde_json::{Value, json};

use super::review::extract;

const PAPER: &str = "PMC3321528.pdf";

/// Poppler's words on `page`: (text, centre x, centre y) in page fractions.
fn poppler_words(pdf: &[u8], page: u32) -> Vec<(String, f64, f64)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("paper.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new("pdftotext")
        .args([
            "-bbox-layout",
            "-f",
            &page.to_string(),
            "-l",
            &page.to_string(),
        ])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) runs; tests/scripts/ensure-tools.sh installs it");
    assert!(out.status.success());
    let xml = String::from_utf8_lossy(&out.stdout);
    let num = |tag: &str, name: &str| -> f64 {
        let k = format!("{name}=\"");
        let i = tag.find(&k).unwrap() + k.len();
        tag[i..].split('"').next().unwrap().parse().unwrap()
    };
    let page_tag = xml.split("<page ").nth(1).unwrap();
    let (w, h) = (num(page_tag, "width"), num(page_tag, "height"));
    xml.split("<word ")
        .skip(1)
        .map(|rest| {
            let (tag, after) = rest.split_once('>').unwrap();
            let text = after.split("</word>").next().unwrap().to_owned();
            let cx = (num(tag, "xMin") + num(tag, "xMax")) / 2.0 / w;
            let cy = (num(tag, "yMin") + num(tag, "yMax")) / 2.0 / h;
            (text, cx, cy)
        })
        .collect()
}

fn inside(b: &Value, x: f64, y: f64) -> bool {
    let f = |k: &str| b[k].as_f64().unwrap();
    x >= f("x") && x <= f("x") + f("width") && y >= f("y") && y <= f("y") + f("height")
}

evistream_tests::dual_db_test!(
    the_text_is_found_on_its_page_and_evidence_carries_boxes,
    |db: DbKind| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let srv = TestServer::start(tdb.config(), JobRegistry::new())
            .await
            .unwrap();
        let owner = srv.register("owner").await;
        let outsider = srv.register("outsider").await;
        let project = srv.project(&owner.token, &owner.org_id, "Pages").await;
        let doc = srv
            .converted_papers(&owner.token, &project, &[PAPER])
            .await
            .remove(0);

        let r = srv
            .gql(
                Some(&owner.token),
                "query($id: ID!) { document(id: $id) { pageCount text \
                 pages { number start end } layout { number width height } } }",
                json!({ "id": doc }),
            )
            .await;
        let d = ok(&r, "document").clone();
        let layout = d["layout"].as_array().unwrap();
        assert_eq!(layout.len() as i64, d["pageCount"].as_i64().unwrap());
        for (i, p) in layout.iter().enumerate() {
            assert_eq!(p["number"], json!(i + 1));
            let (w, h) = (p["width"].as_f64().unwrap(), p["height"].as_f64().unwrap());
            assert!(
                (400.0..1000.0).contains(&w) && (400.0..1200.0).contains(&h),
                "{p}"
            );
        }

        // Words spread over the paper: each box holds poppler's word.
        let text = d["text"].as_str().unwrap().to_owned();
        let chars: Vec<char> = text.chars().collect();
        let pages = d["pages"].as_array().unwrap().clone();
        let pdf = corpus_pdf(PAPER);
        let mut checked = 0;
        for at in [chars.len() / 5, chars.len() / 2, chars.len() * 4 / 5] {
            // The next word of at least 6 letters from `at`.
            let mut i = at;
            let (start, end) = loop {
                while i < chars.len() && !chars[i].is_alphabetic() {
                    i += 1;
                }
                let s = i;
                while i < chars.len() && chars[i].is_alphabetic() {
                    i += 1;
                }
                if i - s >= 6 {
                    break (s, i);
                }
            };
            let word: String = chars[start..end].iter().collect();
            let r = srv
                .op(
                    Some(&owner.token),
                    "TextBoxes",
                    json!({ "id": doc, "start": start, "end": end }),
                )
                .await;
            let boxes = ok(&r, "document")["boxes"].as_array().unwrap().clone();
            assert_eq!(boxes.len(), 1, "one line: {word} {boxes:?}");
            let b = &boxes[0];
            let page = pages
                .iter()
                .find(|p| {
                    p["start"].as_u64().unwrap() as usize <= start
                        && start < p["end"].as_u64().unwrap() as usize
                })
                .unwrap()["number"]
                .as_u64()
                .unwrap() as u32;
            assert_eq!(b["page"], json!(page), "{word}");
            let h = b["height"].as_f64().unwrap();
            assert!(h > 0.003 && h < 0.05, "{word}: {b}");
            let found = poppler_words(&pdf, page)
                .into_iter()
                .filter(|(t, x, y)| t.contains(&word) && inside(b, *x, *y))
                .count();
            assert_eq!(found, 1, "poppler's `{word}` is inside {b}");
            checked += 1;
        }
        assert_eq!(checked, 3);

        // Bad spans are refused; another organization's document is missing.
        let n = chars.len() as i64;
        for (s, e) in [(10, 5), (-1, 3), (0, n + 1)] {
            let r = srv
                .op(
                    Some(&owner.token),
                    "TextBoxes",
                    json!({ "id": doc, "start": s, "end": e }),
                )
                .await;
            assert_code(&r, "BAD_USER_INPUT");
        }
        let r = srv
            .op(
                Some(&outsider.token),
                "TextBoxes",
                json!({ "id": doc, "start": 0, "end": 5 }),
            )
            .await;
        assert_code(&r, "NOT_FOUND");

        // Tables come as cells located in the text (the acceptance
        // operation as written).
        let r = srv
            .op(Some(&owner.token), "DocumentLayout", json!({ "id": doc }))
            .await;
        let tables = ok(&r, "document")["tables"].as_array().unwrap().clone();
        assert!(!tables.is_empty(), "no tables");
        let page_count = d["pageCount"].as_u64().unwrap();
        let slice = |a: u64, b: u64| chars[a as usize..b as usize].iter().collect::<String>();
        for t in &tables {
            let pages: Vec<u64> = t["pages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_u64().unwrap())
                .collect();
            assert!(
                !pages.is_empty() && pages.iter().all(|p| (1..=page_count).contains(p)),
                "{t}"
            );
            let widths: Vec<u64> = t["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|row| {
                    row["cells"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c["colSpan"].as_u64().unwrap())
                        .sum()
                })
                .collect();
            assert!(
                widths.windows(2).all(|w| w[0] == w[1]) && widths[0] >= 2,
                "{widths:?}"
            );
            for c in t["rows"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|r| r["cells"].as_array().unwrap())
            {
                match (c["start"].as_u64(), c["end"].as_u64()) {
                    (Some(a), Some(b)) => {
                        assert_eq!(c["text"].as_str().unwrap(), slice(a, b), "{c}")
                    }
                    _ => assert_eq!(c["text"], "", "{c}"),
                }
            }
        }
        let row_texts = |t: &Value| -> Vec<Vec<String>> {
            t["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    r["cells"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c["text"].as_str().unwrap().to_owned())
                        .collect()
                })
                .collect()
        };
        let baseline = tables
            .iter()
            .find(|t| {
                t["caption"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("Table 1: Baseline characteristics"))
            })
            .unwrap_or_else(|| panic!("no Table 1 among {tables:?}"));
        let rows = row_texts(baseline);
        assert!(
            rows.contains(&vec![
                "Age, years".into(),
                "55 ± 20".into(),
                "59 ± 21".into(),
                "0.49".into()
            ]),
            "{rows:?}"
        );
        let header: Vec<&Value> = baseline["rows"][0]["cells"]
            .as_array()
            .unwrap()
            .iter()
            .collect();
        assert!(header.iter().all(|c| c["header"] == true), "{header:?}");
        assert!(
            header.iter().any(|c| c["text"] == "EMS group"),
            "{header:?}"
        );
        // A cell's span lands on its number on the page.
        let cell = baseline["rows"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["cells"].as_array().unwrap())
            .find(|c| c["text"] == "55 ± 20")
            .unwrap();
        let r = srv
            .op(
                Some(&owner.token),
                "TextBoxes",
                json!({ "id": doc, "start": cell["start"], "end": cell["end"] }),
            )
            .await;
        let boxes = ok(&r, "document")["boxes"].as_array().unwrap().clone();
        assert_eq!(boxes.len(), 1, "{boxes:?}");
        let page = baseline["pages"][0].as_u64().unwrap() as u32;
        assert_eq!(boxes[0]["page"], json!(page));
        let found = poppler_words(&pdf, page)
            .into_iter()
            .filter(|(t, x, y)| t == "55" && inside(&boxes[0], *x, *y))
            .count();
        assert_eq!(found, 1, "poppler's 55 is inside {}", boxes[0]);
        let r = srv
            .op(
                Some(&outsider.token),
                "DocumentLayout",
                json!({ "id": doc }),
            )
            .await;
        assert_code(&r, "NOT_FOUND");

        // Extracted evidence carries its boxes, on the page it was found on.
        let version = srv
            .approved_version(
                &owner.token,
                &project,
                json!([
                    { "name": "sample_size", "type": "INTEGER",
                      "description": "Total number of participants randomised" },
                    { "name": "blinding", "type": "TEXT", "description": "Masking of the trial" },
                ]),
            )
            .await;
        extract(&srv, &owner.token, &project, &version).await;
        let r = srv
            .op(
                Some(&owner.token),
                "ResultsWithBoxes",
                json!({ "projectId": project, "formVersionId": version }),
            )
            .await;
        let values = ok(&r, "results")["edges"][0]["node"]["values"]
            .as_array()
            .unwrap()
            .clone();
        let mut boxed = 0;
        for v in &values {
            for e in v["evidence"].as_array().unwrap() {
                let boxes = e["boxes"].as_array().unwrap();
                if e["grounding"] == "EXACT" {
                    assert!(!boxes.is_empty(), "{e}");
                    assert!(boxes.iter().all(|b| b["page"] == e["page"]), "{e}");
                    boxed += 1;
                } else if e["start"].is_null() {
                    assert!(boxes.is_empty(), "{e}");
                }
            }
        }
        assert!(boxed > 0, "no EXACT evidence to box: {values:?}");
        // And so does the review's.
        let r = srv
            .gql(
                Some(&owner.token),
                "query($d: ID!, $v: ID!) { review(documentId: $d, formVersionId: $v) \
                 { values { evidence { grounding boxes { page } } } } }",
                json!({ "d": doc, "v": version }),
            )
            .await;
        let reviewed = ok(&r, "review")["values"].as_array().unwrap().clone();
        assert!(
            reviewed
                .iter()
                .flat_map(|v| v["evidence"].as_array().unwrap())
                .any(|e| e["grounding"] == "EXACT" && !e["boxes"].as_array().unwrap().is_empty())
        );

        // The layout lives in the document's folder, and goes with it.
        let op = srv.node.app.blobs.operator().clone();
        let folder = format!("orgs/{}/documents/{doc}/", owner.org_id);
        let layouts = || async {
            op.list(&folder).await.map_or(0, |list| {
                list.iter()
                    .filter(|e| e.name().starts_with("layout-"))
                    .count()
            })
        };
        assert_eq!(layouts().await, 1);
        let r = srv
            .op(Some(&owner.token), "DeleteDocument", json!({ "id": doc }))
            .await;
        assert!(r.get("errors").is_none(), "{r}");
        assert_eq!(layouts().await, 0);

        srv.stop().await;
        tdb.drop_db().await;
    }
);
