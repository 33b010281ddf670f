//! The wasm implementation of the plugin faces: WebAssembly components
//! (wasmtime, component model) run sandboxed per call. Nothing outside this
//! module names wasmtime.
//!
//! - `engine`: the process-wide engine, its executor and instance slots;
//! - `cache`: compiled artifacts on disk, per component hash;
//! - `sandbox`: the per-call store, its limits and error classification;
//! - `outbound`: the adapter's HTTP, under the host's [`OutboundPolicy`];
//! - `since_0_1`: bindings, conversions and calls of contract 0.1;
//! - `since_0_2`: contract 0.2's converter (documents with their layout).
//!   A new contract version is a new folder beside them.
//!
//! [`OutboundPolicy`]: crate::plugins::policy::OutboundPolicy

/// `From<the contract's convert-error> for ConvertError`: the same four
/// verdicts in every contract version's bindings.
macro_rules! convert_error_from {
    ($($wit:ident)::+) => {
        impl From<$($wit)::+> for $crate::plugins::converter::ConvertError {
            fn from(e: $($wit)::+) -> Self {
                match e {
                    $($wit)::+::Encrypted(m) => Self::Encrypted(m),
                    $($wit)::+::Malformed(m) => Self::Malformed(m),
                    $($wit)::+::Unsupported(m) => Self::Unsupported(m),
                    $($wit)::+::Internal(m) => Self::Failed(m),
                }
            }
        }
    };
}
pub(crate) use convert_error_from;

pub mod cache;
pub mod engine;
pub mod outbound;
pub mod sandbox;
pub mod since_0_1;
pub mod since_0_2;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::Mutex;
use wasmtime::Store;
use wasmtime::component::{Component, InstancePre, Linker};

use crate::plugins::converter::{ConvertError, ConvertedDocument, PdfConverter};
use crate::plugins::extractor::FormExtractor;
use crate::plugins::llm::LlmAdapter;
use crate::plugins::manifest::PluginKind;
use crate::plugins::policy::OutboundPolicy;
use crate::plugins::{CallLimits, PluginError};

use cache::CompileCache;
use engine::{EngineSettings, SharedEngine, Slot};
use outbound::OutboundHooks;
use sandbox::HostState;

/// Entry point of the runtime: the shared engine, the compile cache and
/// the components loaded so far (once per content hash, shared by every call).
#[derive(Clone)]
pub struct PluginRuntime {
    /// The process-wide engine.
    pub engine: &'static SharedEngine,
    /// Compiled-artifact cache.
    pub cache: CompileCache,
    loaded: Arc<LoadedComponents>,
}

#[derive(Default)]
struct LoadedComponents {
    converters: Loaded<AnyConverter>,
    extractors: Loaded<since_0_1::Extractor>,
    adapters: Loaded<since_0_1::Adapter>,
}

/// Components of one world, loaded once per content hash.
struct Loaded<T>(Mutex<HashMap<String, Arc<T>>>);

impl<T> Default for Loaded<T> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<T: World> Loaded<T> {
    /// The component `sha`, loaded from `bytes` (awaited only then) the first time.
    async fn get(
        &self,
        rt: &PluginRuntime,
        sha: &str,
        bytes: impl Future<Output = Result<Arc<Vec<u8>>, PluginError>>,
    ) -> Result<Arc<T>, PluginError> {
        let mut loaded = self.0.lock().await;
        if let Some(c) = loaded.get(sha) {
            return Ok(c.clone());
        }
        let c = Arc::new(rt.load::<T>(bytes.await?).await?);
        loaded.insert(sha.to_owned(), c.clone());
        Ok(c)
    }
}

/// One kind of plugin as a WIT world of one contract version: how it links,
/// and what its loaded form is.
pub(crate) trait World: Sized + Send + Sync + 'static {
    /// What the kind's imports reach during a call (its store's `world`).
    type State: Send + 'static;
    /// `evistream:plugin/<world>@<version>`, for error messages.
    const NAME: &'static str;
    /// Adds the world's own imports (beyond WASI) to `linker`.
    fn add_imports(linker: &mut Linker<HostState<Self::State>>) -> wasmtime::Result<()>;
    /// The verdict on a link failure.
    fn link_error(e: &wasmtime::Error) -> PluginError {
        link_error(e)
    }
    /// Checks the component's exports and keeps what calls need.
    fn new(pre: InstancePre<HostState<Self::State>>, sha256: String) -> wasmtime::Result<Self>;
}

