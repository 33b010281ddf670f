//! Studies and meta-analysis: derived values and effect sizes against R
//! and metafor itself (Debian's r-cran-metafor, run by the test), on the
//! Yun et al. rows of the corpus and hand-made edge cases; study linking
//! through the API with the METAFOR_CSV export counting studies; analysis
//! roles, derivations and bad input through the API on SQLite and
//! PostgreSQL; REVMAN_CSV and JSON exports read back.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::Command;

use evistream::analysis::comparisons::{
    self, InputCell, Measures, Origin, Report, ReportValues, StudyRef,
};
use evistream::analysis::{EffectMeasure, roles};
use evistream::db::entities::extraction_result;
use evistream::forms::Field;
use evistream::jobs::JobRegistry;
use evistream_tests::{DbKind, TestDb, TestServer, attacks, fixtures, ok, refused};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

fn corpus() -> std::path::PathBuf {
    evistream_tests::ops::repo_root().join("../shared/corpus")
}

fn corpus_form_fields() -> Value {
    let text = std::fs::read_to_string(corpus().join("forms/rct_outcomes.form.json"))
        .expect("corpus form");
    serde_json::from_str::<Value>(&text).expect("json")["fields"].clone()
}

/// The corpus form's outcome list with what papers print instead of an SD.
fn extended_fields() -> Value {
    let mut fields = corpus_form_fields();
    let items = fields[0]["fields"].as_array_mut().expect("outcomes fields");
    for arm in ["intervention", "comparator"] {
        for q in [
            "standard_error",
            "ci_lower",
            "ci_upper",
            "ci_level",
            "median",
            "q1",
            "q3",
            "min",
            "max",
        ] {
            items.push(json!({ "name": format!("{arm}_{q}"), "type": "NUMBER" }));
        }
    }
    items.push(json!({ "name": "p_value", "type": "TEXT", "description": "p of the difference, as printed" }));
    items.push(json!({ "name": "t_statistic", "type": "NUMBER" }));
    items.push(json!({ "name": "difference_ci_lower", "type": "NUMBER" }));
    items.push(json!({ "name": "difference_ci_upper", "type": "NUMBER" }));
    fields
}

fn parse_fields(v: &Value) -> Vec<Field> {
    serde_json::from_value(v.clone()).expect("fields")
}

fn report(id: &str, cells: Vec<(String, Value)>) -> ReportValues {
    ReportValues {
        report: Report {
            id: id.into(),
            filename: format!("{id}.pdf"),
        },
        study: StudyRef {
            id: id.into(),
            name: id.into(),
        },
        cells: cells
            .into_iter()
            .map(|(path, value)| InputCell {
                path,
                value,
                origin: Origin::Extracted,
                evidence: Vec::new(),
            })
            .collect(),
    }
}

/// The gold rows of the 12 corpus PDFs (Yun et al. 2024), one report per paper.
fn yun_reports() -> Vec<ReportValues> {
    let mut rd =
        csv::Reader::from_path(corpus().join("rct/gold_numeric_yun2024.csv")).expect("gold csv");
    let header: Vec<String> = rd
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    let mut by_paper: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    let numeric = [
        "intervention_events",
        "intervention_group_size",
        "comparator_events",
        "comparator_group_size",
        "intervention_mean",
        "intervention_standard_deviation",
        "comparator_mean",
        "comparator_standard_deviation",
    ];
    for row in rd.records() {
        let row = row.expect("row");
        let get = |k: &str| {
            row.get(header.iter().position(|h| h == k).expect(k))
                .unwrap_or("")
                .trim()
                .to_owned()
        };
        let paper = get("pmcid");
        let i = *count
            .entry(paper.clone())
            .and_modify(|c| *c += 1)
            .or_insert(0);
        let cells = by_paper.entry(paper).or_default();
        for k in ["outcome", "intervention", "comparator", "outcome_type"] {
            cells.push((format!("outcomes[{i}].{k}"), json!(get(k))));
        }
        for k in numeric {
            let raw = get(k).replace(',', "");
            if let Ok(x) = raw.parse::<f64>() {
                cells.push((format!("outcomes[{i}].{k}"), json!(x)));
            }
        }
    }
    by_paper
        .into_iter()
        .map(|(p, cells)| report(&format!("PMC{p}"), cells))
        .collect()
}

