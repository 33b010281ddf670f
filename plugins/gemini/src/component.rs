//! The `llm-adapter` component: [`crate::body`] sent with the SDK's
//! [`post`], [`crate::read`] on the answer.

use evistream_plugin_sdk::llm_adapter::{
    Completion, CompletionRequest, ConfigEntry, Guest, LlmError, Role, config_value, export,
    failure, post,
};

struct Gemini;

impl Guest for Gemini {
    fn complete(
        config: Vec<ConfigEntry>,
        request: CompletionRequest,
    ) -> Result<Completion, LlmError> {
        let get = |k: &str| config_value(&config, k).map(str::to_owned);
        let base = get("baseUrl")
            .unwrap_or_else(|| "https://generativelanguage.googleapis.com/v1beta".into());
        let model =
            get("model").ok_or(LlmError::BadRequest("config `model` is required".into()))?;
        if !model
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        {
            return Err(LlmError::BadRequest(format!(
                "model `{model}` is not a model name"
            )));
        }
        let mut system = Vec::new();
        let mut contents = Vec::new();
        for m in request.messages {
            match m.role {
                Role::System => system.push(m.content),
                Role::User => contents.push(("user", m.content)),
                Role::Assistant => contents.push(("model", m.content)),
            }
        }
        let req = crate::Request {
            system: system.join("\n\n"),
            contents,
            json_schema: request.json_schema,
            temperature: request.temperature,
            max_tokens: request.max_tokens,
        };
        let body = crate::body(&req).map_err(failure)?.to_string();
        post(
            &format!(
                "{}/models/{model}:generateContent",
                base.trim_end_matches('/')
            ),
            &[("content-type", "application/json")],
            &body,
            crate::read,
        )
    }
}

export!(Gemini);
