//! The three kinds' calls on contract 0.1: each builds its arguments,
//! runs through the runtime's one call wrapper, and turns the answer into
//! the face's types.

use super::{Adapter, Converter, Extractor, convert};
use crate::plugins::converter::{ConvertError, ConvertedDocument};
use crate::plugins::extractor::{
    ExtractError, Extraction, ExtractorImports, FormExtractor, SourceText,
};
use crate::plugins::llm::{CallStats, Completion, CompletionRequest, LlmAdapter, LlmError};
use crate::plugins::policy::OutboundPolicy;
use crate::plugins::runtime::engine::Slot;
use crate::plugins::runtime::{Bound, network};

impl Converter {
    /// Converts `pdf` through `bound`'s runtime and limits.
    pub(crate) async fn convert<C>(
        &self,
        bound: &Bound<C>,
        pdf: Vec<u8>,
        config: Vec<(String, String)>,
    ) -> Result<ConvertedDocument, ConvertError> {
        let pre = self.pre.clone();
        let config: Vec<_> = config.into_iter().map(Into::into).collect();
        let spec = bound.spec(Slot::TopLevel, network(None), ());
        let answer = bound
            .runtime
            .call(spec, move |store| {
                Box::pin(async move {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    instance
                        .evistream_plugin_converter()
                        .call_convert(store, &pdf, &config)
                        .await
                })
            })
            .await?;
        Ok(ConvertedDocument::from(answer?))
    }
}

#[async_trait::async_trait]
impl FormExtractor for Bound<Extractor> {
    fn sha256(&self) -> &str {
        &self.component.sha256
    }

    async fn extract(
        &self,
        program: &str,
        source: SourceText<'_>,
        imports: ExtractorImports,
    ) -> Result<Extraction, ExtractError> {
        let pre = self.component.pre.clone();
        let program = program.to_owned();
        let document = super::extractor_world::evistream::plugin::extractor_types::SourceDocument {
            text: source.text.to_owned(),
            pages: source.pages.iter().map(Into::into).collect(),
        };
        let spec = self.spec(Slot::TopLevel, network(None), imports);
        let answer = self
            .runtime
            .call(spec, move |store| {
                Box::pin(async move {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    instance
                        .evistream_plugin_extractor()
                        .call_extract(store, &program, &document)
                        .await
                })
            })
            .await?;
        Ok(convert::extraction(answer?, self.limits.max_output_bytes)?)
    }
}

#[async_trait::async_trait]
impl LlmAdapter for Bound<Adapter> {
    fn sha256(&self) -> &str {
        &self.component.sha256
    }

    async fn complete(
        &self,
        config: Vec<(String, String)>,
        request: &CompletionRequest,
        policy: OutboundPolicy,
    ) -> (Result<Completion, LlmError>, CallStats) {
        let pre = self.component.pre.clone();
        let config: Vec<_> = config.into_iter().map(Into::into).collect();
        let request = request.into();
        // The network's time is the provider's, not the adapter's.
        let network_time = policy.request_timeout * policy.max_requests.max(1);
        let hooks = network(Some(policy));
        let watch = hooks.clone();
        let mut spec = self.spec(Slot::Adapter, hooks, ());
        spec.host_time += network_time;
        let max = self.limits.max_output_bytes;
        let result = self
            .runtime
            .call(spec, move |store| {
                Box::pin(async move {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    instance
                        .evistream_plugin_adapter()
                        .call_complete(store, &config, &request)
                        .await
                })
            })
            .await
            .map_err(LlmError::from)
            .and_then(|answer| match answer {
                Ok(c) => Ok(convert::completion(c, max)?),
                Err(f) => Err(LlmError::Provider(f.into())),
            });
        let stats = CallStats {
            requests: watch.requests(),
            network: watch.waited(),
        };
        (result, stats)
    }
}
