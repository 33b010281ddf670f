//! What review did to a form version's values across a project: the
//! figures of `reviewSummary` and the disclosure text built from them.

use std::collections::{HashMap, HashSet};

use super::agreement;
use super::{ReviewMode, ReviewStatus, ValueState, of_results, rules_of, state};
use crate::app::App;
use crate::auth::Role;
use crate::db::entities::form_version;
use crate::error::ServiceResult;
use crate::forms::{self, fields};
use crate::tenancy::Access;

/// How review went for one field, over the documents.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSummary {
    /// Template path (`arms[].name`).
    pub path: String,
    /// Values a person decided on.
    pub reviewed: u32,
    /// Extracted values that survived review as they were.
    pub extractor_accepted: u32,
    /// Extracted values a person corrected or rejected.
    pub extractor_corrected: u32,
    /// Agreement between independent extractions (DUAL; none in SINGLE).
    pub agreement: Option<f64>,
    /// Cohen's kappa of those extractions for ENUM and BOOLEAN fields.
    pub kappa: Option<f64>,
}

/// A form version's review across a project.
pub struct Summary {
    /// How the project reviews.
    pub mode: ReviewMode,
    /// Documents with results.
    pub documents: u32,
    /// Reviews complete.
    pub complete: u32,
    /// Values waiting for an adjudicator.
    pub disputed: u32,
    /// Values extracted.
    pub extracted: u32,
    /// Extracted values no person decided on.
    pub unreviewed: u32,
    /// Extracted values accepted as extracted.
    pub verified: u32,
    /// Extracted values replaced by a reviewer's.
    pub corrected: u32,
    /// Extracted values rejected as not reported.
    pub rejected: u32,
    /// Values on which all extractions agreed (DUAL).
    pub agreed: u32,
    /// Disputed values an adjudicator resolved (DUAL).
    pub resolved: u32,
    /// Reviewers per document.
    pub reviewers: u32,
    /// Values reviewers added that the extractor missed.
    pub added: u32,
    /// Per field, in form order.
    pub fields: Vec<FieldSummary>,
    /// Documents with results left out because the caller may still
    /// extract them blind (DUAL).
    pub withheld: u32,
    /// The results behind it (provenance for the disclosure).
    rows: Vec<crate::extraction::ResultRow>,
    version: form_version::Model,
}

/// What became of an extracted value.
enum Fate {
    /// No person decided on it.
    Unreviewed,
    /// It survived review (accepted, agreed, or chosen by an adjudicator).
    Kept,
    /// A person replaced it.
    Corrected,
    /// A person found the paper does not report it.
    Rejected,
    /// Disputed, waiting for an adjudicator.
    Pending,
}