/// One hand-made comparison: its case name and values (field → value).
struct Case {
    name: &'static str,
    binary: bool,
    values: Vec<(&'static str, Value)>,
}

fn cases() -> Vec<Case> {
    let c = |name, binary, values: Vec<(&'static str, Value)>| Case {
        name,
        binary,
        values,
    };
    let n = |a: f64, b: f64| {
        vec![
            ("intervention_group_size", json!(a)),
            ("comparator_group_size", json!(b)),
        ]
    };
    let with = |mut base: Vec<(&'static str, Value)>, more: Vec<(&'static str, Value)>| {
        base.extend(more);
        base
    };
    vec![
        c(
            "zero cell",
            true,
            with(
                n(47.0, 45.0),
                vec![
                    ("intervention_events", json!(0)),
                    ("comparator_events", json!(1)),
                ],
            ),
        ),
        c(
            "double zero",
            true,
            with(
                n(33.0, 33.0),
                vec![
                    ("intervention_events", json!(0)),
                    ("comparator_events", json!(0)),
                ],
            ),
        ),
        c(
            "all events",
            true,
            with(
                n(22.0, 20.0),
                vec![
                    ("intervention_events", json!(22)),
                    ("comparator_events", json!(16)),
                ],
            ),
        ),
        c(
            "SD from SE",
            false,
            with(
                n(47.0, 45.0),
                vec![
                    ("intervention_mean", json!(10.2)),
                    ("comparator_mean", json!(12.1)),
                    ("intervention_standard_error", json!(1.3)),
                    ("comparator_standard_error", json!(1.5)),
                ],
            ),
        ),
        c(
            "95% CI n < 60",
            false,
            with(
                n(30.0, 28.0),
                vec![
                    ("intervention_mean", json!(10.0)),
                    ("comparator_mean", json!(11.0)),
                    ("intervention_ci_lower", json!(8.2)),
                    ("intervention_ci_upper", json!(11.8)),
                    ("comparator_ci_lower", json!(9.0)),
                    ("comparator_ci_upper", json!(13.0)),
                ],
            ),
        ),
        c(
            "90% CI n >= 60",
            false,
            with(
                n(100.0, 80.0),
                vec![
                    ("intervention_mean", json!(10.0)),
                    ("comparator_mean", json!(9.1)),
                    ("intervention_ci_lower", json!(8.2)),
                    ("intervention_ci_upper", json!(11.8)),
                    ("intervention_ci_level", json!(90)),
                    ("comparator_ci_lower", json!(8.0)),
                    ("comparator_ci_upper", json!(10.2)),
                    ("comparator_ci_level", json!(0.9)),
                ],
            ),
        ),
        c(
            "p < 0.05",
            false,
            with(
                n(25.0, 22.0),
                vec![
                    ("intervention_mean", json!(13.8)),
                    ("comparator_mean", json!(10.0)),
                    ("p_value", json!("p < 0.05")),
                ],
            ),
        ),
        c(
            "exact p",
            false,
            with(
                n(25.0, 22.0),
                vec![
                    ("intervention_mean", json!(13.8)),
                    ("comparator_mean", json!(10.0)),
                    ("p_value", json!("0.008")),
                ],
            ),
        ),
        c(
            "t statistic",
            false,
            with(
                n(25.0, 22.0),
                vec![
                    ("intervention_mean", json!(13.8)),
                    ("comparator_mean", json!(10.0)),
                    ("t_statistic", json!(2.1)),
                ],
            ),
        ),
        c(
            "difference CI",
            false,
            with(
                n(47.0, 45.0),
                vec![
                    ("intervention_mean", json!(20.1)),
                    ("comparator_mean", json!(24.045)),
                    ("difference_ci_lower", json!(-7.77)),
                    ("difference_ci_upper", json!(-0.12)),
                ],
            ),
        ),
        c(
            "median and IQR",
            false,
            with(
                n(50.0, 48.0),
                vec![
                    ("intervention_median", json!(25)),
                    ("intervention_q1", json!(20)),
                    ("intervention_q3", json!(31)),
                    ("comparator_median", json!(28)),
                    ("comparator_q1", json!(22)),
                    ("comparator_q3", json!(35)),
                ],
            ),
        ),
        c(
            "five numbers",
            false,
            with(
                n(60.0, 62.0),
                vec![
                    ("intervention_min", json!(2)),
                    ("intervention_q1", json!(8)),
                    ("intervention_median", json!(11)),
                    ("intervention_q3", json!(15)),
                    ("intervention_max", json!(28)),
                    ("comparator_min", json!(1)),
                    ("comparator_median", json!(9)),
                    ("comparator_max", json!(30)),
                ],
            ),
        ),
        c(
            "median only",
            false,
            with(
                n(30.0, 30.0),
                vec![
                    ("intervention_median", json!(10)),
                    ("comparator_median", json!(12)),
                ],
            ),
        ),
    ]
}

fn case_cells(cases: &[Case]) -> Vec<(String, Value)> {
    let mut cells = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        cells.push((format!("outcomes[{i}].outcome"), json!(c.name)));
        cells.push((format!("outcomes[{i}].intervention"), json!("drug")));
        cells.push((format!("outcomes[{i}].comparator"), json!("placebo")));
        cells.push((
            format!("outcomes[{i}].outcome_type"),
            json!(if c.binary { "binary" } else { "continuous" }),
        ));
        for (k, v) in &c.values {
            cells.push((format!("outcomes[{i}].{k}"), v.clone()));
        }
    }
    cells
}

