//! Bounds on a GraphQL request, checked before the request costs anything:
//! nesting of the text (the parser recurses, so deep nesting would overflow
//! the stack), then — on the parsed document — fragment definitions,
//! selections after fragment expansion, aliases and the credential
//! mutations (`login`, `register`, `refresh`) of the operation that runs.
//!
//! Expansion is counted with one memoised walk per fragment, so a document
//! whose fragments spread each other exponentially costs linear time to
//! refuse; and nesting is counted through fragment spreads, so a chain of
//! fragments each nesting deep cannot drive the walk (or async-graphql's
//! validators after it) into a stack overflow (found by fuzzing). This
//! module depends on nothing but the GraphQL parser so that the fuzz target
//! can include it as it is.

use std::collections::HashMap;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};

/// The bounds a request is checked against.
#[derive(Debug, Clone, Copy)]
pub struct QueryBounds {
    /// Deepest nesting of `{`, `[` and `(` in the query text.
    pub max_nesting: usize,
    /// Fragment definitions in one document.
    pub max_fragments: usize,
    /// Fields and fragment spreads of the running operation, every fragment
    /// counted each time it is spread.
    pub max_selections: u64,
    /// Aliased fields, counted the same way.
    pub max_aliases: u64,
}

/// Root mutation fields that check or mint credentials: at most one per
/// request (and per batch), so one request cannot try many passwords.
pub const CREDENTIAL_FIELDS: &[&str] = &["login", "register", "refresh"];

/// Root mutation fields that write an export snapshot: at most one per
/// request (and per batch), so aliases cannot write thousands at once.
pub const EXPORT_FIELDS: &[&str] = &["exportResults"];

/// What the check measured of an accepted request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Selections after expansion.
    pub selections: u64,
    /// Aliased fields after expansion.
    pub aliases: u64,
    /// Credential mutation fields at the root of the running operation.
    pub credential_fields: u64,
    /// Export mutation fields at the root of the running operation.
    pub export_fields: u64,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The text nests deeper than allowed.
    #[error("the query nests deeper than {0} levels of {{, [ or (")]
    TooDeep(usize),
    /// Too many fragment definitions.
    #[error("the query defines more than {0} fragments")]
    TooManyFragments(usize),
    /// A fragment spreads itself, directly or through others.
    #[error("fragment `{0}` spreads itself")]
    FragmentCycle(String),
    /// Too many selections once fragments are expanded.
    #[error("the query selects more than {0} fields once its fragments are expanded")]
    TooManySelections(u64),
    /// Too many aliases once fragments are expanded.
    #[error("the query uses more than {0} aliases")]
    TooManyAliases(u64),
    /// The text does not parse (reported by the parser later in full).
    #[error("{0}")]
    Syntax(String),
}

/// The deepest nesting of brackets in a GraphQL text, outside strings and
/// comments; stops counting (and returns the excess) past `max`.
pub fn nesting_depth(query: &str, max: usize) -> usize {
    let b = query.as_bytes();
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if b[i..].starts_with(b"\"\"\"") => {
                // Block string: ends at an unescaped """.
                i += 3;
                while i < b.len() && !b[i..].starts_with(b"\"\"\"") {
                    i += if b[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > max {
                    return deepest;
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    deepest
}

/// Checks the text before it is parsed.
pub fn check_text(query: &str, bounds: &QueryBounds) -> Result<(), LimitError> {
    if nesting_depth(query, bounds.max_nesting) > bounds.max_nesting {
        return Err(LimitError::TooDeep(bounds.max_nesting));
    }
    Ok(())
}

/// Parses a text that passed [`check_text`] and checks the document.
pub fn parse_checked(
    query: &str,
    operation_name: Option<&str>,
    bounds: &QueryBounds,
) -> Result<(ExecutableDocument, QueryStats), LimitError> {
    check_text(query, bounds)?;
    let doc =
        async_graphql::parser::parse_query(query).map_err(|e| LimitError::Syntax(e.to_string()))?;
    let stats = check_document(&doc, operation_name, bounds)?;
    Ok((doc, stats))
}

/// Size of a selection set after expansion: selections, aliases, and how
/// many levels of selection sets it nests below itself.
#[derive(Clone, Copy, Default)]
struct Size {
    selections: u64,
    aliases: u64,
    height: usize,
}

impl Size {
    fn add(&mut self, o: Size) {
        self.selections = self.selections.saturating_add(o.selections);
        self.aliases = self.aliases.saturating_add(o.aliases);
        self.height = self.height.max(o.height);
    }
}

enum Memo {
    Visiting,
    Done(Size),
}

struct Walker<'a> {
    doc: &'a ExecutableDocument,
    memo: HashMap<&'a str, Memo>,
    bounds: &'a QueryBounds,
}

impl<'a> Walker<'a> {
    /// The expanded size of `set`, found at nesting `depth` (the walk never
    /// recurses deeper than the nesting bound).
    fn set(&mut self, set: &'a SelectionSet, depth: usize) -> Result<Size, LimitError> {
        if depth > self.bounds.max_nesting {
            return Err(LimitError::TooDeep(self.bounds.max_nesting));
        }
        let mut size = Size::default();
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let child = &f.node.selection_set.node;
                    let mut below = Size::default();
                    if !child.items.is_empty() {
                        below = self.set(child, depth + 1)?;
                        below.height += 1;
                    }
                    size.add(Size {
                        selections: 1,
                        aliases: u64::from(f.node.alias.is_some()),
                        height: 0,
                    });
                    size.add(below);
                }
                Selection::InlineFragment(f) => {
                    size.add(self.set(&f.node.selection_set.node, depth)?)
                }
                Selection::FragmentSpread(s) => {
                    size.add(Size {
                        selections: 1,
                        aliases: 0,
                        height: 0,
                    });
                    size.add(self.fragment(s.node.fragment_name.node.as_str(), depth)?);
                }
            }
            // Stop as soon as a bound is passed: the rest cannot make it smaller.
            self.within(size)?;
        }
        Ok(size)
    }

    /// A fragment's expanded size, walked once; spread at nesting `depth`.
    fn fragment(&mut self, name: &'a str, depth: usize) -> Result<Size, LimitError> {
        let s = match self.memo.get(name) {
            Some(Memo::Done(s)) => *s,
            Some(Memo::Visiting) => return Err(LimitError::FragmentCycle(name.to_owned())),
            None => {
                // An unknown fragment is the validator's to report.
                let Some(def) = self.doc.fragments.get(name) else {
                    return Ok(Size::default());
                };
                self.memo.insert(name, Memo::Visiting);
                let s = self.set(&def.node.selection_set.node, depth)?;
                self.memo.insert(name, Memo::Done(s));
                s
            }
        };
        // Its walk was measured from wherever it was first spread: here it
        // must fit below `depth` too.
        if depth + s.height > self.bounds.max_nesting {
            return Err(LimitError::TooDeep(self.bounds.max_nesting));
        }
        Ok(s)
    }

    fn within(&self, s: Size) -> Result<(), LimitError> {
        if s.selections > self.bounds.max_selections {
            return Err(LimitError::TooManySelections(self.bounds.max_selections));
        }
        if s.aliases > self.bounds.max_aliases {
            return Err(LimitError::TooManyAliases(self.bounds.max_aliases));
        }
        Ok(())
    }
}

