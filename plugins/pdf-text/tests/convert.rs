//! Conversion of small PDFs written here, one behaviour each, with the
//! exact output expected.

use lopdf::content::{Content, Operation};
use lopdf::{Dictionary, Document as PdfDocument, Object, Stream, StringFormat, dictionary};
use pdf_text::{ConvertError, Document, PageRange, convert};

/// A run of text at a position: `y` is measured from the top of the page.
struct Text {
    x: f32,
    y: f32,
    size: f32,
    text: &'static str,
}

fn t(x: f32, y: f32, size: f32, text: &'static str) -> Text {
    Text { x, y, size, text }
}

const PAGE_HEIGHT: f32 = 792.0;

/// Writes a PDF with one page per entry, all text in Helvetica (a
/// standard font: its widths are known without embedding it).
fn write_pdf(pages: &[Vec<Text>], info: Option<Dictionary>) -> Vec<u8> {
    let mut doc = PdfDocument::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => font_id },
    });
    let mut kids: Vec<Object> = Vec::new();
    for texts in pages {
        let mut operations = Vec::new();
        for text in texts {
            operations.push(Operation::new("BT", vec![]));
            operations.push(Operation::new("Tf", vec!["F1".into(), text.size.into()]));
            operations.push(Operation::new(
                "Tm",
                vec![
                    1.into(),
                    0.into(),
                    0.into(),
                    1.into(),
                    text.x.into(),
                    (PAGE_HEIGHT - text.y).into(),
                ],
            ));
            operations.push(Operation::new(
                "Tj",
                vec![Object::String(
                    text.text.as_bytes().to_vec(),
                    StringFormat::Literal,
                )],
            ));
            operations.push(Operation::new("ET", vec![]));
        }
        let content = Content { operations }.encode().expect("content encodes");
        let content_id = doc.add_object(Stream::new(dictionary! {}, content));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
        });
        kids.push(page_id.into());
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 612.into(), PAGE_HEIGHT.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    });
    doc.trailer.set("Root", catalog_id);
    if let Some(info) = info {
        let info_id = doc.add_object(info);
        doc.trailer.set("Info", info_id);
    }
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).expect("PDF writes");
    bytes
}

fn spans(doc: &Document) -> Vec<(u32, u32, u32)> {
    doc.pages
        .iter()
        .map(|p| (p.number, p.start, p.end))
        .collect()
}

/// The text of one page, cut out of the markdown by its range.
fn page_text(doc: &Document, page: &PageRange) -> String {
    doc.markdown
        .chars()
        .skip(page.start as usize)
        .take((page.end - page.start) as usize)
        .collect()
}

#[test]
fn two_columns_read_column_by_column_under_a_full_width_title() {
    let mut page = vec![t(
        50.0,
        60.0,
        18.0,
        "A Randomised Trial of Reading Two Columns in Order",
    )];
    let left = [
        "Left column first line of running text that",
        "continues on the second line of the left side",
        "and goes on to the third line of that column",
        "before it ends on the fourth line right here.",
    ];
    let right = [
        "Right column text starts at the top and it",
        "carries on with a second line of its own text",
        "followed by a third line in the right column",
        "and finishes with the fourth and final line.",
    ];
    for (i, (l, r)) in left.iter().zip(right.iter()).enumerate() {
        let y = 120.0 + 12.0 * i as f32;
        page.push(t(50.0, y, 10.0, l));
        page.push(t(320.0, y, 10.0, r));
    }
    let info = dictionary! {
        "Title" => Object::string_literal("Reading Two Columns"),
        "Author" => Object::string_literal("Ann Author; Bob Writer"),
        "Producer" => Object::string_literal("pdf-text tests"),
    };
    let doc = convert(&write_pdf(&[page], Some(info))).expect("converts");
    assert_eq!(
        doc.markdown,
        "# A Randomised Trial of Reading Two Columns in Order\n\n\
         Left column first line of running text that continues on the second line of the left side \
         and goes on to the third line of that column before it ends on the fourth line right here.\n\n\
         Right column text starts at the top and it carries on with a second line of its own text \
         followed by a third line in the right column and finishes with the fourth and final line.\n"
    );
    assert_eq!(doc.metadata.title.as_deref(), Some("Reading Two Columns"));
    assert_eq!(doc.metadata.authors, vec!["Ann Author", "Bob Writer"]);
    assert_eq!(doc.metadata.producer.as_deref(), Some("pdf-text tests"));
    assert_eq!(doc.metadata.page_count, 1);
    let len = doc.markdown.chars().count() as u32;
    assert_eq!(spans(&doc), vec![(1, 0, len)]);
    assert!(doc.warnings.is_empty(), "{:?}", doc.warnings);
}