/// The raw inputs of the continuous cases, for the R side to derive again.
fn cases_csv(cases: &[Case]) -> String {
    let cols = [
        ("i_n", "intervention_group_size"),
        ("i_mean", "intervention_mean"),
        ("i_sd", "intervention_standard_deviation"),
        ("i_se", "intervention_standard_error"),
        ("i_cil", "intervention_ci_lower"),
        ("i_ciu", "intervention_ci_upper"),
        ("i_level", "intervention_ci_level"),
        ("i_min", "intervention_min"),
        ("i_q1", "intervention_q1"),
        ("i_median", "intervention_median"),
        ("i_q3", "intervention_q3"),
        ("i_max", "intervention_max"),
        ("c_n", "comparator_group_size"),
        ("c_mean", "comparator_mean"),
        ("c_sd", "comparator_standard_deviation"),
        ("c_se", "comparator_standard_error"),
        ("c_cil", "comparator_ci_lower"),
        ("c_ciu", "comparator_ci_upper"),
        ("c_level", "comparator_ci_level"),
        ("c_min", "comparator_min"),
        ("c_q1", "comparator_q1"),
        ("c_median", "comparator_median"),
        ("c_q3", "comparator_q3"),
        ("c_max", "comparator_max"),
        ("t", "t_statistic"),
        ("d_cil", "difference_ci_lower"),
        ("d_ciu", "difference_ci_upper"),
    ];
    let mut out = String::from("case,");
    out += &cols.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(",");
    out += ",p\n";
    for c in cases.iter().filter(|c| !c.binary) {
        let get = |k: &str| {
            c.values
                .iter()
                .find(|(f, _)| *f == k)
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
        };
        let p = match c.values.iter().find(|(f, _)| *f == "p_value") {
            // "p < 0.05" is taken at its bound, as the Handbook says.
            Some((_, v)) => v
                .as_str()
                .unwrap_or("")
                .trim_start_matches("p < ")
                .to_owned(),
            None => String::new(),
        };
        out += &format!(
            "{},{},{p}\n",
            c.name,
            cols.iter()
                .map(|(_, f)| get(f))
                .collect::<Vec<_>>()
                .join(",")
        );
    }
    out
}

fn close(ours: f64, theirs: f64) -> bool {
    (ours - theirs).abs() <= 1e-6 * theirs.abs().max(1.0)
}

fn num(s: &str) -> Option<f64> {
    if s == "NA" || s.is_empty() {
        None
    } else {
        s.parse().ok()
    }
}