/// A loaded `pdf-converter` of whichever contract version it implements
/// (the newest first).
pub(crate) enum AnyConverter {
    /// Contract 0.1: markdown and page ranges.
    V0_1(since_0_1::Converter),
    /// Contract 0.2: with the layout.
    V0_2(since_0_2::Converter),
}

impl World for AnyConverter {
    type State = ();
    const NAME: &'static str = "evistream:plugin/pdf-converter (@0.2.0 or @0.1.0)";

    fn add_imports(_: &mut Linker<HostState<()>>) -> wasmtime::Result<()> {
        Ok(())
    }

    fn new(pre: InstancePre<HostState<()>>, sha256: String) -> wasmtime::Result<Self> {
        match since_0_2::Converter::new(pre.clone(), sha256.clone()) {
            Ok(c) => Ok(Self::V0_2(c)),
            Err(_) => since_0_1::Converter::new(pre, sha256).map(Self::V0_1),
        }
    }
}

#[async_trait::async_trait]
impl PdfConverter for Bound<AnyConverter> {
    fn sha256(&self) -> &str {
        match &*self.component {
            AnyConverter::V0_1(c) => &c.sha256,
            AnyConverter::V0_2(c) => &c.sha256,
        }
    }

    async fn convert(
        &self,
        pdf: Vec<u8>,
        config: Vec<(String, String)>,
    ) -> Result<ConvertedDocument, ConvertError> {
        let doc = match &*self.component {
            AnyConverter::V0_1(c) => c.convert(self, pdf, config).await?,
            AnyConverter::V0_2(c) => c.convert(self, pdf, config).await?,
        };
        crate::plugins::invariants::check_document(&doc, &self.document_bounds())
            .map_err(|v| PluginError::InvalidOutput(v.to_string()))?;
        Ok(doc)
    }

    async fn render(&self, pdf: Vec<u8>, page: u32, width: u32) -> Result<Vec<u8>, ConvertError> {
        let png = match &*self.component {
            AnyConverter::V0_2(c) => c.render(self, pdf, page, width).await?,
            AnyConverter::V0_1(_) => {
                return Err(ConvertError::Unsupported(
                    "this converter implements contract 0.1, which renders no pages".into(),
                ));
            }
        };
        crate::plugins::invariants::check_page_image(&png, width, &self.document_bounds())
            .map_err(|v| PluginError::InvalidOutput(v.to_string()))?;
        Ok(png)
    }
}

/// A loaded component bound to the runtime and the limits of its calls:
/// what the host hands out behind a plugin face.
pub struct Bound<C> {
    pub(crate) component: Arc<C>,
    pub(crate) runtime: PluginRuntime,
    pub(crate) limits: CallLimits,
    /// Time the call may spend outside the plugin (network, LLM calls),
    /// added to the backstop.
    pub(crate) host_time: Duration,
}

impl<C> Bound<C> {
    /// The document bounds of this call, its output limit included.
    fn document_bounds(&self) -> crate::plugins::invariants::DocumentBounds {
        crate::plugins::invariants::DocumentBounds {
            max_output_bytes: self.limits.max_output_bytes,
            ..self.limits.document
        }
    }

    /// A call of this component in `slot`, with `outbound` as its network
    /// and `world` lent to its imports.
    pub(crate) fn spec<W>(&self, slot: Slot, outbound: OutboundHooks, world: W) -> CallSpec<W> {
        CallSpec {
            slot,
            limits: self.limits,
            host_time: self.host_time,
            outbound,
            world,
        }
    }
}

/// How one call runs: its slot, its limits, its network and what its
/// imports reach.
pub(crate) struct CallSpec<W> {
    pub slot: Slot,
    pub limits: CallLimits,
    /// Time outside the plugin the backstop allows for.
    pub host_time: Duration,
    pub outbound: OutboundHooks,
    pub world: W,
}

impl PluginRuntime {
    /// A runtime on the process-wide engine, caching compiled components under `cache_dir`.
    pub fn new(settings: &EngineSettings, cache_dir: &Path) -> Result<Self, PluginError> {
        let engine = engine::shared(settings).map_err(PluginError::Internal)?;
        Ok(Self::with_engine(engine, cache_dir))
    }

    /// A runtime on a given engine (benchmarks compare engine settings).
    pub fn with_engine(engine: &'static SharedEngine, cache_dir: &Path) -> Self {
        Self {
            engine,
            cache: CompileCache::new(cache_dir),
            loaded: Arc::default(),
        }
    }

