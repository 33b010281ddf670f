//! The `llm-adapter` component: [`crate::body`] sent with the SDK's
//! [`post`], [`crate::read`] on the answer.

use evistream_plugin_sdk::llm_adapter::{
    Completion, CompletionRequest, ConfigEntry, Guest, LlmError, Role, config_value, export,
    failure, post,
};

struct Anthropic;

impl Guest for Anthropic {
    fn complete(
        config: Vec<ConfigEntry>,
        request: CompletionRequest,
    ) -> Result<Completion, LlmError> {
        let get = |k: &str| config_value(&config, k).map(str::to_owned);
        let base = get("baseUrl").unwrap_or_else(|| "https://api.anthropic.com/v1".into());
        let model =
            get("model").ok_or(LlmError::BadRequest("config `model` is required".into()))?;
        let mut system = Vec::new();
        let mut messages = Vec::new();
        for m in request.messages {
            match m.role {
                Role::System => system.push(m.content),
                Role::User => messages.push(("user", m.content)),
                Role::Assistant => messages.push(("assistant", m.content)),
            }
        }
        let req = crate::Request {
            model,
            system: system.join("\n\n"),
            messages,
            json_schema: request.json_schema,
            temperature: request.temperature,
            max_tokens: request.max_tokens,
        };
        let body = crate::body(&req).map_err(failure)?.to_string();
        post(
            &format!("{}/messages", base.trim_end_matches('/')),
            &[
                ("content-type", "application/json"),
                ("anthropic-version", crate::API_VERSION),
            ],
            &body,
            crate::read,
        )
    }
}

export!(Anthropic);
