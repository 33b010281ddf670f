//! Extraction on the RCT corpus (`../shared/corpus/rct/`), four measurements
//! through a real node (SQLite, built-in plugins):
//!
//! 1. `lexical`: the offline lexical-extractor's accuracy, from `evaluation`,
//!    on the Yun et al. (2024) numeric results. The task is theirs: given an
//!    intervention/comparator/outcome (one form per gold row, the ICO in the
//!    field descriptions), extract the outcome type, group sizes, events,
//!    means and SDs. Next to it, the share of gold values that occur verbatim
//!    in the converted text (the ceiling for any quoting extractor).
//! 2. `throughput`: documents/minute through llm-extractor and the
//!    openai-compatible adapter against the local OpenAI-protocol server at
//!    a fixed 200 ms latency, at concurrency 1, 8 and 32, as a fraction of
//!    the ideal (every call's 200 ms, perfectly packed, nothing else).
//! 3. `overhead`: the host's cost per LLM call at zero provider latency: the
//!    same request sent directly over HTTP (baseline) vs through the adapter
//!    in its sandbox vs through the whole gateway (cache lookup, limits,
//!    accounting).
//! 4. `tokens`: tokens (cl100k) sent per document with passage retrieval vs
//!    the same requests with the whole paper in place of the passages, and
//!    how many of the gold numbers the passages of the results step keep.
//!
//! Run: `cargo bench -p evistream-tests --bench extraction [-- PART…]`
//! (all parts without arguments; `tokens` alone runs the concurrency-1
//! throughput run it reads).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use evistream::config::Config;
use evistream::jobs::JobRegistry;
use evistream::plugins::llm::{CompletionRequest, Message, Role};
use evistream_tests::llm::FakeLlm;
use evistream_tests::{DbKind, Session, TestDb, TestServer, corpus_pdf, eventually, ok};
use serde_json::{Value, json};

/// Provider latency for the throughput run.
const LATENCY: Duration = Duration::from_millis(200);
/// Copies of each corpus paper in the throughput run (12 × 8 = 96 documents,
/// a multiple of every concurrency measured, so the ideal is reachable).
const COPIES: usize = 8;
/// Calls per path in the overhead run.
const CALLS: usize = 300;

fn rct() -> std::path::PathBuf {
    evistream_tests::ops::repo_root().join("../shared/corpus/rct")
}

/// One row of `gold_numeric_yun2024.csv`.
#[derive(Debug, Clone)]
struct Gold {
    pmcid: String,
    outcome: String,
    intervention: String,
    comparator: String,
    /// Field name → value (non-empty cells only).
    values: BTreeMap<&'static str, Value>,
}

/// Gold column → form field.
const COLUMNS: [(&str, &str); 9] = [
    ("outcome_type", "outcome_type"),
    ("intervention_group_size", "intervention_group_size"),
    ("comparator_group_size", "comparator_group_size"),
    ("intervention_events", "intervention_events"),
    ("comparator_events", "comparator_events"),
    ("intervention_mean", "intervention_mean"),
    ("intervention_standard_deviation", "intervention_sd"),
    ("comparator_mean", "comparator_mean"),
    ("comparator_standard_deviation", "comparator_sd"),
];

fn gold() -> Vec<Gold> {
    let mut r = csv::Reader::from_path(rct().join("gold_numeric_yun2024.csv")).expect("gold csv");
    let head = r.headers().expect("header").clone();
    let col = |name: &str| head.iter().position(|h| h == name).expect(name);
    r.records()
        .map(|rec| {
            let rec = rec.expect("row");
            let mut values = BTreeMap::new();
            for (column, field) in COLUMNS {
                let cell = rec[col(column)].trim().replace(',', "");
                if cell.is_empty() {
                    continue;
                }
                let v = if field == "outcome_type" {
                    json!(cell)
                } else if field.ends_with("_size") || field.ends_with("_events") {
                    match cell.parse::<f64>() {
                        Ok(x) if x.fract() == 0.0 => json!(x as i64),
                        _ => continue,
                    }
                } else {
                    match cell.parse::<f64>() {
                        Ok(x) => json!(x),
                        Err(_) => continue,
                    }
                };
                values.insert(field, v);
            }
            Gold {
                pmcid: format!("PMC{}", &rec[col("pmcid")]),
                outcome: rec[col("outcome")].trim().to_owned(),
                intervention: rec[col("intervention")].trim().to_owned(),
                comparator: rec[col("comparator")].trim().to_owned(),
                values,
            }
        })
        .collect()
}