/// Checks a parsed document: fragment count and cycles, and the expanded
/// size of every operation (the validator walks them all), and counts the
/// credential fields of the operation that will run.
pub fn check_document(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    bounds: &QueryBounds,
) -> Result<QueryStats, LimitError> {
    if doc.fragments.len() > bounds.max_fragments {
        return Err(LimitError::TooManyFragments(bounds.max_fragments));
    }
    let mut w = Walker {
        doc,
        memo: HashMap::new(),
        bounds,
    };
    // Every fragment, spread or not: the validator visits each of them.
    let mut total = Size::default();
    for name in doc.fragments.keys() {
        let s = w.fragment(name.as_str(), 1)?;
        total.add(s);
        w.within(total)?;
    }
    let mut stats = QueryStats::default();
    for (name, op) in doc.operations.iter() {
        let s = w.set(&op.node.selection_set.node, 1)?;
        total.add(s);
        w.within(total)?;
        let runs = match (&doc.operations, operation_name) {
            (DocumentOperations::Single(_), _) => true,
            (DocumentOperations::Multiple(_), Some(wanted)) => {
                name.is_some_and(|n| n.as_str() == wanted)
            }
            (DocumentOperations::Multiple(m), None) => m.len() == 1,
        };
        if runs {
            stats.selections = s.selections;
            stats.aliases = s.aliases;
            if op.node.ty == OperationType::Mutation {
                let root = &op.node.selection_set.node;
                stats.credential_fields = root_fields(doc, root, CREDENTIAL_FIELDS, 0);
                stats.export_fields = root_fields(doc, root, EXPORT_FIELDS, 0);
            }
        }
    }
    Ok(stats)
}

