//! The process-wide wasmtime engine: configuration, the pooling-allocator
//! probe, the epoch ticker, and the executor plugin calls run on.
//!
//! Invariants:
//! - One `Engine` per process. The epoch ticker is an OS thread of its own:
//!   a guest that never yields must not be able to stop time.
//! - Plugin calls run on a dedicated tokio runtime, never on the API's
//!   workers; guests also yield to it at every epoch tick.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Length of one epoch tick; deadlines are counted in these.
pub const TICK: Duration = Duration::from_millis(10);

/// How the engine allocates instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Pre-reserved slots (fast instantiation); chosen when the probe succeeds.
    Pooling,
    /// Allocate per instance.
    OnDemand,
}

/// Engine settings (process-wide, fixed at first use).
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Try the pooling allocator first.
    pub pooling: bool,
    /// Concurrent instances the pool holds.
    pub pool_instances: u32,
    /// Largest linear memory of any instance (bytes).
    pub max_memory_bytes: u64,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            pooling: true,
            pool_instances: 64,
            max_memory_bytes: 1 << 30,
        }
    }
}

/// The shared engine and how it allocates.
pub struct SharedEngine {
    /// The engine.
    pub engine: Engine,
    /// What the probe chose.
    pub allocation: Allocation,
    executor: tokio::runtime::Handle,
    /// Instance slots for top-level calls (converters, extractors) and for
    /// adapters, which extractors call while holding their own slot: two
    /// budgets, so extractors can never take every slot and then wait
    /// forever on their adapters. With the pool, the two add up to its
    /// size: calls wait for a slot instead of failing on an exhausted pool.
    top_level_slots: Arc<Semaphore>,
    adapter_slots: Arc<Semaphore>,
}

/// Which budget a call draws its instance slot from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A converter or an extractor.
    TopLevel,
    /// An LLM adapter (possibly called from inside an extractor).
    Adapter,
}

static ENGINE: OnceLock<Result<SharedEngine, String>> = OnceLock::new();

fn base_config() -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true);
    c.epoch_interruption(true);
    c.parallel_compilation(true);
    c.cranelift_opt_level(wasmtime::OptLevel::Speed);
    c
}

fn pooled(settings: &EngineSettings) -> Config {
    let mut c = base_config();
    let n = settings.pool_instances.max(1);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        .total_core_instances(n * 8)
        .total_memories(n * 4)
        .total_tables(n * 8)
        .max_memory_size(settings.max_memory_bytes as usize)
        .max_memories_per_component(4)
        .max_core_instances_per_component(16)
        .max_tables_per_component(16);
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    c
}

/// The process-wide engine, created on first use with `settings` (later
/// callers share it whatever settings they pass).
pub fn shared(settings: &EngineSettings) -> Result<&'static SharedEngine, String> {
    ENGINE
        .get_or_init(|| create(settings))
        .as_ref()
        .map_err(Clone::clone)
}

/// A new engine with its own epoch ticker and executor, alive for the rest
/// of the process. The server uses [`shared`]; benchmarks compare settings.
pub fn create(settings: &EngineSettings) -> Result<SharedEngine, String> {
    let (engine, allocation) = if settings.pooling {
        // The pool reserves virtual memory up front; on a small VM or
        // under a ulimit that fails, and we fall back.
        match Engine::new(&pooled(settings)) {
            Ok(e) => (e, Allocation::Pooling),
            Err(err) => {
                tracing::warn!(error = %err, "pooling allocator unavailable; using on-demand allocation");
                (
                    Engine::new(&base_config()).map_err(|e| e.to_string())?,
                    Allocation::OnDemand,
                )
            }
        }
    } else {
        (
            Engine::new(&base_config()).map_err(|e| e.to_string())?,
            Allocation::OnDemand,
        )
    };
    let ticker = engine.clone();
    std::thread::Builder::new()
        .name("evistream-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(TICK);
                ticker.increment_epoch();
            }
        })
        .map_err(|e| e.to_string())?;
    let executor = spawn_executor().map_err(|e| e.to_string())?;
    tracing::info!(allocation = ?allocation, "plugin engine ready");
    let (top, adapters) = match allocation {
        Allocation::Pooling => {
            let n = settings.pool_instances.max(2) as usize;
            (n - n / 2, n / 2)
        }
        // On demand: only memory bounds it; no artificial cap.
        Allocation::OnDemand => (Semaphore::MAX_PERMITS, Semaphore::MAX_PERMITS),
    };
    Ok(SharedEngine {
        engine,
        allocation,
        executor,
        top_level_slots: Arc::new(Semaphore::new(top)),
        adapter_slots: Arc::new(Semaphore::new(adapters)),
    })
}

/// A tokio runtime on threads of its own, alive for the whole process.
fn spawn_executor() -> std::io::Result<tokio::runtime::Handle> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("evistream-plugin")
        .enable_all()
        .build()?;
    let handle = rt.handle().clone();
    std::thread::Builder::new()
        .name("evistream-plugin-rt".into())
        .spawn(move || rt.block_on(std::future::pending::<()>()))?;
    Ok(handle)
}

impl SharedEngine {
    /// Waits for an instance slot of `kind`; held for the call.
    pub async fn slot(&self, kind: Slot) -> Result<OwnedSemaphorePermit, super::PluginError> {
        let slots = match kind {
            Slot::TopLevel => &self.top_level_slots,
            Slot::Adapter => &self.adapter_slots,
        };
        slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| super::PluginError::Internal(format!("instance slots closed: {e}")))
    }

    /// Runs `fut` on the plugin executor and waits for it.
    pub async fn run<F, T>(&self, fut: F) -> Result<T, super::PluginError>
    where
        F: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.executor
            .spawn(fut)
            .await
            .map_err(|e| super::PluginError::Internal(format!("plugin task failed: {e}")))
    }

    /// Identifies the engine's compiled-code compatibility (for cache keys).
    pub fn compatibility_key(&self) -> String {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        format!("{:016x}", h.finish())
    }
}