/// The form for one gold row: the ICO goes into the descriptions, as the
/// prompt carries it in Yun et al.'s setup.
fn ico_form(g: &Gold) -> Value {
    let (o, i, c) = (&g.outcome, &g.intervention, &g.comparator);
    let n = |arm: &str, who: &str| {
        json!({ "name": format!("{arm}_group_size"), "type": "INTEGER", "unit": "participants",
                "description": format!("Number of participants analysed in the {who} group for the outcome {o}") })
    };
    let ev = |arm: &str, who: &str| {
        json!({ "name": format!("{arm}_events"), "type": "INTEGER",
                "description": format!("Number of participants in the {who} group with {o} (events)") })
    };
    let mean = |arm: &str, who: &str| {
        json!({ "name": format!("{arm}_mean"), "type": "NUMBER",
                "description": format!("Mean {o} in the {who} group") })
    };
    let sd = |arm: &str, who: &str| {
        json!({ "name": format!("{arm}_sd"), "type": "NUMBER", "hints": "SD, standard deviation, ±",
                "description": format!("Standard deviation of {o} in the {who} group") })
    };
    json!([
        { "name": "outcome_type", "type": "ENUM", "options": ["binary", "continuous"],
          "description": format!("Whether {o} is a binary (events) or a continuous (mean, SD) outcome") },
        n("intervention", i), n("comparator", c),
        ev("intervention", i), ev("comparator", c),
        mean("intervention", i), sd("intervention", i),
        mean("comparator", c), sd("comparator", c),
    ])
}

/// The form a review team would write for the same data: the trial's
/// arms and every comparison, as lists.
fn review_form() -> Value {
    let num = |name: &str, t: &str, d: &str| json!({ "name": name, "type": t, "description": d });
    json!([
        num("randomized_total", "INTEGER", "Total number of participants randomised"),
        { "name": "trial_registration", "type": "TEXT", "description": "Trial registry and number" },
        { "name": "arms", "type": "ARRAY", "description": "The trial's arms", "fields": [
            num("name", "TEXT", "Arm name"),
            num("randomized", "INTEGER", "Participants randomised to the arm"),
        ]},
        { "name": "comparisons", "type": "ARRAY",
          "description": "Every intervention vs comparator result reported for an outcome", "fields": [
            num("outcome", "TEXT", "The outcome"),
            num("intervention", "TEXT", "The intervention arm"),
            num("comparator", "TEXT", "The comparator arm"),
            { "name": "outcome_type", "type": "ENUM", "options": ["binary", "continuous"] },
            num("intervention_events", "INTEGER", "Events in the intervention arm"),
            num("intervention_group_size", "INTEGER", "Participants analysed in the intervention arm"),
            num("comparator_events", "INTEGER", "Events in the comparator arm"),
            num("comparator_group_size", "INTEGER", "Participants analysed in the comparator arm"),
            num("intervention_mean", "NUMBER", "Mean in the intervention arm"),
            num("intervention_sd", "NUMBER", "Standard deviation in the intervention arm"),
            num("comparator_mean", "NUMBER", "Mean in the comparator arm"),
            num("comparator_sd", "NUMBER", "Standard deviation in the comparator arm"),
        ]},
    ])
}

fn papers() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(rct().join("pdf"))
        .expect("corpus pdf dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pdf"))
        .collect();
    v.sort();
    v
}

/// A node's configuration on `tdb` (not the tests' short timings).
fn config(tdb: &TestDb) -> Config {
    let mut c = Config::for_data_dir(&tdb.path());
    c.database_url = tdb.url.clone();
    c.database_max_connections = 48;
    c.jobs.poll_interval_ms = 50;
    c.plugins.allow_private_networks = true; // the provider is on loopback
    c
}

async fn start(c: Config) -> TestServer {
    TestServer::start(c, JobRegistry::new())
        .await
        .expect("server")
}

