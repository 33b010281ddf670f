//! The inputs `evistream plugin check` bundles: small, valid PDFs written
//! here (so the binary carries no files), a malformed one, and the form
//! an extractor is checked with.

/// A PDF of `pages`, each a list of lines of text (Helvetica 11 pt, top to
/// bottom, Letter size). Characters outside printable ASCII are dropped.
pub fn text_pdf(pages: &[&[&str]]) -> Vec<u8> {
    let escape = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii() && !c.is_ascii_control())
            .flat_map(|c| match c {
                '(' | ')' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect::<String>()
    };
    let n = pages.len().max(1);
    // Objects: 1 catalog, 2 pages, 3 font, then a page and its content per page.
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_owned(),
    ];
    for i in 0..n {
        let lines = pages.get(i).copied().unwrap_or(&[]);
        let mut content = String::from("BT /F1 11 Tf 14 TL 72 740 Td\n");
        for l in lines {
            content.push_str(&format!("({}) Tj T*\n", escape(l)));
        }
        content.push_str("ET\n");
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] \
             /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            5 + 2 * i
        ));
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}endstream",
            content.len()
        ));
    }
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// The lines of a short trial report on two pages: what the extractor
/// check reads, and one of the converter check's PDFs.
pub const TRIAL: [&[&str]; 2] = [
    &[
        "Vitamin D supplementation and falls: a randomised controlled trial",
        "Methods",
        "We randomly assigned 240 participants to vitamin D or placebo.",
        "The trial was a parallel-group, double-blind study.",
        "Enrolment ran from March 2019 to June 2021 at four centres.",
    ],
    &[
        "Results",
        "Vitamin D group: 120 participants, 31 fell at least once.",
        "Placebo group: 120 participants, 44 fell at least once.",
        "Primary outcome: proportion of participants with a fall at 12 months.",
    ],
];

/// The bundled PDFs a converter must convert: a one-page note, the
/// two-page trial report, and a page laid out in columns like a table.
pub fn pdfs() -> Vec<super::NamedPdf> {
    let named = |name: &str, bytes: Vec<u8>| super::NamedPdf {
        name: name.to_owned(),
        bytes,
    };
    vec![
        named(
            "one-page.pdf",
            text_pdf(&[&["A one-page document.", "It has two lines of text."]]),
        ),
        named("two-pages.pdf", text_pdf(&TRIAL)),
        named(
            "columns.pdf",
            text_pdf(&[&[
                "Table 1. Baseline characteristics",
                "Characteristic    Vitamin D    Placebo",
                "Age, years        71.2         70.8",
                "Women, n (%)      78 (65)      81 (68)",
            ]]),
        ),
    ]
}

/// Bytes that are not a PDF, and a PDF cut short after its header.
pub fn malformed() -> Vec<super::NamedPdf> {
    let mut cut = text_pdf(&TRIAL);
    cut.truncate(120);
    vec![
        super::NamedPdf {
            name: "not-a-pdf".into(),
            bytes: b"This is plain text, not a PDF.\n".to_vec(),
        },
        super::NamedPdf {
            name: "truncated.pdf".into(),
            bytes: cut,
        },
    ]
}

/// The form an extractor is checked with: one field of every scalar type
/// and a list of groups.
pub const FORM: &str = r#"[
  {"name": "title", "type": "TEXT", "description": "The trial's title"},
  {"name": "participants", "type": "INTEGER", "description": "Participants randomised"},
  {"name": "double_blind", "type": "BOOLEAN", "description": "Whether the trial was double-blind"},
  {"name": "design", "type": "ENUM", "options": ["parallel", "crossover", "cluster"]},
  {"name": "start", "type": "DATE", "description": "When enrolment began"},
  {"name": "fall_rate", "type": "NUMBER", "description": "Proportion who fell, vitamin D group"},
  {"name": "arms", "type": "ARRAY", "description": "The trial's arms", "fields": [
    {"name": "name", "type": "TEXT"},
    {"name": "n", "type": "INTEGER", "description": "Participants in the arm"}
  ]}
]"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_pdfs_have_their_pages_and_the_form_is_valid() {
        let pdf = text_pdf(&TRIAL);
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.starts_with("%PDF-1.4"));
        assert!(text.contains("/Count 2"), "two pages");
        assert!(text.contains("(We randomly assigned 240 participants"));
        assert!(text.ends_with("%%EOF\n"));
        let fields: Vec<crate::forms::fields::Field> =
            serde_json::from_str(FORM).expect("the form parses");
        crate::forms::fields::validate(&fields).expect("the form is valid");
        assert_eq!(pdfs().len(), 3);
        assert!(malformed().iter().all(|m| !m.bytes.ends_with(b"%%EOF\n")));
    }
}