    /// Compiles `bytes` (or loads them from the cache), links them with
    /// WASI (nothing behind it) plus the world's imports, and checks the
    /// world's exports: the one loader of every kind.
    pub(crate) async fn load<C: World>(&self, bytes: Arc<Vec<u8>>) -> Result<C, PluginError> {
        let (component, sha256) = self.cache.load(self.engine, bytes).await?;
        let mut linker = Linker::<HostState<C::State>>::new(&self.engine.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| PluginError::Internal(e.to_string()))?;
        C::add_imports(&mut linker).map_err(|e| PluginError::Internal(e.to_string()))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| C::link_error(&e))?;
        C::new(pre, sha256).map_err(|e| {
            PluginError::Incompatible(format!("does not implement {}: {e:#}", C::NAME))
        })
    }

    /// The one wrapper of every plugin call: a fresh store under the
    /// call's limits, `call` run on the plugin executor in an instance slot,
    /// a backstop past the deadline, and every failure classified.
    pub(crate) async fn call<W, R, F>(&self, spec: CallSpec<W>, call: F) -> Result<R, PluginError>
    where
        W: Send + 'static,
        R: Send + 'static,
        F: for<'a> FnOnce(&'a mut Store<HostState<W>>) -> BoxFuture<'a, wasmtime::Result<R>>
            + Send
            + 'static,
    {
        let engine = self.engine;
        let limits = spec.limits;
        let backstop = limits.timeout + spec.host_time + Duration::from_secs(2);
        let run = async move {
            let mut store = sandbox::new_store(engine, &limits, spec.outbound, spec.world);
            let result = call(&mut store).await;
            // A refused request fails the call, whatever the guest made of it.
            if let Some(why) = store.data().outbound.denied() {
                return Err(PluginError::CapabilityDenied(why));
            }
            result.map_err(|e| sandbox::classify(e, store.data(), &limits))
        };
        // Waiting for a slot is queueing, not the plugin's time.
        let _slot = self.engine.slot(spec.slot).await?;
        match tokio::time::timeout(backstop, self.engine.run(run)).await {
            Ok(r) => r?,
            Err(_) => Err(PluginError::Timeout {
                limit_ms: limits.timeout.as_millis() as u64,
            }),
        }
    }

    /// Checks that `bytes` is a component importing nothing a `kind` may
    /// not use, implementing the contract version `wit`, then loads it as
    /// that kind (which checks its exports). A refusal names the step.
    pub async fn validate(
        &self,
        kind: PluginKind,
        wit: &str,
        bytes: Arc<Vec<u8>>,
    ) -> Result<(), Invalid> {
        let at = |step: ValidationStep| move |error: PluginError| Invalid { step, error };
        let (component, sha) = self
            .cache
            .load(self.engine, bytes.clone())
            .await
            .map_err(at(ValidationStep::Component))?;
        check_imports(self, &component, kind).map_err(at(ValidationStep::Imports))?;
        check_contract(self, &component, wit).map_err(at(ValidationStep::Contract))?;
        let ready = async { Ok(bytes) };
        match kind {
            PluginKind::PdfConverter => self
                .loaded
                .converters
                .get(self, &sha, ready)
                .await
                .map(drop),
            PluginKind::LlmAdapter => self.loaded.adapters.get(self, &sha, ready).await.map(drop),
            PluginKind::FormExtractor => self
                .loaded
                .extractors
                .get(self, &sha, ready)
                .await
                .map(drop),
        }
        .map_err(at(ValidationStep::World))
    }

    /// The converter with content hash `sha` (`bytes` awaited only when it
    /// is not loaded yet), its calls under `limits`.
    pub async fn converter(
        &self,
        sha: &str,
        bytes: impl Future<Output = Result<Arc<Vec<u8>>, PluginError>>,
        limits: CallLimits,
    ) -> Result<Arc<dyn PdfConverter>, PluginError> {
        let c = self.loaded.converters.get(self, sha, bytes).await?;
        Ok(Arc::new(self.bind(c, limits, Duration::ZERO)))
    }

    /// The extractor with content hash `sha`, its calls under `limits` plus
    /// up to `llm_budget` spent in its `llm` calls.
    pub async fn extractor(
        &self,
        sha: &str,
        bytes: impl Future<Output = Result<Arc<Vec<u8>>, PluginError>>,
        limits: CallLimits,
        llm_budget: Duration,
    ) -> Result<Arc<dyn FormExtractor>, PluginError> {
        let c = self.loaded.extractors.get(self, sha, bytes).await?;
        Ok(Arc::new(self.bind(c, limits, llm_budget)))
    }

    /// The adapter with content hash `sha`, its calls under `limits`
    /// (network waits extra).
    pub async fn adapter(
        &self,
        sha: &str,
        bytes: impl Future<Output = Result<Arc<Vec<u8>>, PluginError>>,
        limits: CallLimits,
    ) -> Result<Arc<dyn LlmAdapter>, PluginError> {
        let c = self.loaded.adapters.get(self, sha, bytes).await?;
        Ok(Arc::new(self.bind(c, limits, Duration::ZERO)))
    }

    /// `component` bound to this runtime and `limits`.
    pub(crate) fn bind<C>(
        &self,
        component: Arc<C>,
        limits: CallLimits,
        host_time: Duration,
    ) -> Bound<C> {
        Bound {
            component,
            runtime: self.clone(),
            limits,
            host_time,
        }
    }
}