#[test]
fn words_split_at_line_ends_are_joined_and_compounds_keep_their_hyphen() {
    let page = vec![
        t(72.0, 100.0, 11.0, "A randomized placebo-"),
        t(72.0, 113.0, 11.0, "controlled trial of a new treat-"),
        t(72.0, 126.0, 11.0, "ment for the common cold."),
    ];
    let doc = convert(&write_pdf(&[page], None)).expect("converts");
    assert_eq!(
        doc.markdown,
        "A randomized placebo-controlled trial of a new treatment for the common cold.\n"
    );
}

#[test]
fn running_heads_and_page_numbers_are_dropped() {
    let bodies = [
        "Body of page one.",
        "Body of page two.",
        "Body of page three.",
    ];
    let pages: Vec<Vec<Text>> = bodies
        .iter()
        .zip(["1", "2", "3"])
        .map(|(body, number)| {
            vec![
                t(72.0, 40.0, 9.0, "Journal of Careful Tests 2024; 12: 1-3"),
                t(72.0, 300.0, 11.0, body),
                t(300.0, 760.0, 9.0, number),
            ]
        })
        .collect();
    let doc = convert(&write_pdf(&pages, None)).expect("converts");
    assert_eq!(
        doc.markdown,
        "Body of page one.\n\nBody of page two.\n\nBody of page three.\n"
    );
    assert_eq!(spans(&doc), vec![(1, 0, 19), (2, 19, 38), (3, 38, 58)]);
    assert_eq!(page_text(&doc, &doc.pages[1]), "Body of page two.\n\n");
}

#[test]
fn table_rows_stay_rows_with_their_cells_apart() {
    let page = vec![
        t(72.0, 100.0, 10.0, "Table 1 Baseline characteristics"),
        t(72.0, 120.0, 10.0, "Characteristic"),
        t(300.0, 120.0, 10.0, "Intervention"),
        t(420.0, 120.0, 10.0, "Control"),
        t(72.0, 134.0, 10.0, "Age, years"),
        t(300.0, 134.0, 10.0, "45.2 (3.1)"),
        t(420.0, 134.0, 10.0, "44.8 (2.9)"),
        t(72.0, 148.0, 10.0, "Women, n (%)"),
        t(300.0, 148.0, 10.0, "20 (54.1)"),
        t(420.0, 148.0, 10.0, "12 (57.1)"),
    ];
    let doc = convert(&write_pdf(&[page], None)).expect("converts");
    assert_eq!(
        doc.markdown,
        "Table 1 Baseline characteristics\n\n\
         | Characteristic | Intervention | Control |\n\
         | --- | --- | --- |\n\
         | Age, years | 45.2 (3.1) | 44.8 (2.9) |\n\
         | Women, n (%) | 20 (54.1) | 12 (57.1) |\n"
    );
    assert_eq!(
        table_texts(&doc),
        vec![(
            vec![1],
            Some("Table 1 Baseline characteristics".to_string()),
            [
                ["H:Characteristic", "H:Intervention", "H:Control"],
                ["Age, years", "45.2 (3.1)", "44.8 (2.9)"],
                ["Women, n (%)", "20 (54.1)", "12 (57.1)"],
            ]
            .iter()
            .map(|r| r.iter().map(|c| c.to_string()).collect::<Vec<_>>())
            .collect::<Vec<_>>()
        )]
    );
}

/// Each table as (pages, caption, rows of cell texts): "H:" marks a
/// header cell, "~" an empty one, "*N" a cell spanning N columns.
#[allow(clippy::type_complexity)]
fn table_texts(doc: &Document) -> Vec<(Vec<u32>, Option<String>, Vec<Vec<String>>)> {
    let chars: Vec<char> = doc.markdown.chars().collect();
    let slice = |(a, b): (u32, u32)| chars[a as usize..b as usize].iter().collect::<String>();
    doc.layout
        .tables
        .iter()
        .map(|t| {
            let rows = t
                .rows
                .iter()
                .map(|r| {
                    r.cells
                        .iter()
                        .map(|c| {
                            let mut s = c.span.map_or("~".to_string(), slice);
                            if c.header {
                                s = format!("H:{s}");
                            }
                            if c.col_span > 1 {
                                s = format!("{s}*{}", c.col_span);
                            }
                            s
                        })
                        .collect()
                })
                .collect();
            (t.pages.clone(), t.caption.map(slice), rows)
        })
        .collect()
}

