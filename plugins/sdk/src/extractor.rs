//! The `form-extractor` world of `evistream:plugin@0.1.0` (`wit/plugin.wit`):
//! an extraction program (canonical JSON, read with [`program::parse`]) and
//! a converted document in, one value per field out, with evidence. The
//! host lends the project's LLM ([`llm`]), progress reports ([`progress`])
//! and its log ([`log`]); no network, no filesystem.
//!
//! Implement [`Guest`] and call [`export!`](crate::extractor::export) once:
//! `evistream_plugin_sdk::extractor::export!(MyExtractor);`. A manifest of
//! `kind = "form-extractor"` and `wit = "0.1.0"` goes beside the component.
//!
//! The imports are stubs on the native target that panic when called:
//! native tests exercise the logic that does not call them.

wit_bindgen::generate!({
    path: "wit",
    world: "form-extractor",
    pub_export_macro: true,
    default_bindings_module: "evistream_plugin_sdk::extractor",
    // The `export!` below wraps it.
    export_macro_name: "__export",
    // Off: the `export!` macro writes the whole world into the component,
    // and wit-bindgen's helpers would link this (imports-only) section into
    // components of other worlds built beside it with every feature on.
    disable_custom_section_link_helpers: true,
});

pub use self::evistream::plugin::extractor_types::{
    Evidence, ExtractError, Extraction, FieldValue, SourceDocument, ValueStatus,
};
pub use self::evistream::plugin::llm_types::{
    Completion, CompletionRequest, FinishReason, LlmError, Message, Role, Usage,
};
pub use self::evistream::plugin::types::PageRange;
/// The host's imports: `llm::complete` (the project's bound LLM adapter,
/// cached, rate-limited and retried by the host), `progress::report` and
/// `log::log`.
pub use self::evistream::plugin::{llm, log, progress};
pub use self::exports::evistream::plugin::extractor::Guest;

/// The extraction program's format (`program-format`): `parse`, `Program`,
/// its steps and fields.
pub use program_format as program;
/// JSON values (`serde_json`), as [`FieldValue::found`] takes them.
pub use serde_json as json;

impl Evidence {
    /// A verbatim quote of the document, its page unknown.
    pub fn quote(quote: impl Into<String>) -> Self {
        Self {
            quote: quote.into(),
            page: None,
        }
    }

    /// A verbatim quote of the document on `page` (from 1).
    pub fn on_page(quote: impl Into<String>, page: u32) -> Self {
        Self {
            quote: quote.into(),
            page: Some(page),
        }
    }
}

impl FieldValue {
    /// A value the document reports: `value` (of the field's type: a
    /// string for `TEXT`, a number for `NUMBER`, …) with the quotes that
    /// support it, and `confidence` in 0..1.
    pub fn found(
        path: impl Into<String>,
        value: &json::Value,
        evidence: impl IntoIterator<Item = Evidence>,
        confidence: f32,
    ) -> Self {
        Self {
            path: path.into(),
            value_json: value.to_string(),
            status: ValueStatus::Found,
            evidence: evidence.into_iter().collect(),
            confidence: confidence.clamp(0.0, 1.0),
        }
    }

    /// A field the document does not report: JSON `null`, no evidence, and
    /// `confidence` (0..1) that it really is absent.
    pub fn not_reported(path: impl Into<String>, confidence: f32) -> Self {
        Self {
            path: path.into(),
            value_json: "null".into(),
            status: ValueStatus::NotReported,
            evidence: Vec::new(),
            confidence: confidence.clamp(0.0, 1.0),
        }
    }
}

/// Exports `$ty`, a type implementing [`Guest`], as the component's
/// `extractor` interface, once per component:
/// `evistream_plugin_sdk::extractor::export!(MyType);`.
/// It expands to nothing on other targets than wasm32, so a `cdylib` of the
/// plugin still links natively and its tests call the `Guest`
/// implementation directly.
#[doc(inline)]
pub use crate::__evistream_export_extractor as export;

#[doc(hidden)]
#[macro_export]
macro_rules! __evistream_export_extractor {
    ($ty:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::extractor::__export!($ty);
        // Natively nothing is exported; this keeps `$ty` and what its
        // impl calls from counting as dead code there.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = <$ty as $crate::extractor::Guest>::extract;
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_values_carry_json_and_quotes() {
        let v = FieldValue::found(
            "arms[0].n",
            &json::json!(24),
            [Evidence::on_page("24 patients", 3)],
            1.5,
        );
        assert_eq!(v.path, "arms[0].n");
        assert_eq!(v.value_json, "24");
        assert!(matches!(v.status, ValueStatus::Found));
        assert_eq!(v.evidence[0].quote, "24 patients");
        assert_eq!(v.evidence[0].page, Some(3));
        assert_eq!(v.confidence, 1.0, "clamped to 0..1");
        let s = FieldValue::found("title", &json::json!("a \"b\""), [], 0.5);
        assert_eq!(s.value_json, r#""a \"b\"""#);
    }

    #[test]
    fn not_reported_values_are_null() {
        let v = FieldValue::not_reported("funding", 0.2);
        assert_eq!(v.value_json, "null");
        assert!(matches!(v.status, ValueStatus::NotReported));
        assert!(v.evidence.is_empty());
        assert_eq!(Evidence::quote("q").page, None);
    }
}