/// Review figures of a form version in a project (VIEWER+).
pub async fn summary(
    app: &App,
    access: &Access,
    project_id: &str,
    form_version_id: &str,
) -> ServiceResult<Summary> {
    let (p, v) =
        crate::extraction::project_version(app, access, project_id, form_version_id, Role::Viewer)
            .await?;
    let rules = rules_of(app, &v).await?;
    let mut rows = crate::extraction::all_results(app, &p.organization_id, &v.id).await?;
    let mut reviews = of_results(app, access, &v, &rules, &rows).await?;
    // The documents the caller may still extract blind: none of their
    // values, counts or agreement are theirs to see yet.
    let before = rows.len();
    rows.retain(|r| reviews.get(&r.document.id).is_none_or(|v| !v.blind));
    reviews.retain(|_, v| !v.blind);
    let withheld = (before - rows.len()) as u32;
    let form_fields = forms::version_fields(&v)?;
    let by_path = fields::by_path(&form_fields);
    let mut s = Summary {
        mode: rules.mode,
        reviewers: rules.reviewers as u32,
        agreed: 0,
        resolved: 0,
        documents: rows.len() as u32,
        complete: 0,
        disputed: 0,
        extracted: 0,
        unreviewed: 0,
        verified: 0,
        corrected: 0,
        rejected: 0,
        added: 0,
        fields: by_path
            .iter()
            .filter(|(_, f)| f.field_type != forms::FieldType::Object)
            .map(|(path, _)| FieldSummary {
                path: path.clone(),
                reviewed: 0,
                extractor_accepted: 0,
                extractor_corrected: 0,
                agreement: None,
                kappa: None,
            })
            .collect(),
        withheld,
        rows: Vec::new(),
        version: v,
    };
    let field_at: HashMap<String, usize> = s
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| (f.path.clone(), i))
        .collect();
    for row in &rows {
        let derived;
        let values = match reviews.get(&row.document.id) {
            Some(r) => {
                if r.review.status == ReviewStatus::Complete {
                    s.complete += 1;
                }
                &r.values
            }
            None => {
                derived = rules.derive(Some(&row.values), &[]).values;
                &derived
            }
        };
        let extracted: HashSet<&str> = row.values.iter().map(|x| x.path.as_str()).collect();
        for v in values {
            let was_extracted = extracted.contains(v.path.as_str());
            match v.state {
                ValueState::Disputed => s.disputed += 1,
                ValueState::Agreed => s.agreed += 1,
                ValueState::Resolved => s.resolved += 1,
                _ => {}
            }
            // What became of the extractor's value.
            let fate = match v.state {
                ValueState::Verified | ValueState::Agreed => Fate::Kept,
                ValueState::Resolved if rules.agree(&v.path, &v.value, &v.extracted) => Fate::Kept,
                ValueState::Corrected => Fate::Corrected,
                ValueState::Resolved if !v.value.is_null() => Fate::Corrected,
                ValueState::Rejected | ValueState::Resolved => Fate::Rejected,
                ValueState::Unreviewed => Fate::Unreviewed,
                ValueState::Disputed => Fate::Pending,
            };
            // The counts are of the extractor's values; what reviewers
            // added is counted apart.
            if was_extracted {
                s.extracted += 1;
                match fate {
                    Fate::Unreviewed => s.unreviewed += 1,
                    Fate::Kept => s.verified += 1,
                    Fate::Corrected => s.corrected += 1,
                    Fate::Rejected => s.rejected += 1,
                    Fate::Pending => {}
                }
            } else {
                s.added += 1;
            }
            let template = fields::template(&v.path);
            if let Some(f) = field_at.get(&template).map(|&i| &mut s.fields[i]) {
                if v.state != ValueState::Unreviewed {
                    f.reviewed += 1;
                }
                if was_extracted {
                    match fate {
                        Fate::Kept => f.extractor_accepted += 1,
                        Fate::Corrected | Fate::Rejected => f.extractor_corrected += 1,
                        Fate::Unreviewed | Fate::Pending => {}
                    }
                }
            }
        }
    }
    if rules.mode == ReviewMode::Dual {
        let categorical: HashSet<String> = by_path
            .iter()
            .filter(|(_, x)| {
                matches!(
                    x.field_type,
                    forms::FieldType::Enum | forms::FieldType::Boolean
                )
            })
            .map(|(p, _)| p.clone())
            .collect();
        let extractions: Vec<Vec<state::Extraction>> =
            reviews.into_values().map(|r| r.extractions).collect();
        let rules = rules.clone();
        let mut figures = app
            .cpu
            .run(&p.organization_id, move || {
                let documents: Vec<&[state::Extraction]> =
                    extractions.iter().map(Vec::as_slice).collect();
                agreement::of_fields(&documents, &categorical, &|p, x, y| rules.agree(p, x, y))
            })
            .await?;
        for f in &mut s.fields {
            let a = figures.remove(&f.path).unwrap_or_default();
            f.agreement = a.proportion;
            f.kappa = a.kappa;
        }
    }
    s.rows = rows;
    Ok(s)
}

