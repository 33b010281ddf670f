//! The per-call sandbox: a fresh `Store` for every call (a trapped store is
//! poisoned), a memory cap over all of the component's memories, a
//! wall-clock deadline enforced by epoch interruption, WASI with nothing in
//! it (no files, no network, no environment), and the translation of every
//! way a call can die into a [`PluginError`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::engine::SharedEngine;
use super::outbound::OutboundHooks;
use crate::plugins::PluginError;

/// Limits of one call.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Cap on the sum of all linear memories, in bytes.
    pub memory_bytes: u64,
    /// Wall-clock deadline of the call.
    pub timeout: Duration,
    /// Cap on the size of the call's output, in bytes.
    pub max_output_bytes: u64,
    /// What a converter's document and page images are held to.
    pub document: crate::plugins::invariants::DocumentBounds,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 512 << 20,
            timeout: Duration::from_secs(120),
            max_output_bytes: 64 << 20,
            document: Default::default(),
        }
    }
}

/// Counts memory over every memory of the instance and refuses growth past the cap.
pub struct MemoryCap {
    limit: u64,
    in_use: u64,
    /// Set when a growth was refused: a trap after it is an out-of-memory.
    pub denied: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let next = self.in_use + (desired.saturating_sub(current)) as u64;
        if next > self.limit {
            self.denied = true;
            return Ok(false);
        }
        self.in_use = next;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// What a plugin's store holds: the sandbox's own state, and `world`, what
/// the plugin's kind lends it (its imports' backends).
pub struct HostState<W> {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The memory cap.
    pub memory: MemoryCap,
    deadline: Instant,
    /// Microseconds spent waiting on the network: added to the deadline,
    /// which bounds the plugin's own time, not its provider's.
    waited_us: Arc<AtomicU64>,
    stderr: MemoryOutputPipe,
    http: WasiHttpCtx,
    /// The outbound policy of this call (deny-all unless it is an adapter's).
    pub outbound: OutboundHooks,
    /// What this kind of plugin's imports reach.
    pub world: W,
}

impl<W> HostState<W> {
    /// The clock of time spent waiting on the host (network, LLM calls),
    /// which extends the call's deadline.
    pub fn network_clock(&self) -> &Arc<AtomicU64> {
        &self.waited_us
    }
}

impl<W: Send> WasiHttpView for HostState<W> {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

impl<W: Send> WasiView for HostState<W> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl<W> HostState<W> {
    /// The tail of what the guest wrote to stderr (panic messages).
    pub fn stderr_tail(&self) -> String {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let t = text.trim();
        let start = t.len().saturating_sub(600);
        let start = (start..t.len())
            .find(|i| t.is_char_boundary(*i))
            .unwrap_or(t.len());
        t[start..].to_owned()
    }
}

/// A fresh store for one call with `limits`, whose outbound HTTP `outbound`
/// decides, lending the plugin `world`.
pub fn new_store<W: Send>(
    engine: &SharedEngine,
    limits: &CallLimits,
    outbound: OutboundHooks,
    world: W,
) -> Store<HostState<W>> {
    let stderr = MemoryOutputPipe::new(64 * 1024);
    // No preopens, no env, no args, no network: the WASI a std guest needs to
    // start, with nothing behind it.
    let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).build();
    let state = HostState {
        wasi,
        table: ResourceTable::new(),
        memory: MemoryCap {
            limit: limits.memory_bytes,
            in_use: 0,
            denied: false,
        },
        deadline: Instant::now() + limits.timeout,
        waited_us: outbound.wait_clock(),
        stderr,
        http: WasiHttpCtx::new(),
        outbound,
        world,
    };
    let mut store = Store::new(&engine.engine, state);
    store.limiter(|s| &mut s.memory);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| {
        let s = ctx.data();
        let waited = Duration::from_micros(s.waited_us.load(Ordering::Relaxed));
        if Instant::now() >= s.deadline + waited {
            Ok(UpdateDeadline::Interrupt)
        } else {
            // Yield to the executor at every tick, so a busy guest shares it.
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        }
    });
    store
}

/// Turns a failed call into a typed error.
pub fn classify<W>(err: wasmtime::Error, state: &HostState<W>, limits: &CallLimits) -> PluginError {
    if let Some(why) = state.outbound.denied() {
        return PluginError::CapabilityDenied(why);
    }
    if state.memory.denied {
        return PluginError::OutOfMemory {
            limit_bytes: limits.memory_bytes,
        };
    }
    if let Some(Trap::Interrupt) = err.downcast_ref::<Trap>() {
        return PluginError::Timeout {
            limit_ms: limits.timeout.as_millis() as u64,
        };
    }
    let tail = state.stderr_tail();
    let msg = if tail.is_empty() {
        format!("{err:#}")
    } else {
        format!("{err:#}; stderr: {tail}")
    };
    PluginError::Trap(msg)
}