/// Starts an extraction and waits for its parent job; returns the job.
async fn extract(
    srv: &TestServer,
    s: &Session,
    project: &str,
    version: &str,
    docs: Option<&[String]>,
) -> Value {
    let mut vars = json!({ "projectId": project, "formVersionId": version });
    if let Some(d) = docs {
        vars["documentIds"] = json!(d);
    }
    let r = srv.op(Some(&s.token), "StartExtraction", vars).await;
    let id = ok(&r, "startExtraction")["id"]
        .as_str()
        .expect("job id")
        .to_owned();
    wait_job(srv, s, &id).await
}

async fn wait_job(srv: &TestServer, s: &Session, id: &str) -> Value {
    eventually(Duration::from_secs(1800), || async {
        let r = srv
            .op(Some(&s.token), "JobDetail", json!({ "id": id }))
            .await;
        let j = r["data"]["job"].clone();
        matches!(
            j["state"].as_str(),
            Some("SUCCEEDED" | "FAILED" | "CANCELLED")
        )
        .then_some(j)
    })
    .await
}

async fn doc_text(srv: &TestServer, s: &Session, id: &str) -> String {
    let r = srv
        .op(Some(&s.token), "Document", json!({ "id": id }))
        .await;
    ok(&r, "document")["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Number tokens of `text`, thousands separators dropped (`6,032.37` → `6032.37`).
fn numbers(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &ch) in chars.iter().enumerate() {
        let next_digit = chars.get(i + 1).is_some_and(char::is_ascii_digit);
        if ch.is_ascii_digit() || ((ch == '.' || ch == '·') && !cur.is_empty() && next_digit) {
            cur.push(if ch == '·' { '.' } else { ch });
        } else if ch == ',' && !cur.is_empty() && next_digit {
            // thousands separator: skip
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Whether the gold value `v` occurs as a number in `text`'s numbers.
fn occurs(v: &Value, nums: &[String]) -> bool {
    let Some(x) = v.as_f64() else { return false };
    nums.iter().any(|n| {
        n.parse::<f64>()
            .is_ok_and(|y| (y - x).abs() < 1e-9 || (x < 0.0 && (y + x).abs() < 1e-9))
    })
}

async fn lexical() {
    println!("\n== 1. lexical-extractor accuracy on the Yun et al. numeric results");
    let tdb = TestDb::new(DbKind::Sqlite).await.expect("database");
    let srv = start(config(&tdb)).await;
    let s = srv.register("bench").await;
    let project = srv.project(&s.token, &s.org_id, "Yun 2024").await;
    let names = papers();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let ids = srv.converted_papers(&s.token, &project, &refs).await;
    let doc_of: HashMap<String, String> = names
        .iter()
        .zip(&ids)
        .map(|(n, id)| (n.trim_end_matches(".pdf").to_owned(), id.clone()))
        .collect();
    let mut texts: HashMap<String, Vec<String>> = HashMap::new();
    for (n, id) in &doc_of {
        texts.insert(n.clone(), numbers(&doc_text(&srv, &s, id).await));
    }
    let rows: Vec<Gold> = gold()
        .into_iter()
        .filter(|g| doc_of.contains_key(&g.pmcid))
        .collect();
    let t = Instant::now();
    // EVISTREAM_BENCH_DUMP=DIR: the texts, programs, gold and answers, to
    // study the extractor offline (`plugins/lexical-extractor/examples`).
    let dump = std::env::var_os("EVISTREAM_BENCH_DUMP").map(std::path::PathBuf::from);
    let mut dumped = 0usize;
    let mut per_field: BTreeMap<String, (u64, f64, u64)> = BTreeMap::new();
    for g in &rows {
        let doc = &doc_of[&g.pmcid];
        let version = srv.approved_version(&s.token, &project, ico_form(g)).await;
        let job = extract(
            &srv,
            &s,
            &project,
            &version,
            Some(std::slice::from_ref(doc)),
        )
        .await;
        assert_eq!(job["state"], "SUCCEEDED", "{job}");
        if let Some(dir) = &dump {
            dump_case(&srv, &s, dir, &project, &version, doc, g, &mut dumped).await;
        }
        let values: serde_json::Map<String, Value> = g
            .values
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let r = srv
            .op(
                Some(&s.token),
                "ImportGroundTruth",
                json!({ "projectId": project, "formVersionId": version,
                        "records": [{ "documentId": doc, "values": values }] }),
            )
            .await;
        ok(&r, "importGroundTruth");
        let r = srv
            .op(
                Some(&s.token),
                "Evaluation",
                json!({ "projectId": project, "formVersionId": version }),
            )
            .await;
        for f in ok(&r, "evaluation")["fields"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let e = per_field
                .entry(f["path"].as_str().unwrap_or("?").to_owned())
                .or_default();
            e.0 += f["support"].as_u64().unwrap_or(0);
            e.1 += f["correct"].as_f64().unwrap_or(0.0);
        }
        for (k, v) in &g.values {
            if k != &"outcome_type" && occurs(v, &texts[&g.pmcid]) {
                per_field.entry((*k).to_owned()).or_default().2 += 1;
            }
        }
    }
    println!(
        "{} ICO rows over {} papers, one form each, {:.1} s\n",
        rows.len(),
        doc_of.len(),
        t.elapsed().as_secs_f64()
    );
    println!(
        "{:<26} {:>7} {:>8} {:>9} {:>14}",
        "field", "support", "correct", "accuracy", "in text (ceil)"
    );
    let (mut sup, mut cor) = (0u64, 0.0);
    for (_, field) in COLUMNS {
        let Some((n, c, verbatim)) = per_field.get(field) else {
            continue;
        };
        sup += n;
        cor += c;
        let ceil = if field == "outcome_type" {
            "-".to_owned()
        } else {
            format!("{:.2}", *verbatim as f64 / *n as f64)
        };
        println!(
            "{field:<26} {n:>7} {c:>8.1} {:>9.3} {ceil:>14}",
            c / *n as f64
        );
    }
    println!(
        "{:<26} {sup:>7} {cor:>8.1} {:>9.3}",
        "overall",
        cor / sup as f64
    );
    srv.stop().await;
}

#[allow(clippy::too_many_arguments)]
async fn dump_case(
    srv: &TestServer,
    s: &Session,
    dir: &std::path::Path,
    project: &str,
    version: &str,
    doc: &str,
    g: &Gold,
    n: &mut usize,
) {
    std::fs::create_dir_all(dir).expect("dump dir");
    let text_file = dir.join(format!("{}.md", g.pmcid));
    if !text_file.exists() {
        std::fs::write(&text_file, doc_text(srv, s, doc).await).expect("write");
    }
    let r = srv
        .op(Some(&s.token), "FormVersion", json!({ "id": version }))
        .await;
    let program = ok(&r, "formVersion")["program"].clone();
    let r = srv
        .op(
            Some(&s.token),
            "Results",
            json!({ "projectId": project, "formVersionId": version }),
        )
        .await;
    let got: BTreeMap<String, Value> = ok(&r, "results")["edges"][0]["node"]["values"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            (
                v["path"].as_str().unwrap_or("").to_owned(),
                v["value"].clone(),
            )
        })
        .collect();
    let case = json!({ "paper": g.pmcid, "ico": [g.outcome, g.intervention, g.comparator],
                       "gold": g.values, "got": got, "program": program });
    std::fs::write(
        dir.join(format!("case{:02}.json", *n)),
        serde_json::to_string_pretty(&case).unwrap_or_default(),
    )
    .expect("write");
    *n += 1;
}

/// The PDF with a comment after `%%EOF`: other bytes (another document),
/// the same paper.
fn copy_of(pdf: &[u8], k: usize) -> Vec<u8> {
    let mut b = pdf.to_vec();
    b.extend_from_slice(format!("\n% evistream bench copy {k}\n").as_bytes());
    b
}

/// Per request: (system, user, schema) of the recorded OpenAI bodies.
fn prompts(fake: &FakeLlm) -> Vec<(String, String, String)> {
    fake.requests()
        .into_iter()
        .map(|(_, body)| {
            let msg = |role: &str| {
                body["messages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|m| m["role"] == role)
                    .filter_map(|m| m["content"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            (
                msg("system"),
                msg("user"),
                body["response_format"]["json_schema"].to_string(),
            )
        })
        .collect()
}

async fn throughput(levels: &[usize], with_tokens: bool) {
    println!(
        "\n== 2. llm-extractor throughput at {} ms provider latency",
        LATENCY.as_millis()
    );
    let fake = FakeLlm::start().await;
    fake.set_latency(LATENCY);
    let tdb = TestDb::new(DbKind::Sqlite).await.expect("database");
    let base = config(&tdb);
    let srv = start(base.clone()).await;
    let s = srv.register("bench").await;
    let project = srv.project(&s.token, &s.org_id, "Throughput").await;
    srv.bind_llm(
        &s.token,
        &project,
        "openai-compatible",
        &fake.base_url,
        "bench-model",
        "sk-bench",
    )
    .await;
    let names = papers();
    let mut ids = Vec::new();
    let mut paper_of: HashMap<String, String> = HashMap::new();
    for k in 0..COPIES {
        for n in &names {
            let r = srv
                .upload(
                    Some(&s.token),
                    &project,
                    &format!("{k}-{n}"),
                    copy_of(&corpus_pdf(n), k),
                )
                .await;
            let id = ok(&r, "uploadDocument")["id"]
                .as_str()
                .expect("id")
                .to_owned();
            paper_of.insert(id.clone(), n.trim_end_matches(".pdf").to_owned());
            ids.push(id);
        }
    }
    for id in &ids {
        srv.wait_converted(&s.token, id, id).await;
    }
    let version = srv
        .approved_version(&s.token, &project, review_form())
        .await;
    srv.stop().await;

    println!(
        "{} documents ({} papers × {COPIES}), response cache off\n",
        ids.len(),
        names.len()
    );
    println!(
        "{:>11} {:>6} {:>9} {:>9} {:>11} {:>10} {:>9}",
        "concurrency", "calls", "wall s", "ideal s", "docs/min", "ideal/min", "fraction"
    );
    let mut e2e_overhead = None;
    let mut first_prompts = Vec::new();
    for &c in levels {
        let mut cfg = base.clone();
        cfg.jobs.concurrency = c;
        cfg.llm.max_concurrency_per_project = c as u32;
        cfg.llm.cache = false;
        let srv = start(cfg).await;
        let before = fake.request_count();
        let job = extract(&srv, &s, &project, &version, None).await;
        assert_eq!(job["state"], "SUCCEEDED", "{job}");
        let calls = fake.request_count() - before;
        // Every document must have gone through: a run that lost units
        // would look fast.
        let r = srv
            .op(Some(&s.token), "JobUnits", json!({ "id": job["id"] }))
            .await;
        let units = ok(&r, "job")["children"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let failed: Vec<&Value> = units.iter().filter(|u| u["state"] != "SUCCEEDED").collect();
        assert!(
            units.len() == ids.len() && failed.is_empty(),
            "{} units, not succeeded: {failed:?}",
            units.len()
        );
        let wall = elapsed(&job);
        let ideal = calls as f64 * LATENCY.as_secs_f64() / c as f64;
        let docs = ids.len() as f64;
        println!(
            "{c:>11} {calls:>6} {wall:>9.2} {ideal:>9.2} {:>11.1} {:>10.1} {:>9.2}",
            docs / wall * 60.0,
            docs / ideal * 60.0,
            ideal / wall
        );
        if c == 1 {
            e2e_overhead = Some((wall - ideal) / calls as f64);
            first_prompts = prompts(&fake);
        }
        srv.stop().await;
    }
    if let Some(o) = e2e_overhead {
        println!(
            "\nhost time per LLM call at concurrency 1, end to end (wall − calls × latency, / calls): {:.1} ms",
            o * 1000.0
        );
        println!(
            "(the job queue, the extractor's sandbox and its retrieval, the adapter, the gateway, grounding, the writes)"
        );
    }
    if with_tokens {
        let srv = start(base.clone()).await;
        tokens(&srv, &s, &ids, &paper_of, &first_prompts).await;
        srv.stop().await;
    }
}

/// Job wall time from the server's own timestamps.
fn elapsed(job: &Value) -> f64 {
    let t = |k: &str| {
        chrono::DateTime::parse_from_rfc3339(job[k].as_str().unwrap_or_default())
            .expect("timestamp")
            .timestamp_millis()
    };
    (t("finishedAt") - t("createdAt")) as f64 / 1000.0
}

async fn tokens(
    srv: &TestServer,
    s: &Session,
    ids: &[String],
    paper_of: &HashMap<String, String>,
    requests: &[(String, String, String)],
) {
    println!("\n== 4. tokens sent per document (cl100k), passages vs whole paper");
    let bpe = tiktoken_rs::cl100k_base().expect("cl100k");
    let count = |t: &str| bpe.encode_ordinary(t).len();
    // One copy per paper is enough: the copies' texts are the same.
    let mut text_of: BTreeMap<String, String> = BTreeMap::new();
    for id in ids {
        let p = &paper_of[id];
        if !text_of.contains_key(p) {
            text_of.insert(p.clone(), doc_text(srv, s, id).await);
        }
    }
    let gold = gold();
    const MARK: &str = "Passages of the paper:\n\n";
    // paper → (calls, tokens sent, tokens with the whole paper)
    let mut per_paper: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    // paper → passages of its results (`comparisons`) step
    let mut results_ctx: BTreeMap<String, String> = BTreeMap::new();
    for (system, user, schema) in requests {
        let Some(start) = user.find(MARK).map(|i| i + MARK.len()) else {
            continue;
        };
        let Some(end) = user.rfind("\n\n---\n").filter(|&e| e >= start) else {
            continue;
        };
        let ctx = &user[start..end];
        // The paper holding most of the passages (boilerplate such as a
        // licence line occurs in several).
        let parts: Vec<&str> = ctx.split("\n\n").filter(|p| p.len() > 40).collect();
        let Some((paper, text)) = text_of
            .iter()
            .map(|(p, t)| (p, t, parts.iter().filter(|x| t.contains(**x)).count()))
            .filter(|(_, _, n)| *n > 0)
            .max_by_key(|(_, _, n)| *n)
            .map(|(p, t, _)| (p, t))
        else {
            continue;
        };
        let sent = count(system) + count(user) + count(schema);
        let whole = sent - count(ctx) + count(text);
        let e = per_paper.entry(paper.clone()).or_default();
        // The c=1 run saw every copy; count per document, not per paper.
        e.0 += 1;
        e.1 += sent;
        e.2 += whole;
        if schema.contains("comparisons") {
            results_ctx.insert(paper.clone(), ctx.to_owned());
        }
    }
    println!(
        "{:<12} {:>8} {:>6} {:>12} {:>12} {:>7} {:>16}",
        "paper", "text tok", "calls", "sent/doc", "whole/doc", "ratio", "gold nums kept"
    );
    let (mut ts, mut tw, mut kept, mut present) = (0usize, 0usize, 0usize, 0usize);
    for (paper, (calls, sent, whole)) in &per_paper {
        let docs = COPIES; // every copy was extracted once at concurrency 1
        let text = &text_of[paper];
        let all = numbers(text);
        let ctx_nums = numbers(results_ctx.get(paper).map(String::as_str).unwrap_or(""));
        let (mut k, mut p) = (0, 0);
        for g in gold.iter().filter(|g| &g.pmcid == paper) {
            for (f, v) in &g.values {
                if *f == "outcome_type" || v.as_f64().is_some_and(|x| x.fract() == 0.0) {
                    continue; // decimals only: integers such as 24 occur everywhere
                }
                if occurs(v, &all) {
                    p += 1;
                    k += usize::from(occurs(v, &ctx_nums));
                }
            }
        }
        kept += k;
        present += p;
        ts += sent / docs;
        tw += whole / docs;
        println!(
            "{paper:<12} {:>8} {:>6} {:>12} {:>12} {:>7.2} {:>16}",
            count(text),
            calls / docs,
            sent / docs,
            whole / docs,
            *sent as f64 / *whole as f64,
            format!("{k}/{p}")
        );
    }
    let n = per_paper.len().max(1);
    println!(
        "{:<12} {:>8} {:>6} {:>12} {:>12} {:>7.2} {:>16}",
        "mean",
        "",
        "",
        ts / n,
        tw / n,
        ts as f64 / tw.max(1) as f64,
        format!("{kept}/{present}")
    );
    println!(
        "(gold nums kept: decimal gold values present in the text that are also in the results step's passages)"
    );
}

async fn overhead() {
    println!("\n== 3. host overhead per LLM call (provider answers at once; {CALLS} calls each)");
    let fake = FakeLlm::start().await;
    let tdb = TestDb::new(DbKind::Sqlite).await.expect("database");
    let mut cfg = config(&tdb);
    cfg.llm.cache = false;
    let srv = start(cfg).await;
    let s = srv.register("bench").await;
    let project = srv.project(&s.token, &s.org_id, "Overhead").await;
    srv.bind_llm(
        &s.token,
        &project,
        "openai-compatible",
        &fake.base_url,
        "bench-model",
        "sk-bench",
    )
    .await;
    let app = srv.node.app.clone();
    let model = {
        use sea_orm::EntityTrait;
        evistream::db::entities::project::Entity::find_by_id(project.clone())
            .one(&app.db)
            .await
            .expect("db")
            .expect("project")
    };
    let binding = evistream::registry::binding::load(&app, &model)
        .await
        .expect("binding");
    let schema = json!({ "type": "object", "additionalProperties": false, "required": ["n"],
        "properties": { "n": { "type": "object", "additionalProperties": false,
            "required": ["value", "status", "quote", "confidence"],
            "properties": { "value": { "type": ["integer", "null"] }, "status": { "type": "string" },
                            "quote": { "type": "string" }, "confidence": { "type": "number" } } } } });
    let user = "Passages of the paper:\n\nA total of 120 patients were randomised (n = 60 per arm).\n\n---\nExtract `n`.";
    let request = CompletionRequest {
        messages: vec![
            Message {
                role: Role::System,
                content: "You extract data from trials.".into(),
            },
            Message {
                role: Role::User,
                content: user.into(),
            },
        ],
        json_schema: Some(schema.to_string()),
        schema_name: Some("n".into()),
        temperature: Some(0.0),
        max_tokens: Some(512),
    };
    let body = json!({
        "model": "bench-model", "temperature": 0.0, "max_tokens": 512,
        "messages": [{ "role": "system", "content": "You extract data from trials." }, { "role": "user", "content": user }],
        "response_format": { "type": "json_schema", "json_schema": { "name": "n", "strict": true, "schema": schema } },
    });
    let http = reqwest::Client::new();
    let url = format!("{}/chat/completions", fake.base_url);
    let direct = || async {
        let r = http
            .post(&url)
            .bearer_auth("sk-bench")
            .json(&body)
            .send()
            .await
            .expect("send");
        assert!(r.status().is_success());
        r.json::<Value>().await.expect("json");
    };
    let adapter = || async {
        evistream::llm::complete(&app, &binding, &request)
            .await
            .expect("adapter call");
    };
    let gateway = || async {
        let call = evistream::llm::gateway::CallFor {
            binding: &binding,
            job_id: None,
            check: false,
        };
        evistream::llm::gateway::complete(&app, call, &request)
            .await
            .expect("gateway call");
    };
    for _ in 0..20 {
        direct().await;
        adapter().await;
        gateway().await;
    }
    let time = |d: Duration| d.as_secs_f64() * 1000.0 / CALLS as f64;
    let t = Instant::now();
    for _ in 0..CALLS {
        direct().await;
    }
    let base_ms = time(t.elapsed());
    let t = Instant::now();
    for _ in 0..CALLS {
        adapter().await;
    }
    let adapter_ms = time(t.elapsed());
    let t = Instant::now();
    for _ in 0..CALLS {
        gateway().await;
    }
    let gateway_ms = time(t.elapsed());
    println!(
        "{:<44} {:>9} {:>12} {:>8}",
        "path", "ms/call", "overhead ms", "ratio"
    );
    println!(
        "{:<44} {base_ms:>9.3} {:>12} {:>8.2}",
        "direct HTTP (baseline)", "-", 1.0
    );
    for (name, ms) in [
        ("adapter in its sandbox (wasi:http, policy)", adapter_ms),
        ("gateway (+ cache lookup, limits, accounting)", gateway_ms),
    ] {
        println!(
            "{name:<44} {ms:>9.3} {:>12.3} {:>8.2}",
            ms - base_ms,
            ms / base_ms
        );
    }
    srv.stop().await;
}

#[tokio::main]
async fn main() {
    if !rct().join("gold_numeric_yun2024.csv").exists() {
        println!("../shared/corpus/rct is absent: nothing to measure");
        return;
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |p: &str| args.is_empty() || args.iter().any(|a| a == p);
    if want("lexical") {
        lexical().await;
    }
    if want("overhead") {
        overhead().await;
    }
    // `tokens` reads the requests of the concurrency-1 run.
    if want("throughput") {
        throughput(&[1, 8, 32], want("tokens")).await;
    } else if want("tokens") {
        throughput(&[1], true).await;
    }
}
