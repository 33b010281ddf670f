//! The `llm-adapter` component: [`crate::body`] sent with the SDK's
//! [`post`], [`crate::read`] on the answer.

use evistream_plugin_sdk::llm_adapter::{
    Completion, CompletionRequest, ConfigEntry, Guest, LlmError, Role, config_value, export,
    failure, post,
};

struct OpenAi;

impl Guest for OpenAi {
    fn complete(
        config: Vec<ConfigEntry>,
        request: CompletionRequest,
    ) -> Result<Completion, LlmError> {
        let get = |k: &str| config_value(&config, k).map(str::to_owned);
        let base = get("baseUrl").unwrap_or_else(|| "https://api.openai.com/v1".into());
        let model =
            get("model").ok_or(LlmError::BadRequest("config `model` is required".into()))?;
        let req = crate::Request {
            model,
            messages: request
                .messages
                .into_iter()
                .map(|m| crate::Message {
                    role: match m.role {
                        Role::System => "system",
                        Role::User => "user",
                        Role::Assistant => "assistant",
                    },
                    content: m.content,
                })
                .collect(),
            json_schema: request.json_schema,
            schema_name: request.schema_name,
            temperature: request.temperature,
            max_tokens: request.max_tokens,
            json_mode: get("jsonMode").is_some_and(|v| v == "true"),
        };
        let body = crate::body(&req).map_err(failure)?.to_string();
        post(
            &format!("{}/chat/completions", base.trim_end_matches('/')),
            &[
                ("content-type", "application/json"),
                ("accept", "application/json"),
            ],
            &body,
            crate::read,
        )
    }
}

export!(OpenAi);
