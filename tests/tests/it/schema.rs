//! The checked-in SDL matches the code, and every acceptance operation this
//! server already serves validates against it exactly as written.

use apollo_compiler::{ExecutableDocument, Schema};
use evistream_tests::ops;

fn schema_path() -> std::path::PathBuf {
    ops::repo_root().join("graphql/schema.graphql")
}

#[test]
fn checked_in_schema_matches_the_code() {
    let sdl = evistream::api::sdl();
    if std::env::var("EVISTREAM_UPDATE_SCHEMA").is_ok() {
        std::fs::write(schema_path(), &sdl).expect("write schema");
    }
    let checked_in = std::fs::read_to_string(schema_path()).expect("graphql/schema.graphql");
    assert!(
        checked_in == sdl,
        "graphql/schema.graphql drifted from the code; regenerate it with \
         `cargo run -p evistream -- schema > graphql/schema.graphql` \
         (or EVISTREAM_UPDATE_SCHEMA=1 cargo test -p evistream-tests --test it -- schema)"
    );
}

fn validate(schema: &apollo_compiler::validation::Valid<Schema>, name: &str, text: &str) {
    if let Err(e) = ExecutableDocument::parse_and_validate(schema, text, format!("{name}.graphql"))
    {
        panic!(
            "operation {name} does not validate against the schema:\n{}",
            e.errors
        );
    }
}

/// Sections of the acceptance file the server serves so far. A section is
/// added here when its issue lands.
const SERVED_SECTIONS: &[&str] = &[
    "accounts",
    "projects",
    "jobs",
    "documents",
    "plugins",
    "forms",
    "extraction",
    "evaluation",
    "review",
    "the page",
    "access",
    "studies and meta-analysis",
];

#[test]
fn acceptance_operations_validate_against_the_schema() {
    let schema = Schema::parse_and_validate(evistream::api::sdl(), "schema.graphql")
        .unwrap_or_else(|e| panic!("SDL is not valid GraphQL: {}", e.errors));
    let mut checked = 0;
    for section in SERVED_SECTIONS {
        let ops = ops::acceptance_section(section);
        assert!(
            !ops.is_empty(),
            "acceptance section {section} has no operations"
        );
        for (name, text) in ops {
            validate(&schema, &name, &text);
            checked += 1;
        }
    }
    // accounts 6 + projects 5 + jobs 3 at the time of writing.
    assert!(checked >= 14, "only {checked} operations checked");
}

#[test]
fn project_operations_validate_against_the_schema() {
    let schema = Schema::parse_and_validate(evistream::api::sdl(), "schema.graphql")
        .unwrap_or_else(|e| panic!("SDL is not valid GraphQL: {}", e.errors));
    let dir = ops::repo_root().join("graphql/operations");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("graphql/operations") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        for (name, op) in ops::split(&text) {
            validate(&schema, &name, &op);
            n += 1;
        }
    }
    assert!(n > 0, "no operations in graphql/operations");
}

/// The dashboard's operations: every template string of
/// `host/ui/js/queries.js` (each a whole operation without substitutions).
fn dashboard_operations() -> Vec<(String, String)> {
    let path = ops::repo_root().join("host/ui/js/queries.js");
    let text = std::fs::read_to_string(&path).expect("host/ui/js/queries.js");
    let mut out = Vec::new();
    for (i, chunk) in text.split('`').enumerate() {
        // Odd chunks sit between backticks.
        if i % 2 == 1 {
            assert!(
                !chunk.contains("${"),
                "queries.js: an operation with a substitution cannot be checked: {chunk}"
            );
            let name = chunk
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .nth(1)
                .unwrap_or("anonymous")
                .to_owned();
            out.push((name, chunk.to_owned()));
        }
    }
    out
}

#[test]
fn dashboard_operations_validate_against_the_schema() {
    let schema = Schema::parse_and_validate(evistream::api::sdl(), "schema.graphql")
        .unwrap_or_else(|e| panic!("SDL is not valid GraphQL: {}", e.errors));
    let ops = dashboard_operations();
    // Sign-in, projects, documents, forms, extraction, review, results, settings.
    assert!(
        ops.len() >= 30,
        "only {} operations in queries.js",
        ops.len()
    );
    for (name, text) in &ops {
        validate(&schema, name, text);
    }
}

#[test]
fn a_wrong_operation_is_rejected_by_the_check() {
    // The check itself must be able to fail.
    let schema =
        Schema::parse_and_validate(evistream::api::sdl(), "schema.graphql").expect("valid SDL");
    let bad = "query Bad { me { id nonexistentField } }";
    assert!(ExecutableDocument::parse_and_validate(&schema, bad, "bad.graphql").is_err());
}
