//! CPU-heavy work of requests (deriving a big review, aligning long lists
//! in an evaluation) runs on tokio's blocking threads, never on the async
//! workers that answer everyone else's requests. Each call's work is
//! bounded by its caller (list items, values per submission, the aligner's
//! budget); here, one organization runs at most half as many such tasks at
//! once as the machine has CPUs (at least one), so a tenant flooding the
//! node with heavy reads waits for its own earlier ones and leaves cores
//! to the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::error::{ServiceError, ServiceResult};

/// The per-organization bound on CPU tasks of one node.
pub struct CpuPool {
    per_organization: usize,
    running: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Default for CpuPool {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(2);
        Self::new(cpus / 2)
    }
}

impl CpuPool {
    /// A pool letting each organization run `per_organization` tasks at once.
    pub fn new(per_organization: usize) -> Self {
        Self {
            per_organization: per_organization.max(1),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `f` for `organization_id` on a blocking thread, once one of
    /// the organization's slots is free.
    pub async fn run<T: Send + 'static>(
        &self,
        organization_id: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> ServiceResult<T> {
        let slots = self.slots(organization_id)?;
        let out = match slots.clone().acquire_owned().await {
            Ok(permit) => {
                tokio::task::spawn_blocking(move || {
                    let out = f();
                    drop(permit);
                    out
                })
                .await
            }
            Err(e) => {
                self.release(organization_id, slots);
                return Err(ServiceError::Internal(anyhow::Error::new(e)));
            }
        };
        self.release(organization_id, slots);
        out.map_err(|e| ServiceError::Internal(anyhow::Error::new(e)))
    }

    fn slots(&self, organization_id: &str) -> ServiceResult<Arc<Semaphore>> {
        let mut running = self.running.lock().map_err(poisoned)?;
        Ok(running
            .entry(organization_id.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_organization)))
            .clone())
    }

    /// Forgets an organization's slots once no task holds or waits for them.
    fn release(&self, organization_id: &str, slots: Arc<Semaphore>) {
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        // The map's reference and `slots`: nobody else is using them.
        if Arc::strong_count(&slots) == 2 {
            running.remove(organization_id);
        }
    }

    #[cfg(test)]
    fn busy_organizations(&self) -> usize {
        self.running.lock().map_or(0, |r| r.len())
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> ServiceError {
    ServiceError::Internal(anyhow::anyhow!("cpu pool lock poisoned"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_organization_runs_at_most_its_slots_and_others_are_not_held_up() {
        let pool = Arc::new(CpuPool::new(2));
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let heavy = (0..6).map(|_| {
            let (pool, now, peak) = (pool.clone(), now.clone(), peak.clone());
            tokio::spawn(async move {
                pool.run("a", move || {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(200));
                    now.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            })
        });
        let heavy: Vec<_> = heavy.collect();
        tokio::time::sleep(Duration::from_millis(10)).await;
        // Another organization gets a slot at once, not after a's 600 ms.
        let started = std::time::Instant::now();
        assert_eq!(pool.run("b", || 7).await.ok(), Some(7));
        assert!(started.elapsed() < Duration::from_millis(300));
        for h in heavy {
            assert!(h.await.expect("task").is_ok());
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        assert_eq!(pool.busy_organizations(), 0, "idle organizations forgotten");
    }
}