/// The steps of [`PluginRuntime::validate`], in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationStep {
    /// The bytes are a WebAssembly component this engine compiles.
    Component,
    /// It imports only what its kind may use.
    Imports,
    /// It exports the contract version its manifest declares.
    Contract,
    /// It exports its kind's world and links against the host's imports.
    World,
}

impl ValidationStep {
    /// Stable name, as `evistream plugin check` reports it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Component => "component",
            Self::Imports => "imports",
            Self::Contract => "contract",
            Self::World => "world",
        }
    }
}

/// A component refused by [`PluginRuntime::validate`], and at which step.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Invalid {
    /// The step that refused it.
    pub step: ValidationStep,
    /// Why.
    pub error: PluginError,
}

/// The network of a call: the adapter's policy, or none at all.
pub(crate) fn network(policy: Option<OutboundPolicy>) -> OutboundHooks {
    OutboundHooks::new(policy.unwrap_or_else(OutboundPolicy::deny_all))
}

/// A link failure: an import the world does not grant is a capability
/// denial; anything else an incompatibility.
pub(crate) fn link_error(e: &wasmtime::Error) -> PluginError {
    let msg = format!("{e:#}");
    if msg.contains("wasi:http") || msg.contains("wasi:sockets") {
        PluginError::CapabilityDenied(format!(
            "the component imports what this kind of plugin may not use: {msg}"
        ))
    } else {
        PluginError::Incompatible(msg)
    }
}

/// Interfaces every kind may import: what a Rust `std` guest links (with
/// nothing behind it: no preopens, no environment) and the contract's own.
const BASE_IMPORTS: &[&str] = &[
    "wasi:cli/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
    "evistream:plugin/",
];

/// The contract versions a component exports (`evistream:plugin/…@0.2.0`
/// gives `0.2.0`), without duplicates.
pub fn contract_versions(rt: &PluginRuntime, c: &Component) -> Vec<String> {
    let mut v: Vec<String> = c
        .component_type()
        .exports(&rt.engine.engine)
        .filter_map(|(name, _)| {
            let rest = name.strip_prefix("evistream:plugin/")?;
            rest.split_once('@').map(|(_, ver)| ver.to_owned())
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The component implements the contract version its manifest declares:
/// a 0.2 component declared as 0.1 (or the reverse) is refused.
fn check_contract(rt: &PluginRuntime, c: &Component, wit: &str) -> Result<(), PluginError> {
    let found = contract_versions(rt, c);
    if found.iter().any(|v| v == wit) {
        return Ok(());
    }
    Err(PluginError::Incompatible(format!(
        "the manifest declares contract {wit}, but the component exports {}",
        if found.is_empty() {
            "no evistream:plugin interface".to_owned()
        } else {
            format!("evistream:plugin@{}", found.join(", @"))
        }
    )))
}

fn check_imports(rt: &PluginRuntime, c: &Component, kind: PluginKind) -> Result<(), PluginError> {
    let ty = c.component_type();
    for (name, _) in ty.imports(&rt.engine.engine) {
        let base = BASE_IMPORTS.iter().any(|p| name.starts_with(p));
        let http = kind == PluginKind::LlmAdapter && name.starts_with("wasi:http/");
        if !(base || http) {
            return Err(PluginError::CapabilityDenied(format!(
                "the component imports `{name}`, which a {} may not use",
                kind.world()
            )));
        }
    }
    Ok(())
}
