//! Trial registry ids and a paper's own DOI in converted text: what
//! suggests that two reports describe one trial.

use std::sync::LazyLock;

use regex::Regex;
use unicode_normalization::UnicodeNormalization;

/// The registries, each with the pattern of its ids (after [`normalise`]).
static REGISTRIES: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    [
        ("ClinicalTrials.gov", r"\bNCT\d{8}\b"),
        ("ISRCTN", r"\bISRCTN\d{8}\b"),
        ("ANZCTR", r"\bACTRN\d{14}\b"),
        ("ChiCTR", r"\bChiCTR(?:-[A-Z]{2,4}-\d{8}|\d{10})\b"),
        (
            "EudraCT",
            r"\b(?:EUCTR|EudraCT(?:\s*(?:No\.?|number))?)\s*(20[0-2]\d-\d{6}-\d{2})\b",
        ),
        ("EU CT", r"\b20[2-9]\d-5\d{5}-\d{2}-\d{2}\b"),
        ("DRKS", r"\bDRKS\d{8}\b"),
        (
            "JPRN",
            r"\b(?:UMIN\d{9}|jRCT[a-z]?\d{9,10}|JapicCTI-\d{6})\b",
        ),
        ("CRiS", r"\bKCT\d{7}\b"),
        ("CTRI", r"\bCTRI/\d{4}/\d{2,3}/\d{6}\b"),
        ("IRCT", r"\bIRCT\d{8,14}N\d{1,3}\b"),
        ("PACTR", r"\bPACTR\d{15}\b"),
        ("TCTR", r"\bTCTR\d{11}\b"),
        ("NTR", r"\b(?:NTR\d{1,5}|NL-OMON\d+)\b"),
        ("ReBEC", r"\bRBR-[0-9a-z]{6,8}\b"),
        ("SLCTR", r"\bSLCTR/\d{4}/\d{3}\b"),
    ]
    .into_iter()
    .filter_map(|(name, re)| Regex::new(re).ok().map(|r| (name, r)))
    .collect()
});

/// "NCT: 0123…", "NCT 0123…", dashes of every kind: one spelling.
static GAP: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"\b(NCT|ISRCTN|ACTRN|DRKS|KCT|TCTR|PACTR|NTR|UMIN|ChiCTR)\s*[:#]?\s*(\d)").ok()
});

static DOI: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\b10\.\d{4,9}/[-._;()/:A-Za-z0-9]+").ok());

fn normalise(text: &str) -> String {
    let t: String = text
        .nfkc()
        .map(|c| match c {
            '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
            c => c,
        })
        .collect();
    match &*GAP {
        Some(re) => re.replace_all(&t, "$1$2").into_owned(),
        None => t,
    }
}

/// The registry ids in `text`, each once, in order of first mention.
pub fn ids(text: &str) -> Vec<String> {
    let t = normalise(text);
    let mut found: Vec<(usize, String)> = Vec::new();
    for (_, re) in REGISTRIES.iter() {
        for c in re.captures_iter(&t) {
            let (at, id) = match c.get(1) {
                Some(g) => (g.start(), format!("EudraCT {}", g.as_str())),
                None => match c.get(0) {
                    Some(m) => (m.start(), m.as_str().to_owned()),
                    None => continue,
                },
            };
            if !found.iter().any(|(_, f)| *f == id) {
                found.push((at, id));
            }
        }
    }
    found.sort();
    found.into_iter().map(|(_, id)| id).collect()
}

/// The paper's own DOI: the first in its opening text (later ones are
/// mostly references), lower-cased.
pub fn own_doi(text: &str) -> Option<String> {
    let head: String = text.chars().take(6000).collect();
    let m = DOI.as_ref()?.find(&head)?;
    Some(
        m.as_str()
            .trim_end_matches(['.', ',', ';', ')'])
            .to_lowercase(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_ids_are_found_in_their_printed_forms() {
        let text = "Registered at ClinicalTrials.gov (NCT: 01639599) and ISRCTN83765567; \
            EudraCT number 2009\u{2010}012345\u{2010}22, ACTRN12613000139774, TCTR20160429001, \
            ChiCTR-IOR-15006874, ChiCTR2000012345, NTR 2090. Also NCT01639599 again; \
            PROSPERO CRD42016012345 is a review; NCT0163959912 has too many digits.";
        assert_eq!(
            ids(text),
            vec![
                "NCT01639599",
                "ISRCTN83765567",
                "EudraCT 2009-012345-22",
                "ACTRN12613000139774",
                "TCTR20160429001",
                "ChiCTR-IOR-15006874",
                "ChiCTR2000012345",
                "NTR2090",
            ]
        );
        assert!(ids("nothing registered here, 2009-012345-22 alone").is_empty());
    }

    #[test]
    fn the_own_doi_is_the_first() {
        assert_eq!(
            own_doi("Trials 2014. doi:10.1186/1745-6215-15-390. Refs: 10.1000/xyz").as_deref(),
            Some("10.1186/1745-6215-15-390")
        );
        assert_eq!(own_doi("no doi"), None);
    }
}
