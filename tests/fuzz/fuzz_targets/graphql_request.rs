//! The request bounds of `host/src/api/limits.rs` on arbitrary input.
//!
//! The bytes are tried as an HTTP body (`BatchRequest` JSON, each request's
//! query checked with its operation name) and, separately, as query text.
//! `parse_checked` runs with the server's default bounds on a thread with a
//! tokio worker's stack (2 MiB), as in the server; it must not panic or
//! overflow that stack, and what it accepts must be within the bounds: text
//! nesting (by `nesting_depth`, and by the parsed document's own brackets,
//! an oracle independent of the text scanner), fragments, selections and
//! aliases.

#![no_main]

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{
    BaseType, Directive, ExecutableDocument, Selection, SelectionSet, Type,
};
use async_graphql_value::{ConstValue, Value};
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../../host/src/api/limits.rs"]
mod limits;

/// The defaults of `LimitsConfig` (host/src/config.rs).
const BOUNDS: limits::QueryBounds = limits::QueryBounds {
    max_nesting: 64,
    max_fragments: 256,
    max_selections: 5_000,
    max_aliases: 256,
};

/// The stack of a tokio worker thread, where the server runs the check.
const STACK: usize = 2 << 20;

fuzz_target!(|data: &[u8]| {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(STACK)
            .spawn_scoped(s, || one_input(data))
            .expect("spawns a checking thread")
            .join()
            .expect("the check does not panic");
    });
});

fn one_input(data: &[u8]) {
    // The HTTP body path: a request or a batch of them.
    if let Ok(batch) = serde_json::from_slice::<async_graphql::BatchRequest>(data) {
        for request in batch.iter() {
            check(&request.query, request.operation_name.as_deref());
        }
    }
    // The same bytes as the text of a query.
    if let Ok(text) = std::str::from_utf8(data) {
        check(text, None);
    }
}

fn check(query: &str, operation_name: Option<&str>) {
    let Ok((doc, stats)) = limits::parse_checked(query, operation_name, &BOUNDS) else {
        return;
    };
    let text = limits::nesting_depth(query, usize::MAX);
    assert!(text <= BOUNDS.max_nesting, "accepted text nesting {text}");
    let parsed = document_depth(&doc);
    assert!(
        parsed <= BOUNDS.max_nesting,
        "accepted a document whose brackets nest {parsed} deep (text scanner says {text})"
    );
    assert!(doc.fragments.len() <= BOUNDS.max_fragments);
    assert!(stats.selections <= BOUNDS.max_selections);
    assert!(stats.aliases <= BOUNDS.max_aliases);
    assert!(stats.aliases <= stats.selections);
    assert!(stats.credential_fields <= stats.selections);
}

/// How deep the brackets of a parsed document nest, from the document
/// alone: `{` of selection sets and input objects, `(` of arguments and
/// variable definitions, `[` of lists and list types. A lower bound of the
/// text's nesting, so never more than `nesting_depth` of its text.
fn document_depth(doc: &ExecutableDocument) -> usize {
    let ops = doc.operations.iter().map(|(_, op)| {
        let op = &op.node;
        let vars = op
            .variable_definitions
            .iter()
            .map(|v| {
                let v = &v.node;
                let default = v.default_value.as_ref().map_or(0, |d| const_depth(&d.node));
                type_depth(&v.var_type.node)
                    .max(default)
                    .max(directives_depth(&v.directives))
            })
            .max()
            .map_or(0, |d| d + 1);
        vars.max(directives_depth(&op.directives))
            .max(1 + set_depth(&op.selection_set.node))
    });
    let fragments = doc.fragments.values().map(|f| {
        directives_depth(&f.node.directives).max(1 + set_depth(&f.node.selection_set.node))
    });
    ops.chain(fragments).max().unwrap_or(0)
}

/// Nesting inside a selection set's braces.
fn set_depth(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(f) => {
                let f = &f.node;
                let args = f
                    .arguments
                    .iter()
                    .map(|(_, v)| value_depth(&v.node))
                    .max()
                    .map_or(0, |d| d + 1);
                let sub = if f.selection_set.node.items.is_empty() {
                    0
                } else {
                    1 + set_depth(&f.selection_set.node)
                };
                args.max(sub).max(directives_depth(&f.directives))
            }
            Selection::InlineFragment(f) => {
                directives_depth(&f.node.directives).max(1 + set_depth(&f.node.selection_set.node))
            }
            Selection::FragmentSpread(s) => directives_depth(&s.node.directives),
        })
        .max()
        .unwrap_or(0)
}

fn directives_depth(directives: &[Positioned<Directive>]) -> usize {
    directives
        .iter()
        .flat_map(|d| d.node.arguments.iter())
        .map(|(_, v)| 1 + value_depth(&v.node))
        .max()
        .unwrap_or(0)
}

fn type_depth(ty: &Type) -> usize {
    match &ty.base {
        BaseType::Named(_) => 0,
        BaseType::List(inner) => 1 + type_depth(inner),
    }
}

fn value_depth(v: &Value) -> usize {
    match v {
        Value::List(items) => 1 + items.iter().map(value_depth).max().unwrap_or(0),
        Value::Object(fields) => 1 + fields.values().map(value_depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn const_depth(v: &ConstValue) -> usize {
    match v {
        ConstValue::List(items) => 1 + items.iter().map(const_depth).max().unwrap_or(0),
        ConstValue::Object(fields) => 1 + fields.values().map(const_depth).max().unwrap_or(0),
        _ => 0,
    }
}