#[tokio::test]
async fn derivations_and_effect_sizes_agree_with_metafor() {
    let _process = evistream_tests::shared().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let yun_roles = roles::auto(&parse_fields(&corpus_form_fields()));
    let ext_roles =
        roles::configure(&parse_fields(&extended_fields()), &json!({})).expect("extended roles");
    let yun = yun_reports();
    let edge = vec![report("edge", case_cells(&cases()))];
    let mut files = Vec::new();
    let mut ours: BTreeMap<String, Vec<comparisons::Comparison>> = BTreeMap::new();
    for (binary, continuous) in [
        (EffectMeasure::Rr, EffectMeasure::Md),
        (EffectMeasure::Or, EffectMeasure::Smd),
        (EffectMeasure::Rd, EffectMeasure::Md),
    ] {
        let measures = Measures { binary, continuous };
        for (set, roles, reports) in [("yun", &yun_roles, &yun), ("edge", &ext_roles, &edge)] {
            let cs = comparisons::build(roles, reports, measures);
            let name = format!("{set}-{}-{}.csv", binary.as_str(), continuous.as_str());
            let path = dir.path().join(&name);
            std::fs::write(&path, evistream::export::metafor::file(&cs).expect("csv"))
                .expect("write");
            files.push(path);
            ours.insert(name, cs);
        }
    }
    let cases_path = dir.path().join("derive-cases.csv");
    std::fs::write(&cases_path, cases_csv(&cases())).expect("cases");
    let script = evistream_tests::ops::repo_root().join("tests/scripts/metafor-check.R");
    let out = Command::new("nice")
        .args(["-n", "10", "Rscript"])
        .arg(&script)
        .arg(&cases_path)
        .args(&files)
        .output()
        .expect(
            "Rscript runs (tests/scripts/ensure-tools.sh installs r-base-core and r-cran-metafor)",
        );
    assert!(
        out.status.success(),
        "R failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let (mut checked, mut derived) = (0, 0);
    for line in text.lines() {
        let f: Vec<&str> = line.split(',').collect();
        match f[0] {
            "escalc" => {
                let row: usize = f[2].parse().expect("row");
                let c = &ours[f[1]][row - 1];
                let e = c.effect.as_ref();
                match (num(f[3]), num(f[4])) {
                    (Some(yi), Some(vi)) => {
                        let e = e.unwrap_or_else(|| {
                            panic!("{}: metafor gives yi {yi}, we gave nothing: {c:?}", f[1])
                        });
                        assert!(
                            close(e.yi, yi) && close(e.vi, vi),
                            "{} row {row} ({}): ours {} {}, metafor {yi} {vi}",
                            f[1],
                            c.outcome,
                            e.yi,
                            e.vi
                        );
                    }
                    _ => assert!(
                        e.is_none(),
                        "{} row {row}: metafor gives NA, we gave {e:?}",
                        f[1]
                    ),
                }
                checked += 1;
            }
            "derive" => {
                let c = ours["edge-RR-MD.csv"]
                    .iter()
                    .find(|c| c.outcome == f[1])
                    .expect("case");
                let got = [
                    c.arms[0].mean,
                    c.arms[0].standard_deviation,
                    c.arms[1].mean,
                    c.arms[1].standard_deviation,
                ];
                for (g, want) in got.iter().zip(&f[2..6]) {
                    match num(want) {
                        Some(w) => assert!(
                            g.is_some_and(|g| close(g, w)),
                            "{}: ours {got:?}, R {:?}",
                            f[1],
                            &f[2..6]
                        ),
                        None => assert!(g.is_none(), "{}: ours {got:?}, R has NA", f[1]),
                    }
                }
                derived += 1;
            }
            _ => {}
        }
    }
    let all = ours.values().map(Vec::len).sum::<usize>();
    assert!(
        checked >= 100 && derived == 10,
        "checked {checked} effects of {all}, {derived} derivations:\n{text}"
    );

    // What each case says about itself.
    let edge = &ours["edge-RR-MD.csv"];
    let case = |name: &str| edge.iter().find(|c| c.outcome == name).expect(name);
    let double = case("double zero");
    assert!(
        double.effect.is_none()
            && double
                .warnings
                .iter()
                .any(|w| w.starts_with("NO_EVENTS_BOTH_ARMS")),
        "{double:?}"
    );
    let rd = ours["edge-RD-MD.csv"]
        .iter()
        .find(|c| c.outcome == "double zero")
        .expect("RD");
    assert!(
        rd.effect.as_ref().is_some_and(|e| e.yi == 0.0),
        "RD keeps the double zero: {rd:?}"
    );
    assert!(
        case("zero cell")
            .warnings
            .iter()
            .any(|w| w.starts_with("ZERO_CELL_CORRECTION"))
    );
    let ci = &case("95% CI n < 60").arms[0].derived[0];
    assert_eq!(ci.method, "SD from 95% CI (t, n < 60)");
    assert!(
        ci.inputs.as_array().is_some_and(|i| i
            .iter()
            .any(|x| x["path"] == "outcomes[4].intervention_ci_lower")),
        "{ci:?}"
    );
    assert_eq!(
        case("90% CI n >= 60").arms[1].derived[0].method,
        "SD from 90% CI (z, n ≥ 60)"
    );
    let p = case("p < 0.05");
    assert!(
        p.warnings
            .iter()
            .any(|w| w.starts_with("CONSERVATIVE_P_BOUND")),
        "{p:?}"
    );
    assert_eq!(p.arms[0].standard_deviation, p.arms[1].standard_deviation);
    let median = case("median only");
    assert!(median.effect.is_none());
    assert!(
        median
            .warnings
            .iter()
            .any(|w| w.contains("median without quartiles or range")),
        "{median:?}"
    );
    for c in edge
        .iter()
        .filter(|c| c.arms.iter().any(|a| !a.derived.is_empty()))
    {
        for a in &c.arms {
            for d in &a.derived {
                assert!(
                    a.origins
                        .iter()
                        .any(|o| o.quantity == d.quantity && o.origin == Origin::Derived),
                    "{c:?}"
                );
            }
        }
    }

    // Measured: how many Yun comparisons are analysable from the values alone.
    let yun_rr = &ours["yun-RR-MD.csv"];
    let analysable = yun_rr.iter().filter(|c| c.effect.is_some()).count();
    let derived_any = yun_rr
        .iter()
        .filter(|c| c.arms.iter().any(|a| !a.derived.is_empty()))
        .count();
    eprintln!(
        "Yun et al. (12 corpus PDFs): {analysable} of {} comparisons analysable from extracted values; {derived_any} need a derived value",
        yun_rr.len()
    );
    assert_eq!(yun_rr.len(), 53);
    assert_eq!(analysable, 34, "RR/MD over the gold rows");
}

/// The result of `doc` for the latest run.
async fn result_of(srv: &TestServer, doc: &str) -> String {
    extraction_result::Entity::find()
        .filter(extraction_result::Column::DocumentId.eq(doc))
        .all(&srv.node.app.db)
        .await
        .expect("results")
        .into_iter()
        .max_by_key(|r| r.created_at)
        .expect("a result")
        .id
}

async fn get(url: &str, token: &str) -> (u16, Vec<u8>) {
    let resp = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    (
        resp.status().as_u16(),
        resp.bytes().await.expect("body").to_vec(),
    )
}

async fn export(
    srv: &TestServer,
    token: &str,
    project: &str,
    version: &str,
    format: &str,
) -> (String, Vec<u8>) {
    let r = srv
        .op(
            Some(token),
            "ExportResults",
            json!({ "projectId": project, "formVersionId": version, "format": format }),
        )
        .await;
    let url = ok(&r, "exportResults")["url"]
        .as_str()
        .expect("url")
        .to_owned();
    let (status, body) = get(&url, token).await;
    assert_eq!(status, 200, "{format}: {}", String::from_utf8_lossy(&body));
    (url, body)
}

fn metafor_rows(body: &[u8]) -> Vec<BTreeMap<String, String>> {
    let mut rd = csv::Reader::from_reader(body);
    let header: Vec<String> = rd
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    rd.records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.expect("row").iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

/// One binary comparison, as both reports of a trial give it.
fn trial_values() -> Vec<(String, Value)> {
    [
        ("outcome", json!("mortality")),
        ("intervention", json!("drug")),
        ("comparator", json!("placebo")),
        ("outcome_type", json!("binary")),
        ("intervention_events", json!(11)),
        ("intervention_group_size", json!(49)),
        ("comparator_events", json!(21)),
        ("comparator_group_size", json!(50)),
    ]
    .into_iter()
    .map(|(k, v)| (format!("outcomes[0].{k}"), v))
    .collect()
}

evistream_tests::dual_db_test!(studies_link_unlink_and_export, |db: DbKind| async move {
    let tdb = TestDb::new(db).await.unwrap();
    let srv = TestServer::start(tdb.config(), JobRegistry::new())
        .await
        .unwrap();
    let a = srv.register("alice").await;
    let project = srv.project(&a.token, &a.org_id, "Studies").await;
    let mut docs = Vec::new();
    for (name, lines) in [
        (
            "main.pdf",
            vec![
                "A randomised trial of drug against placebo.",
                "Registered at ClinicalTrials.gov (NCT: 01639599).",
            ],
        ),
        (
            "secondary.pdf",
            vec![
                "Secondary analysis of a randomised trial.",
                "Trial registration NCT01639599.",
            ],
        ),
        (
            "other.pdf",
            vec!["An unrelated trial.", "Registered as ISRCTN83765567."],
        ),
    ] {
        let r = srv
            .upload(Some(&a.token), &project, name, fixtures::text_pdf(&lines))
            .await;
        let id = ok(&r, "uploadDocument")["id"].as_str().unwrap().to_owned();
        srv.wait_converted(&a.token, &id, name).await;
        docs.push(id);
    }
    let studies = |token: String| {
        let (srv, project) = (&srv, project.clone());
        async move {
            srv.op(Some(&token), "Studies", json!({ "projectId": project }))
                .await
        }
    };
    let r = studies(a.token.clone()).await;
    assert_eq!(
        ok(&r, "studies")["totalCount"],
        3,
        "each document is its own study: {r}"
    );
    let r = srv
        .op(
            Some(&a.token),
            "StudySuggestions",
            json!({ "projectId": project }),
        )
        .await;
    let s = ok(&r, "studySuggestions").as_array().unwrap().clone();
    assert_eq!(s.len(), 1, "{r}");
    assert_eq!(s[0]["registryId"], "NCT01639599");
    assert_eq!(s[0]["documentIds"], json!([docs[0], docs[1]]));
    // Offered, not applied.
    assert_eq!(
        ok(&studies(a.token.clone()).await, "studies")["totalCount"],
        3
    );

    let version = srv
        .approved_version(&a.token, &project, corpus_form_fields())
        .await;
    srv.run_extraction(&a.token, &project, &version).await;
    for d in &docs[..2] {
        attacks::replace_values(
            &srv.node.app.db,
            &a.org_id,
            &result_of(&srv, d).await,
            &trial_values(),
        )
        .await;
    }
    // The unrelated paper reports nothing analysable.
    attacks::replace_values(
        &srv.node.app.db,
        &a.org_id,
        &result_of(&srv, &docs[2]).await,
        &[],
    )
    .await;
    let (_, body) = export(&srv, &a.token, &project, &version, "METAFOR_CSV").await;
    assert_eq!(metafor_rows(&body).len(), 2, "two studies before linking");

    let r = srv
        .op(
            Some(&a.token),
            "LinkDocuments",
            json!({ "projectId": project, "documentIds": [docs[0], docs[1]], "name": "TRIAL-1" }),
        )
        .await;
    let study = ok(&r, "linkDocuments").clone();
    assert_eq!(study["name"], "TRIAL-1");
    assert_eq!(study["documents"].as_array().unwrap().len(), 2);
    let r = studies(a.token.clone()).await;
    let st = ok(&r, "studies");
    assert_eq!(st["totalCount"], 2, "{r}");
    let linked = st["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["id"] == study["id"])
        .expect("linked study");
    assert_eq!(linked["node"]["registryIds"], json!(["NCT01639599"]));
    let r = srv
        .op(
            Some(&a.token),
            "StudySuggestions",
            json!({ "projectId": project }),
        )
        .await;
    assert_eq!(
        ok(&r, "studySuggestions"),
        &json!([]),
        "nothing left to suggest"
    );

    let (url, body) = export(&srv, &a.token, &project, &version, "METAFOR_CSV").await;
    let rows = metafor_rows(&body);
    assert_eq!(rows.len(), 1, "one study: {rows:?}");
    assert_eq!(rows[0]["study"], "TRIAL-1");
    assert_eq!(rows[0]["reports"], "main.pdf; secondary.pdf");
    assert_eq!(
        (
            rows[0]["ai"].as_str(),
            rows[0]["bi"].as_str(),
            rows[0]["measure"].as_str()
        ),
        ("11", "38", "RR")
    );
    assert!(close(rows[0]["yi"].parse().unwrap(), -0.6264244576));
    let (status, script) = get(&format!("{url}/analysis.R"), &a.token).await;
    let script = String::from_utf8(script).unwrap();
    assert!(
        status == 200 && script.contains("rma(") && script.contains("results-metafor_csv-"),
        "{status} {script}"
    );

    // Unlink: the document is its own study again.
    let r = srv
        .op(
            Some(&a.token),
            "UnlinkDocument",
            json!({ "documentId": docs[1] }),
        )
        .await;
    assert_eq!(ok(&r, "unlinkDocument")["id"], docs[1]);
    let (_, body) = export(&srv, &a.token, &project, &version, "METAFOR_CSV").await;
    assert_eq!(
        metafor_rows(&body).len(),
        2,
        "unlinking restores two studies"
    );
    let r = srv
        .op(
            Some(&a.token),
            "RenameStudy",
            json!({ "studyId": study["id"], "name": "  " }),
        )
        .await;
    refused(&r, "renameStudy", "BAD_USER_INPUT");
    let r = srv
        .op(
            Some(&a.token),
            "RenameStudy",
            json!({ "studyId": study["id"], "name": "Trial one" }),
        )
        .await;
    assert_eq!(ok(&r, "renameStudy")["name"], "Trial one");
    let r = srv
        .op(
            Some(&a.token),
            "AuditLog",
            json!({ "organizationId": a.org_id, "first": 100 }),
        )
        .await;
    let actions: Vec<&str> = ok(&r, "auditLog")["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["node"]["action"].as_str())
        .collect();
    for want in ["study.link", "study.unlink", "study.rename"] {
        assert!(actions.contains(&want), "{want} audited: {actions:?}");
    }

    // Another organization's ids are missing ones; a VIEWER reads but cannot link.
    let bob = srv.register("bob").await;
    let own = srv.project(&bob.token, &bob.org_id, "Bob's").await;
    let r = srv
        .op(
            Some(&bob.token),
            "LinkDocuments",
            json!({ "projectId": project, "documentIds": [docs[0]] }),
        )
        .await;
    refused(&r, "linkDocuments", "NOT_FOUND");
    let r = srv
        .op(
            Some(&bob.token),
            "LinkDocuments",
            json!({ "projectId": own, "documentIds": [docs[0], docs[2]] }),
        )
        .await;
    refused(&r, "linkDocuments", "NOT_FOUND");
    let r = srv
        .op(
            Some(&bob.token),
            "UnlinkDocument",
            json!({ "documentId": docs[0] }),
        )
        .await;
    refused(&r, "unlinkDocument", "NOT_FOUND");
    refused(&studies(bob.token.clone()).await, "studies", "NOT_FOUND");
    srv.add_member(&a.token, &a.org_id, &bob.email, "VIEWER")
        .await;
    // TRIAL-1 (main.pdf alone now), secondary.pdf, other.pdf.
    assert_eq!(
        ok(&studies(bob.token.clone()).await, "studies")["totalCount"],
        3
    );
    let r = srv
        .op(
            Some(&bob.token),
            "LinkDocuments",
            json!({ "projectId": project, "documentIds": [docs[0], docs[2]] }),
        )
        .await;
    refused(&r, "linkDocuments", "FORBIDDEN");
    let r = srv
        .op(
            Some(&bob.token),
            "UnlinkDocument",
            json!({ "documentId": docs[0] }),
        )
        .await;
    refused(&r, "unlinkDocument", "FORBIDDEN");
    assert_eq!(
        ok(&studies(a.token.clone()).await, "studies")["totalCount"],
        3,
        "nothing changed"
    );
    // Deleting a study's last report takes the study with it.
    let r = srv
        .op(Some(&a.token), "DeleteDocument", json!({ "id": docs[0] }))
        .await;
    ok(&r, "deleteDocument");
    let r = studies(a.token.clone()).await;
    let ids: Vec<&Value> = ok(&r, "studies")["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"]["id"])
        .collect();
    assert_eq!(ids, [&json!(docs[1]), &json!(docs[2])], "{r}");
    let r = srv
        .op(
            Some(&a.token),
            "RenameStudy",
            json!({ "studyId": study["id"], "name": "gone" }),
        )
        .await;
    refused(&r, "renameStudy", "NOT_FOUND");
    srv.stop().await;
    tdb.drop_db().await;
});

evistream_tests::dual_db_test!(
    analysis_roles_derivations_and_exports,
    |db: DbKind| async move {
        let tdb = TestDb::new(db).await.unwrap();
        let srv = TestServer::start(tdb.config(), JobRegistry::new())
            .await
            .unwrap();
        let a = srv.register("alice").await;
        let project = srv.project(&a.token, &a.org_id, "Analysis").await;
        let r = srv
            .upload(
                Some(&a.token),
                &project,
                "trial.pdf",
                fixtures::text_pdf(&["A trial."]),
            )
            .await;
        let doc = ok(&r, "uploadDocument")["id"].as_str().unwrap().to_owned();
        srv.wait_converted(&a.token, &doc, "trial.pdf").await;
        let version = srv
            .approved_version(&a.token, &project, extended_fields())
            .await;
        srv.run_extraction(&a.token, &project, &version).await;
        let mut values = case_cells(&cases());
        let bad = cases().len();
        for (i, (k, v)) in [
            ("intervention_standard_deviation", json!(-2.0)),
            ("intervention_group_size", json!(0)),
        ]
        .into_iter()
        .enumerate()
        {
            let i = bad + i;
            values.extend([
                (format!("outcomes[{i}].outcome"), json!(format!("bad {k}"))),
                (format!("outcomes[{i}].outcome_type"), json!("continuous")),
                (format!("outcomes[{i}].intervention_mean"), json!(1.0)),
                (format!("outcomes[{i}].comparator_mean"), json!(2.0)),
                (
                    format!("outcomes[{i}].intervention_standard_deviation"),
                    json!(1.0),
                ),
                (
                    format!("outcomes[{i}].comparator_standard_deviation"),
                    json!(1.0),
                ),
                (format!("outcomes[{i}].intervention_group_size"), json!(10)),
                (format!("outcomes[{i}].comparator_group_size"), json!(10)),
                (format!("outcomes[{i}].{k}"), v),
            ]);
        }
        attacks::replace_values(
            &srv.node.app.db,
            &a.org_id,
            &result_of(&srv, &doc).await,
            &values,
        )
        .await;

        // Roles: the form maps itself; wrong ones are refused and change nothing.
        let roles = || {
            let (srv, token, version) = (&srv, a.token.clone(), version.clone());
            async move {
                ok(
                    &srv.op(
                        Some(&token),
                        "AnalysisRoles",
                        json!({ "formVersionId": version }),
                    )
                    .await,
                    "analysisRoles",
                )["roles"]
                    .clone()
            }
        };
        let before = roles().await;
        assert_eq!(
            before["interventionCiLower"],
            "outcomes[].intervention_ci_lower"
        );
        assert_eq!(before["pValue"], "outcomes[].p_value");
        for bad in [
            json!({ "interventionMean": "outcomes[].outcome" }),
            json!({ "interventionCiLevel": 1.5 }),
            json!({ "interventionMean": "outcomes[].nothing" }),
            json!({ "noSuchRole": "outcomes[].outcome" }),
        ] {
            let r = srv
                .op(
                    Some(&a.token),
                    "ConfigureAnalysis",
                    json!({ "formVersionId": version, "roles": bad }),
                )
                .await;
            refused(&r, "configureAnalysis", "BAD_USER_INPUT");
        }
        assert_eq!(roles().await, before, "refused roles changed nothing");
        let r = srv
            .op(
                Some(&a.token),
                "ConfigureAnalysis",
                json!({ "formVersionId": version, "roles": { "comparatorCiLevel": 0.9 } }),
            )
            .await;
        assert_eq!(
            ok(&r, "configureAnalysis")["roles"]["comparatorCiLevel"],
            0.9
        );
        let r = srv
            .op(
                Some(&a.token),
                "ConfigureAnalysis",
                json!({ "formVersionId": version, "roles": { "comparatorCiLevel": null } }),
            )
            .await;
        assert!(
            ok(&r, "configureAnalysis")["roles"]
                .get("comparatorCiLevel")
                .is_none(),
            "null drops a role: {r}"
        );
        let r = srv
            .op(
                Some(&a.token),
                "ConfigureAnalysis",
                json!({ "formVersionId": version, "roles": {} }),
            )
            .await;
        assert_eq!(
            ok(&r, "configureAnalysis")["roles"],
            before,
            "{{}} is the form's own mapping"
        );

        // The acceptance operation, as written.
        let r = srv
        .op(Some(&a.token), "Analysis", json!({ "projectId": project, "formVersionId": version, "values": "FINAL", "measure": "SMD" }))
        .await;
        let an = ok(&r, "analysis");
        let cs = an["comparisons"].as_array().unwrap();
        assert_eq!(cs.len(), cases().len() + 2, "{an}");
        let by = |name: &str| {
            cs.iter()
                .find(|c| c["outcome"] == name)
                .unwrap_or_else(|| panic!("{name}"))
        };
        let ci = by("95% CI n < 60");
        assert_eq!(ci["measure"], "SMD");
        assert_eq!(ci["arms"][0]["derived"][0]["quantity"], "standardDeviation");
        assert_eq!(
            ci["arms"][0]["derived"][0]["method"],
            "SD from 95% CI (t, n < 60)"
        );
        assert!(
            ci["arms"][0]["derived"][0]["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["path"] == "outcomes[4].intervention_ci_lower")
        );
        assert_eq!(
            by("zero cell")["measure"],
            "RR",
            "binary keeps its default beside SMD"
        );
        let neg = by("bad intervention_standard_deviation");
        assert!(
            neg["yi"].is_null() && neg["warnings"].to_string().contains("negative"),
            "{neg}"
        );
        let zero = by("bad intervention_group_size");
        assert!(
            zero["yi"].is_null() && zero["warnings"].to_string().contains("not positive"),
            "{zero}"
        );
        assert!(
            by("median only")["warnings"]
                .to_string()
                .contains("median without quartiles or range")
        );
        let pooled = an["pooled"].as_array().unwrap();
        assert!(
            pooled.iter().all(|p| p["random"]["i2"].as_f64().is_some()),
            "{an}"
        );

        // The dashboard's detail: where each number came from.
        let r = srv
            .op(
                Some(&a.token),
                "AnalysisDetail",
                json!({ "projectId": project, "formVersionId": version }),
            )
            .await;
        let detail = ok(&r, "analysis")["comparisons"]
            .as_array()
            .unwrap()
            .clone();
        let se = detail
            .iter()
            .find(|c| c["outcome"] == "SD from SE")
            .unwrap();
        let sources = se["arms"][0]["sources"].as_array().unwrap();
        assert!(
            sources.iter().any(|s| s["quantity"] == "mean"
                && s["source"] == "EXTRACTED"
                && s["path"] == "outcomes[3].intervention_mean"),
            "{se}"
        );
        assert!(
            sources
                .iter()
                .any(|s| s["quantity"] == "standardDeviation" && s["source"] == "DERIVED"),
            "{se}"
        );
        assert!(
            se["arms"][0]["derived"][0]["formula"]
                .as_str()
                .unwrap()
                .contains("SE·√n")
        );

        // Exports: REVMAN_CSV's three files, JSON's comparisons with derivations.
        let (_, zip_bytes) = export(&srv, &a.token, &project, &version, "REVMAN_CSV").await;
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).expect("a zip");
        let mut names: Vec<String> = zip
            .file_names()
            .map(|n| n.expect("a name").into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "README.txt",
                "study_arms.csv",
                "study_information.csv",
                "study_results.csv"
            ]
        );
        let mut results = String::new();
        zip.by_name("study_results.csv")
            .unwrap()
            .read_to_string(&mut results)
            .unwrap();
        assert!(
            results.starts_with(
                "Study,Outcome,Data type,Intervention,Comparator,Arm,Events,Mean,SD,Total,Notes"
            ),
            "{results}"
        );
        assert!(
            results.contains("standardDeviation DERIVED: SD from 95% CI (t, n < 60)"),
            "{results}"
        );
        let (_, json_bytes) = export(&srv, &a.token, &project, &version, "JSON").await;
        let j: Value = serde_json::from_slice(&json_bytes).unwrap();
        assert_eq!(
            j["comparisons"].as_array().unwrap().len(),
            cases().len() + 2
        );
        assert_eq!(j["studies"][0]["id"], doc);
        assert!(j["comparisons"].to_string().contains("\"DERIVED\""));

        // A VIEWER reads the analysis but does not set roles.
        let v = srv.register("victor").await;
        srv.add_member(&a.token, &a.org_id, &v.email, "VIEWER")
            .await;
        let r = srv
            .op(
                Some(&v.token),
                "Analysis",
                json!({ "projectId": project, "formVersionId": version }),
            )
            .await;
        ok(&r, "analysis");
        let r = srv
            .op(
                Some(&v.token),
                "ConfigureAnalysis",
                json!({ "formVersionId": version, "roles": {} }),
            )
            .await;
        refused(&r, "configureAnalysis", "FORBIDDEN");
        let m = srv.register("mallory").await;
        let r = srv
            .op(
                Some(&m.token),
                "Analysis",
                json!({ "projectId": project, "formVersionId": version }),
            )
            .await;
        refused(&r, "analysis", "NOT_FOUND");
        let r = srv
            .op(
                Some(&m.token),
                "ConfigureAnalysis",
                json!({ "formVersionId": version, "roles": {} }),
            )
            .await;
        refused(&r, "configureAnalysis", "NOT_FOUND");
        srv.stop().await;
        tdb.drop_db().await;
    }
);
