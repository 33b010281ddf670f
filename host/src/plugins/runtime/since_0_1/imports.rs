//! The host side of the `form-extractor` world's imports: `llm` routed to
//! the [`LlmBackend`](crate::plugins::extractor::LlmBackend) the caller lent
//! (its time added to the call's deadline), `progress` to the caller's
//! sink, `log` to the host's log.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::extractor_world::evistream::plugin as wit;
use crate::plugins::extractor::ExtractorImports;
use crate::plugins::runtime::sandbox::HostState;

type State = HostState<ExtractorImports>;

impl wit::llm::Host for State {
    async fn complete(
        &mut self,
        request: wit::llm_types::CompletionRequest,
    ) -> Result<wit::llm_types::Completion, wit::llm_types::LlmError> {
        let Some(llm) = self.world.llm.clone() else {
            return Err(wit::llm_types::LlmError::BadRequest(
                "no LLM adapter is bound to this project".into(),
            ));
        };
        let started = Instant::now();
        let result = llm.complete(request.into()).await;
        // The host's time, not the plugin's.
        self.network_clock()
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        result.map(Into::into).map_err(Into::into)
    }
}

impl wit::llm_types::Host for State {}
impl wit::types::Host for State {}
impl wit::extractor_types::Host for State {}

impl wit::progress::Host for State {
    async fn report(&mut self, fraction: f32, message: String) {
        if let Some(p) = &self.world.progress {
            let f = if fraction.is_finite() {
                fraction.clamp(0.0, 1.0)
            } else {
                0.0
            };
            p(f, message.chars().take(500).collect());
        }
    }
}

impl wit::log::Host for State {
    async fn log(&mut self, level: wit::log::Level, message: String) {
        use wit::log::Level;
        let message: String = message.chars().take(2000).collect();
        let plugin = self.world.label.as_str();
        match level {
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}
