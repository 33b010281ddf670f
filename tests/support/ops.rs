//! GraphQL operations as clients write them: the acceptance file in
//! `../shared/acceptance/operations.graphql` (beside the checkout), and the
//! project's own in `graphql/operations/`.

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The acceptance operations file.
pub fn acceptance_path() -> PathBuf {
    std::env::var("EVISTREAM_ACCEPTANCE_OPS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("../shared/acceptance/operations.graphql"))
}

/// Every document of operations: the acceptance file, then `graphql/operations/*.graphql`.
pub fn documents() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let acc = acceptance_path();
    let text = std::fs::read_to_string(&acc)
        .unwrap_or_else(|e| panic!("acceptance operations at {}: {e}", acc.display()));
    out.push((acc, text));
    let dir = repo_root().join("graphql/operations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for f in files {
        if f.extension().is_some_and(|e| e == "graphql") {
            let t = std::fs::read_to_string(&f).expect("operation file");
            out.push((f, t));
        }
    }
    out
}

/// Splits a document into `(name, text)` of each operation (comments dropped).
pub fn split(doc: &str) -> Vec<(String, String)> {
    let clean: String = doc
        .lines()
        .map(|l| match l.find('#') {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    let bytes = clean.as_bytes();
    let mut i = 0;
    while i < clean.len() {
        let rest = &clean[i..];
        let kw = ["query ", "mutation ", "subscription "]
            .iter()
            .find(|k| rest.starts_with(**k) && (i == 0 || bytes[i - 1] == b'\n'));
        if kw.is_none() {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        }
        let name: String = rest
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let mut depth = 0;
        let mut end = i;
        let mut seen_brace = false;
        for (j, c) in rest.char_indices() {
            match c {
                '{' => {
                    depth += 1;
                    seen_brace = true;
                }
                '}' => {
                    depth -= 1;
                    if seen_brace && depth == 0 {
                        end = i + j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.push((name, clean[i..end].to_owned()));
        i = end.max(i + 1);
    }
    out
}

/// The named operation's text, from any document.
pub fn operation(name: &str) -> String {
    for (_, doc) in documents() {
        if let Some((_, text)) = split(&doc).into_iter().find(|(n, _)| n == name) {
            return text;
        }
    }
    panic!("operation {name} not found in the acceptance file or graphql/operations/")
}

/// Operations of one `# ---- section` of the acceptance file.
pub fn acceptance_section(section: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(acceptance_path()).expect("acceptance file");
    let mut current = String::new();
    let mut buf = String::new();
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ----") {
            if !current.is_empty() {
                sections.push((current.clone(), std::mem::take(&mut buf)));
            }
            current = rest
                .trim_matches(|c: char| c == '-' || c.is_whitespace())
                .to_owned();
            buf.clear();
        } else {
            buf.push_str(line);
            buf.push('\n');
        }
    }
    if !current.is_empty() {
        sections.push((current, buf));
    }
    sections
        .into_iter()
        .filter(|(s, _)| s == section)
        .flat_map(|(_, body)| split(&body))
        .collect()
}