#[test]
fn a_table_keeps_its_columns_headings_and_wrapped_labels_across_a_page_break() {
    let row = |y: f32, label: &'static str, v: [&'static str; 4]| {
        vec![
            t(72.0, y, 10.0, label),
            t(250.0, y, 10.0, v[0]),
            t(300.0, y, 10.0, v[1]),
            t(380.0, y, 10.0, v[2]),
            t(430.0, y, 10.0, v[3]),
        ]
    };
    let mut first = vec![
        t(72.0, 100.0, 10.0, "Table 2 Outcomes by group"),
        // Headings over two columns each.
        t(255.0, 120.0, 10.0, "Drug group"),
        t(385.0, 120.0, 10.0, "Placebo group"),
    ];
    first.extend(row(
        132.0,
        "Outcome",
        ["Before", "After", "Before", "After"],
    ));
    // The headings wrap onto a second line.
    first.extend([
        t(250.0, 144.0, 10.0, "mean"),
        t(300.0, 144.0, 10.0, "mean"),
        t(380.0, 144.0, 10.0, "mean"),
        t(430.0, 144.0, 10.0, "mean"),
    ]);
    first.push(t(72.0, 160.0, 10.0, "Primary"));
    first.extend(row(
        172.0,
        "Pain score at",
        ["12.5", "13.0", "14.1", "13.9"],
    ));
    // A label wrapped onto its own line joins its row.
    first.push(t(72.0, 184.0, 10.0, "rest"));
    first.extend(row(196.0, "Sleep, hours", ["6.1", "6.5", "6.0", "6.2"]));
    // The table goes on at the top of the next page, then the text does.
    let mut second = row(80.0, "Walking distance", ["300", "350", "310", "305"]);
    second.extend(row(92.0, "Falls", ["2", "1", "3", "3"]));
    second.push(t(72.0, 200.0, 10.0, "The text goes on after the table."));
    let doc = convert(&write_pdf(&[first, second], None)).expect("converts");
    let tables = table_texts(&doc);
    let s = |v: &[&str]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    assert_eq!(tables.len(), 1, "{}", doc.markdown);
    let (pages, caption, rows) = &tables[0];
    assert_eq!(pages, &vec![1, 2], "{}", doc.markdown);
    assert_eq!(caption.as_deref(), Some("Table 2 Outcomes by group"));
    assert_eq!(
        rows,
        &vec![
            s(&["H:~", "H:Drug group*2", "H:Placebo group*2"]),
            s(&[
                "H:Outcome",
                "H:Before mean",
                "H:After mean",
                "H:Before mean",
                "H:After mean"
            ]),
            s(&["Primary", "~", "~", "~", "~"]),
            s(&["Pain score at rest", "12.5", "13.0", "14.1", "13.9"]),
            s(&["Sleep, hours", "6.1", "6.5", "6.0", "6.2"]),
            s(&["Walking distance", "300", "350", "310", "305"]),
            s(&["Falls", "2", "1", "3", "3"]),
        ],
        "{}",
        doc.markdown
    );
    // Real markdown tables: a rule under the first row; spans leave empty
    // cells; the part on page 2 is a table of its own in the markdown.
    assert!(
        doc.markdown.contains(
            "| | Drug group | | Placebo group | |\n| --- | --- | --- | --- | --- |\n\
             | Outcome | Before mean | After mean | Before mean | After mean |\n"
        ),
        "{}",
        doc.markdown
    );
    assert!(
        doc.markdown.contains(
            "| Walking distance | 300 | 350 | 310 | 305 |\n| --- | --- | --- | --- | --- |\n\
             | Falls | 2 | 1 | 3 | 3 |\n\nThe text goes on after the table.\n"
        ),
        "{}",
        doc.markdown
    );
}