/// Fields named in `names` at the root of a mutation, through fragments
/// (whose cycles [`check_document`] has already refused; `hops` is a backstop).
fn root_fields(doc: &ExecutableDocument, set: &SelectionSet, names: &[&str], hops: usize) -> u64 {
    if hops > 64 {
        return 0;
    }
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(f) => u64::from(names.contains(&f.node.name.node.as_str())),
            Selection::InlineFragment(f) => {
                root_fields(doc, &f.node.selection_set.node, names, hops + 1)
            }
            Selection::FragmentSpread(s) => doc
                .fragments
                .get(&s.node.fragment_name.node)
                .map_or(0, |d| {
                    root_fields(doc, &d.node.selection_set.node, names, hops + 1)
                }),
        })
        .fold(0u64, u64::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: QueryBounds = QueryBounds {
        max_nesting: 64,
        max_fragments: 256,
        max_selections: 5_000,
        max_aliases: 256,
    };

    #[test]
    fn nesting_counts_brackets_outside_strings_and_comments() {
        assert_eq!(nesting_depth("{ a { b(x: [1, {y: 2}]) } }", 99), 5);
        assert_eq!(nesting_depth(r#"{ a(s: "{{{[[[") }"#, 99), 2);
        assert_eq!(nesting_depth("{ a(s: \"\"\"{{{\\\"\"\"{{\"\"\") }", 99), 2);
        assert_eq!(nesting_depth("# {{{{{\n{ a }", 99), 1);
        let deep = format!("{{ a(x: {}1{}) }}", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(
            nesting_depth(&deep, 64),
            65,
            "stops counting past the bound"
        );
        assert_eq!(check_text(&deep, &B), Err(LimitError::TooDeep(64)));
    }

    #[test]
    fn exponential_fragments_are_refused_in_linear_time() {
        // f0 spreads f1 twice, f1 spreads f2 twice, …: 2^40 fields.
        let mut q = String::from("query { ...f0 }\n");
        for i in 0..40 {
            q.push_str(&format!(
                "fragment f{i} on Query {{ ...f{n} ...f{n} }}\n",
                n = i + 1
            ));
        }
        q.push_str("fragment f40 on Query { me { id } }\n");
        let started = std::time::Instant::now();
        let err = parse_checked(&q, None, &B).unwrap_err();
        assert_eq!(err, LimitError::TooManySelections(5_000));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn nesting_through_fragment_chains_is_bounded_without_deep_recursion() {
        // 256 fragments, each nesting 62 fields and spreading the next: a
        // text nesting of 63, an expanded nesting of ~16,000 (this
        // overflowed the walker's stack before the depth was counted).
        let mut q = String::from("query { ...c0 }\n");
        for i in 0..256 {
            let open: String = (0..62).map(|_| "me { ").collect();
            let close: String = (0..62).map(|_| "} ").collect();
            let next = if i < 255 {
                format!("...c{}", i + 1)
            } else {
                "id".into()
            };
            q.push_str(&format!(
                "fragment c{i} on Query {{ {open}{next} {close}}}\n"
            ));
        }
        // Parsed on a roomy stack (the parser has its own guard); the
        // document walked on a small one.
        let doc = std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(move || async_graphql::parser::parse_query(&q).unwrap())
            .unwrap()
            .join()
            .unwrap();
        let r = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || check_document(&doc, None, &B).map(|_| ()))
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert_eq!(r, Err(LimitError::TooDeep(64)));
        // A fragment used once shallow and once deep is judged at each place.
        let deep_use: String = (0..60).map(|_| "me { ").collect();
        let deep_end: String = (0..60).map(|_| "} ").collect();
        let q = format!(
            "query {{ ...f {deep_use}...f {deep_end}}} fragment f on Query {{ me {{ me {{ me {{ me {{ me {{ id }} }} }} }} }} }}"
        );
        assert_eq!(
            parse_checked(&q, None, &B).unwrap_err(),
            LimitError::TooDeep(64)
        );
        let ok = "query { ...f me { ...f } } fragment f on Query { me { id } }";
        assert!(parse_checked(ok, None, &B).is_ok());
    }

    #[test]
    fn cycles_and_counts() {
        let q = "query { ...a } fragment a on Query { ...b } fragment b on Query { ...a }";
        assert!(matches!(
            parse_checked(q, None, &B),
            Err(LimitError::FragmentCycle(_))
        ));
        let aliases: String = (0..300).map(|i| format!("a{i}: me {{ id }} ")).collect();
        assert_eq!(
            parse_checked(&format!("{{ {aliases} }}"), None, &B).unwrap_err(),
            LimitError::TooManyAliases(256)
        );
        let (_, s) = parse_checked("query { me { id email } }", None, &B).unwrap();
        assert_eq!(s.selections, 3);
    }

    #[test]
    fn export_fields_are_counted_through_aliases_and_fragments() {
        let q = "mutation { a: exportResults(projectId: \"p\", formVersionId: \"v\", format: JSON) { url } ...e } \
                 fragment e on Mutation { b: exportResults(projectId: \"p\", formVersionId: \"v\", format: JSON) { url } }";
        let (_, s) = parse_checked(q, None, &B).unwrap();
        assert_eq!((s.export_fields, s.credential_fields), (2, 0));
        let query = "query { me { id } }";
        assert_eq!(parse_checked(query, None, &B).unwrap().1.export_fields, 0);
    }

    #[test]
    fn credential_fields_of_the_running_operation_only() {
        let two =
            "mutation { a: login(input: {}) { user { id } } b: login(input: {}) { user { id } } }";
        assert_eq!(parse_checked(two, None, &B).unwrap().1.credential_fields, 2);
        let via_fragment = "mutation { ...m } fragment m on Mutation { register(input: {}) { user { id } } refresh(refreshToken: \"x\") { accessToken } }";
        assert_eq!(
            parse_checked(via_fragment, None, &B)
                .unwrap()
                .1
                .credential_fields,
            2
        );
        let named = "mutation A { login(input: {}) { user { id } } } mutation B { register(input: {}) { user { id } } }";
        assert_eq!(
            parse_checked(named, Some("A"), &B)
                .unwrap()
                .1
                .credential_fields,
            1
        );
        assert_eq!(
            parse_checked("query { me { id } }", None, &B)
                .unwrap()
                .1
                .credential_fields,
            0
        );
    }
}
