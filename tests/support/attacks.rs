//! Hostile GraphQL requests, shared by the regression tests and the
//! hostile-tenant bench (which sends them at full size).

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