#[test]
fn a_page_without_text_is_reported_and_gets_an_empty_range() {
    let pages = vec![
        vec![t(72.0, 100.0, 11.0, "Only the first page has text.")],
        vec![],
    ];
    let doc = convert(&write_pdf(&pages, None)).expect("converts");
    assert_eq!(doc.markdown, "Only the first page has text.\n");
    assert_eq!(spans(&doc), vec![(1, 0, 30), (2, 30, 30)]);
    assert_eq!(doc.warnings, vec!["page 2 has no text layer (scanned?)"]);
    assert_eq!(doc.metadata.page_count, 2);
}

#[test]
fn offsets_count_code_points_not_bytes() {
    // WinAnsi bytes: 0xE9 is "é", 0xB1 is "±".
    let mut doc = PdfDocument::load_mem(&write_pdf(
        &[
            vec![t(72.0, 100.0, 11.0, "placeholder")],
            vec![t(72.0, 100.0, 11.0, "second")],
        ],
        None,
    ))
    .expect("loads");
    let first_page = doc.get_pages()[&1];
    let content = Content {
        operations: vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 11.into()]),
            Operation::new("Td", vec![72.into(), 692.into()]),
            Operation::new(
                "Tj",
                vec![Object::String(
                    b"Caf\xE9 12 \xB1 3.".to_vec(),
                    StringFormat::Literal,
                )],
            ),
            Operation::new("ET", vec![]),
        ],
    };
    doc.change_page_content(first_page, content.encode().expect("encodes"))
        .expect("content replaced");
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).expect("writes");
    let doc = convert(&bytes).expect("converts");
    assert_eq!(doc.markdown, "Café 12 ± 3.\n\nsecond\n");
    assert_eq!(spans(&doc), vec![(1, 0, 14), (2, 14, 21)]);
}

#[test]
fn an_encrypted_pdf_is_refused_as_encrypted() {
    let bytes = write_pdf(&[vec![t(72.0, 100.0, 11.0, "Secret text.")]], None);
    let mut doc = PdfDocument::load_mem(&bytes).expect("loads");
    // A standard security handler whose user password is not empty: the
    // O and U strings match no password we try.
    let encrypt = doc.add_object(dictionary! {
        "Filter" => "Standard",
        "V" => 1,
        "R" => 2,
        "O" => Object::String(vec![0x5A; 32], StringFormat::Hexadecimal),
        "U" => Object::String(vec![0xA5; 32], StringFormat::Hexadecimal),
        "P" => -4,
    });
    doc.trailer.set("Encrypt", encrypt);
    doc.trailer.set(
        "ID",
        vec![
            Object::String(vec![1; 16], StringFormat::Hexadecimal),
            Object::String(vec![1; 16], StringFormat::Hexadecimal),
        ],
    );
    let mut encrypted = Vec::new();
    doc.save_to(&mut encrypted).expect("writes");
    match convert(&encrypted) {
        Err(ConvertError::Encrypted(_)) => {}
        other => panic!("expected an encrypted error, got {other:?}"),
    }
}

#[test]
fn a_truncated_pdf_is_malformed() {
    let bytes = write_pdf(
        &[vec![t(72.0, 100.0, 11.0, "Text that will be cut off.")]],
        None,
    );
    let cut = &bytes[..bytes.len() / 2];
    match convert(cut) {
        Err(ConvertError::Malformed(_)) => {}
        other => panic!("expected a malformed error, got {other:?}"),
    }
}

#[test]
fn empty_and_non_pdf_bytes_are_malformed() {
    assert_eq!(
        convert(b""),
        Err(ConvertError::Malformed("empty input".to_string()))
    );
    assert_eq!(
        convert(b"<html>not a pdf</html>"),
        Err(ConvertError::Malformed(
            "not a PDF (no %PDF- header)".to_string()
        ))
    );
    match convert(b"%PDF-1.7\n garbage without any objects") {
        Err(ConvertError::Malformed(_)) => {}
        other => panic!("expected a malformed error, got {other:?}"),
    }
}

#[test]
fn no_prefix_of_a_pdf_makes_the_converter_panic() {
    // Cut a valid file everywhere (in steps): each prefix converts or fails
    // with an error, never a panic (convert catches those natively, so an
    // Internal error would show one).
    let bytes = write_pdf(&[vec![t(72.0, 100.0, 11.0, "Some text on a page.")]], None);
    for end in (0..bytes.len()).step_by(7) {
        if let Err(ConvertError::Internal(e)) = convert(&bytes[..end]) {
            panic!("prefix of {end} bytes: {e}");
        }
    }
}
