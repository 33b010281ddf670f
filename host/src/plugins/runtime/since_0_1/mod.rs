//! Contract `evistream:plugin@0.1.0`: the bindings (generated once per
//! world, the interfaces the worlds share generated once and reused with
//! `with:`), their conversions (`convert`), the host side of the
//! extractor's imports (`imports`) and the calls of the three kinds
//! (`calls`).

mod calls;
mod convert;
mod imports;

use wasmtime::component::{HasSelf, InstancePre, Linker};

use super::World;
use super::sandbox::HostState;
use crate::plugins::PluginError;
use crate::plugins::extractor::ExtractorImports;

/// The `form-extractor` world; also the one home of the shared interfaces.
pub(crate) mod extractor_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "form-extractor",
        imports: { default: async },
        exports: { default: async },
    });
}

/// The `pdf-converter` world.
pub(crate) mod converter_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "pdf-converter",
        exports: { default: async },
        with: {
            "evistream:plugin/types": super::extractor_world::evistream::plugin::types,
        },
    });
}

/// The `llm-adapter` world.
pub(crate) mod adapter_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "llm-adapter",
        exports: { default: async },
        with: {
            "evistream:plugin/types": super::extractor_world::evistream::plugin::types,
            "evistream:plugin/llm-types": super::extractor_world::evistream::plugin::llm_types,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

/// A loaded `pdf-converter@0.1.0`.
pub struct Converter {
    pub(crate) sha256: String,
    pre: converter_world::PdfConverterPre<HostState<()>>,
}

/// A loaded `form-extractor@0.1.0`.
pub struct Extractor {
    sha256: String,
    pre: extractor_world::FormExtractorPre<HostState<ExtractorImports>>,
}

/// A loaded `llm-adapter@0.1.0`.
pub struct Adapter {
    sha256: String,
    pre: adapter_world::LlmAdapterPre<HostState<()>>,
}

impl World for Converter {
    type State = ();
    const NAME: &'static str = "evistream:plugin/pdf-converter@0.1.0";

    fn add_imports(_: &mut Linker<HostState<()>>) -> wasmtime::Result<()> {
        Ok(())
    }

    fn new(pre: InstancePre<HostState<()>>, sha256: String) -> wasmtime::Result<Self> {
        let pre = converter_world::PdfConverterPre::new(pre)?;
        Ok(Self { sha256, pre })
    }
}

impl World for Extractor {
    type State = ExtractorImports;
    const NAME: &'static str = "evistream:plugin/form-extractor@0.1.0";

    fn add_imports(l: &mut Linker<HostState<ExtractorImports>>) -> wasmtime::Result<()> {
        extractor_world::FormExtractor::add_to_linker::<_, HasSelf<HostState<ExtractorImports>>>(
            l,
            |s| s,
        )
    }

    fn new(
        pre: InstancePre<HostState<ExtractorImports>>,
        sha256: String,
    ) -> wasmtime::Result<Self> {
        let pre = extractor_world::FormExtractorPre::new(pre)?;
        Ok(Self { sha256, pre })
    }
}

impl World for Adapter {
    type State = ();
    const NAME: &'static str = "evistream:plugin/llm-adapter@0.1.0";

    fn add_imports(l: &mut Linker<HostState<()>>) -> wasmtime::Result<()> {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(l)
    }

    // wasi:http is this world's own import: a link failure that names it is
    // an incompatibility, not a capability the adapter may not have.
    fn link_error(e: &wasmtime::Error) -> PluginError {
        PluginError::Incompatible(format!("{e:#}"))
    }

    fn new(pre: InstancePre<HostState<()>>, sha256: String) -> wasmtime::Result<Self> {
        let pre = adapter_world::LlmAdapterPre::new(pre)?;
        Ok(Self { sha256, pre })
    }
}
