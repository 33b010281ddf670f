//! Hostile GraphQL requests and data, shared by the regression tests and
//! the hostile-tenant bench (which sends them at full size).

use std::time::{Duration, Instant};

use evistream::db::entities::extraction_value;
use evistream::db::types::EvidenceList;
use evistream::extraction::pipeline::Grounding;
use evistream::plugins::extractor::ValueStatus;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};

/// A query whose argument nests `levels` brackets.
pub fn nested_literal(levels: usize) -> String {
    format!(
        "query {{ me(x: {}1{}) {{ id }} }}",
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

/// Fragments that each spread the next twice: 2^`levels` fields once expanded.
pub fn fragment_fan_out(levels: usize) -> String {
    let mut q = String::from("query { ...f0 }\n");
    for i in 0..levels {
        q.push_str(&format!(
            "fragment f{i} on Query {{ ...f{n} ...f{n} }}\n",
            n = i + 1
        ));
    }
    q.push_str(&format!("fragment f{levels} on Query {{ __typename }}\n"));
    q
}

/// `fragments` fragments, each nesting `depth` fields before it spreads the
/// next: a shallow text whose nesting, once expanded, is their product.
pub fn fragment_chain(fragments: usize, depth: usize) -> String {
    let mut q = String::from("query { ...c0 }\n");
    for i in 0..fragments {
        let next = if i + 1 < fragments {
            format!("...c{}", i + 1)
        } else {
            "id".into()
        };
        q.push_str(&format!(
            "fragment c{i} on Query {{ {}{next} {}}}\n",
            "me { ".repeat(depth),
            "} ".repeat(depth)
        ));
    }
    q
}

/// `n` aliases of `__typename`.
pub fn aliases(n: usize) -> String {
    let fields: String = (0..n).map(|i| format!("a{i}: __typename ")).collect();
    format!("{{ {fields} }}")
}

/// A request another tenant keeps sending while an attack runs.
#[derive(Debug, Clone)]
pub enum Probe {
    /// GET this URL (`/livez`); it must answer 2xx.
    Get(String),
    /// The `Me` query at this `/graphql` URL with this token; it must
    /// answer the user.
    Me {
        /// `http://…/graphql`.
        url: String,
        /// The other tenant's access token.
        token: String,
    },
}

/// The slowest answer to `probe`, sent back to back (20 ms apart) until
/// `work` ends, and how many were sent; with `work`'s output. The probes
/// run on a thread and runtime of their own, so a stalled node cannot
/// also stall (and so hide) the probing.
pub async fn slowest_during<W: std::future::Future>(work: W, probe: Probe) -> (W::Output, Answers) {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prober = {
        let done = done.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("probe runtime");
            rt.block_on(async move {
                let http = reqwest::Client::new();
                let me = super::ops::operation("Me");
                let mut times = Vec::new();
                let mut n = 0usize;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let t = Instant::now();
                    match &probe {
                        Probe::Get(url) => {
                            let r = http.get(url).send().await.expect("probe sent");
                            assert!(r.status().is_success(), "{url}: {}", r.status());
                        }
                        Probe::Me { url, token } => {
                            let r: Value = http
                                .post(url)
                                .bearer_auth(token)
                                .json(&json!({ "query": me }))
                                .send()
                                .await
                                .expect("probe sent")
                                .json()
                                .await
                                .expect("probe answered");
                            assert!(r["data"]["me"]["id"].is_string(), "{r}");
                        }
                    }
                    times.push(t.elapsed());
                    if std::env::var("PROBE_DEBUG").is_ok() {
                        eprintln!("probe {n}: {:?}", t.elapsed());
                    }
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                times
            })
        })
    };
    let out = work.await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let times = tokio::task::spawn_blocking(move || prober.join().expect("the prober"))
        .await
        .expect("joined");
    (out, Answers { times })
}

/// How long each of another tenant's probes took while an attack ran.
#[derive(Debug, Clone)]
pub struct Answers {
    /// In the order sent.
    pub times: Vec<Duration>,
}

impl Answers {
    /// The slowest answer.
    pub fn slowest(&self) -> Duration {
        self.times.iter().copied().max().unwrap_or_default()
    }

    /// The 90th percentile.
    pub fn typical(&self) -> Duration {
        let mut t = self.times.clone();
        t.sort();
        t.get(t.len().saturating_sub(1) * 9 / 10)
            .copied()
            .unwrap_or_default()
    }

    /// How many probes answered.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// True when none did.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Asserts the other tenant kept being answered: 9 in 10 probes within
    /// 100 ms, none beyond 1 s. The stalls these tests replay held other
    /// tenants for seconds; probes are sent one after another, so a stall
    /// shows as one slow probe, which the second bound catches, while a
    /// debug build on two cores shared with the database may miss 100 ms
    /// now and then without anything being wrong.
    #[track_caller]
    pub fn assert_kept_answering(&self, what: &str) {
        assert!(!self.is_empty(), "no probe answered during {what}");
        assert!(
            self.typical() < Duration::from_millis(100) && self.slowest() < Duration::from_secs(1),
            "during {what}, another tenant waited {:?} (90th percentile {:?}, of {} probes)",
            self.slowest(),
            self.typical(),
            self.len()
        );
    }
}

/// `n` items `arms[i]` (name, n) in `org`'s result `result`, the list in
/// the opposite order of [`truth_arms`]; each `n` off by `off` (1: no item
/// is identical to its reference item).
pub async fn reversed_arms(
    db: &sea_orm::DatabaseConnection,
    org: &str,
    result: &str,
    n: usize,
    off: usize,
) {
    let rows: Vec<(String, Value)> = (0..n)
        .flat_map(|i| {
            let item = n - 1 - i;
            [
                (format!("arms[{i}].name"), json!(format!("arm {item}"))),
                (format!("arms[{i}].n"), json!(item + off)),
            ]
        })
        .collect();
    replace_values(db, org, result, &rows).await;
}

/// Replaces the values of `org`'s result `result` with `rows` (path,
/// value), each FOUND without evidence: a result with exactly these values.
pub async fn replace_values(
    db: &sea_orm::DatabaseConnection,
    org: &str,
    result: &str,
    rows: &[(String, Value)],
) {
    extraction_value::Entity::delete_many()
        .filter(extraction_value::Column::ResultId.eq(result))
        .exec(db)
        .await
        .expect("values cleared");
    let rows: Vec<extraction_value::ActiveModel> = rows
        .iter()
        .enumerate()
        .map(|(ordinal, (path, value))| extraction_value::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            organization_id: Set(org.to_owned()),
            result_id: Set(result.to_owned()),
            ordinal: Set(ordinal as i32),
            path: Set(path.clone()),
            value: Set(value.to_string()),
            status: Set(ValueStatus::Found),
            confidence: Set(0.5),
            evidence: Set(EvidenceList::default()),
            grounding: Set(Grounding::None),
            author_user_id: Set(None),
            created_at: Set(0),
        })
        .collect();
    for chunk in rows.chunks(500) {
        extraction_value::Entity::insert_many(chunk.to_vec())
            .exec(db)
            .await
            .expect("values stored");
    }
}

/// Reference items `arms[i]` = (`arm i`, i) for `doc`.
pub fn truth_arms(doc: &str, n: usize) -> Value {
    let values: serde_json::Map<String, Value> = (0..n)
        .flat_map(|i| {
            [
                (format!("arms[{i}].name"), json!(format!("arm {i}"))),
                (format!("arms[{i}].n"), json!(i)),
            ]
        })
        .collect();
    json!([{ "documentId": doc, "values": values }])
}