/// The methods paragraph on AI use a review team publishes, written from
/// the records (VIEWER+): the models, plugins and program behind the
/// values, and what people did with them.
pub async fn disclosure(
    app: &App,
    access: &Access,
    project_id: &str,
    form_version_id: &str,
) -> ServiceResult<String> {
    let s = summary(app, access, project_id, form_version_id).await?;
    let mut extractors = std::collections::BTreeSet::new();
    let mut converters = std::collections::BTreeSet::new();
    let mut adapters = std::collections::BTreeSet::new();
    let mut models = std::collections::BTreeSet::new();
    let mut programs = std::collections::BTreeSet::new();
    for r in &s.rows {
        let p = r.provenance();
        extractors.insert(p.extractor);
        converters.insert(p.converter);
        if let Some(a) = p.adapter {
            adapters.insert(a);
        }
        models.extend(p.models);
        programs.insert(p.program_hash);
    }
    let list = |set: &std::collections::BTreeSet<String>| {
        if set.is_empty() {
            "none".to_owned()
        } else {
            set.iter().map(|x| code(x)).collect::<Vec<_>>().join(", ")
        }
    };
    let pct = |n: u32| {
        if s.extracted == 0 {
            "0%".to_owned()
        } else {
            format!("{:.1}%", 100.0 * f64::from(n) / f64::from(s.extracted))
        }
    };
    let mode = match s.mode {
        ReviewMode::Single => {
            "single-reviewer verification (one person checked each value against the paper)"
                .to_owned()
        }
        ReviewMode::Dual => format!(
            "independent extraction by {} people per document, blind to the software's values \
             and to each other's, the software counted as one more extraction; values on which \
             not all extractions agreed were resolved by an adjudicator who had not extracted \
             the document",
            s.reviewers
        ),
    };
    let mut md = format!(
        "## Use of AI in data extraction\n\n\
         Data were extracted from {docs} document(s) with form version {number} \
         (extraction program sha256 {programs}). PDFs were converted to text by {converters}; \
         values were extracted by {extractors}",
        docs = s.documents,
        number = s.version.number,
        programs = list(&programs),
        converters = list(&converters),
        extractors = list(&extractors),
    );
    if adapters.is_empty() {
        md.push_str(" without a large language model.");
    } else {
        md.push_str(&format!(
            " through the LLM adapter {} using the model(s) {}.",
            list(&adapters),
            list(&models)
        ));
    }
    md.push_str(&format!(
        " Every quote offered as evidence was located in the text by the host software.\n\n\
         Human review: {mode}. Of {extracted} extracted values, {verified} ({vp}) were verified as \
         extracted, {corrected} ({cp}) were corrected, {rejected} ({rp}) were rejected as not \
         reported, and {unreviewed} ({up}) were never reviewed by a person. Reviewers added \
         {added} value(s) the software missed. {complete} of {docs} review(s) are complete.",
        extracted = s.extracted,
        verified = s.verified,
        vp = pct(s.verified),
        corrected = s.corrected,
        cp = pct(s.corrected),
        rejected = s.rejected,
        rp = pct(s.rejected),
        unreviewed = s.unreviewed,
        up = pct(s.unreviewed),
        added = s.added,
        complete = s.complete,
        docs = s.documents,
    ));
    if s.withheld > 0 {
        md.push_str(&format!(
            " ({} document(s) you may still extract blind are left out of these figures until \
             you submit your extractions.)",
            s.withheld
        ));
    }
    match s.mode {
        ReviewMode::Single => md.push_str(
            " Agreement between independent extractions does not apply: each document had one reviewer.\n",
        ),
        ReviewMode::Dual => md.push_str(&format!(
            " All extractions agreed on {agreed} value(s); an adjudicator resolved {resolved} \
             disputed value(s), and {disputed} still await adjudication. Agreement between the \
             people's independent extractions is given per field below (proportion of paired \
             values agreeing by the field's comparator; Cohen's kappa for categorical fields, \
             averaged over pairs of extractors).\n",
            agreed = s.agreed,
            resolved = s.resolved,
            disputed = s.disputed,
        )),
    }
    let figure = |x: Option<f64>| x.map_or("n/a".to_owned(), |x| format!("{x:.2}"));
    match s.mode {
        ReviewMode::Single => {
            md.push_str("\n| Field | Reviewed | Accepted as extracted | Corrected or rejected |\n|---|---|---|---|\n");
            for f in &s.fields {
                md.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    code(&f.path),
                    f.reviewed,
                    f.extractor_accepted,
                    f.extractor_corrected
                ));
            }
        }
        ReviewMode::Dual => {
            md.push_str("\n| Field | Reviewed | Accepted as extracted | Corrected or rejected | Agreement | Kappa |\n|---|---|---|---|---|---|\n");
            for f in &s.fields {
                md.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} |\n",
                    code(&f.path),
                    f.reviewed,
                    f.extractor_accepted,
                    f.extractor_corrected,
                    figure(f.agreement),
                    figure(f.kappa)
                ));
            }
        }
    }
    Ok(md)
}

/// `text` as a Markdown code span whatever it holds: a model name or a
/// plugin version comes from a tenant and must not become links, HTML or
/// table cells. Line breaks and other control characters become spaces,
/// `|` is escaped (a table cell ends there even inside a code span), and
/// the fence is one backtick longer than the longest run inside.
fn code(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .replace('|', "\\|");
    let mut longest = 0;
    let mut run = 0;
    for c in flat.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if flat.starts_with('`') || flat.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{flat}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::code;

    #[test]
    fn quoted_text_stays_inside_its_code_span() {
        assert_eq!(code("pdf-text@0.1.0#ab12"), "`pdf-text@0.1.0#ab12`");
        assert_eq!(
            code("m` [click](http://evil.test) `x"),
            "``m` [click](http://evil.test) `x``"
        );
        assert_eq!(code("`x`"), "`` `x` ``");
        assert_eq!(code("a|b\n## Heading"), "`a\\|b ## Heading`");
        assert_eq!(
            code("<img src=x onerror=alert(1)>"),
            "`<img src=x onerror=alert(1)>`"
        );
    }
}
