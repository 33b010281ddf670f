//! Login defences: exponential backoff per account and per client address
//! after a few failed logins, and a bound on concurrent password hashing
//! (argon2id takes ~19 MiB and tens of ms of CPU per hash, so unbounded
//! concurrency is a memory exhaustion).
//!
//! Hashes run on a few threads of their own, not on tokio's blocking pool:
//! the allocator keeps a freed 19 MiB block for reuse by the thread that
//! freed it, so hashing on hundreds of blocking threads would keep hundreds
//! of blocks resident even with bounded concurrency.
//!
//! The failure counts are per node (in memory): behind a load balancer each
//! API node applies the same rules to what it sees.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::AuthConfig;
use crate::error::{ServiceError, ServiceResult};

/// Entries kept before old ones are pruned.
const PRUNE_AT: usize = 10_000;
/// Hard cap on entries: past it, the oldest half is dropped.
const MAX_ENTRIES: usize = 100_000;
/// An address shares its budget among everyone behind it (NAT): it gets
/// this many times the free failures of one account.
const ADDRESS_FACTOR: u32 = 4;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Backoff state and the hashing bound of one node.
pub struct LoginGuard {
    failures: Mutex<HashMap<String, Failures>>,
    hashes: HashPool,
    free: u32,
    base: Duration,
    max: Duration,
}

/// The keys a login attempt is counted under.
pub struct Attempt {
    keys: Vec<(String, u32)>,
}

impl Attempt {
    /// An attempt on `email` from `client` (when known).
    pub fn new(email: &str, client: Option<IpAddr>) -> Self {
        let mut keys = vec![(format!("account:{}", email.trim().to_lowercase()), 1)];
        if let Some(ip) = client {
            keys.push((format!("address:{}", address_key(ip)), ADDRESS_FACTOR));
        }
        Self { keys }
    }
}

/// IPv6 clients are counted per /64: one host usually holds the whole prefix.
fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

impl LoginGuard {
    /// From the auth settings.
    pub fn new(c: &AuthConfig) -> Self {
        let threads = if c.max_concurrent_hashes == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            c.max_concurrent_hashes
        };
        Self {
            failures: Mutex::new(HashMap::new()),
            hashes: HashPool::new(threads, c.max_waiting_hashes),
            free: c.login_free_failures,
            base: Duration::from_millis(c.login_backoff_base_ms),
            max: Duration::from_secs(c.login_backoff_max_secs),
        }
    }

    /// The wait still owed by a key with `f` failures, at `now`.
    fn owed(&self, f: Failures, free: u32, now: Instant) -> Duration {
        if f.count < free {
            return Duration::ZERO;
        }
        let doublings = (f.count - free).min(20);
        let backoff = self.base.saturating_mul(1 << doublings).min(self.max);
        (f.last + backoff).saturating_duration_since(now)
    }

    /// Refuses an attempt that comes before its backoff has passed; else
    /// counts it as a failure at once (under the same lock), so parallel
    /// attempts cannot all slip in under the free allowance.
    /// [`succeeded`](Self::succeeded) takes it back.
    pub fn admit(&self, a: &Attempt) -> ServiceResult<()> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let wait = a
            .keys
            .iter()
            .filter_map(|(k, factor)| {
                map.get(k)
                    .map(|f| self.owed(*f, self.free.saturating_mul(*factor), now))
            })
            .max()
            .unwrap_or_default();
        if wait.is_zero() {
            Self::count(&mut map, a, now, self.max);
            return Ok(());
        }
        Err(ServiceError::RateLimited {
            message: "too many failed logins; wait before trying again".into(),
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        })
    }

    /// Counts a failure against each of the attempt's keys.
    fn count(map: &mut HashMap<String, Failures>, a: &Attempt, now: Instant, max: Duration) {
        if map.len() >= PRUNE_AT {
            let horizon = max.saturating_mul(2);
            map.retain(|_, f| now.duration_since(f.last) < horizon);
            if map.len() >= MAX_ENTRIES {
                let mut by_age: Vec<(String, Instant)> =
                    map.iter().map(|(k, f)| (k.clone(), f.last)).collect();
                by_age.sort_by_key(|(_, t)| *t);
                for (k, _) in by_age.into_iter().take(MAX_ENTRIES / 2) {
                    map.remove(&k);
                }
            }
        }
        for (k, _) in &a.keys {
            let f = map.entry(k.clone()).or_insert(Failures {
                count: 0,
                last: now,
            });
            f.count = f.count.saturating_add(1);
            f.last = now;
        }
    }

    /// Takes back an admitted attempt that got no verdict (the server was
    /// busy, the database failed): it was not a wrong password.
    pub fn retract(&self, a: &Attempt) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for (k, _) in &a.keys {
            if let Some(f) = map.get_mut(k) {
                f.count = f.count.saturating_sub(1);
            }
        }
    }

    /// A correct password clears the account's count and takes back this
    /// attempt's count of the address (not the address's earlier failures:
    /// one good login must not reset a spray across accounts).
    pub fn succeeded(&self, a: &Attempt) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for (i, (k, _)) in a.keys.iter().enumerate() {
            if i == 0 {
                map.remove(k);
            } else if let Some(f) = map.get_mut(k) {
                f.count = f.count.saturating_sub(1);
            }
        }
    }

    /// Runs `f` (a password hash or check) on the hashing threads; refused
    /// at once when too many wait already.
    pub async fn hashing<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> ServiceResult<T> {
        self.hashes.run(f).await
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads with a bounded queue in front.
struct HashPool {
    queue: std::sync::mpsc::SyncSender<Job>,
    /// Jobs queued or running.
    load: Arc<AtomicUsize>,
    capacity: usize,
}

impl HashPool {
    fn new(threads: usize, max_waiting: usize) -> Self {
        let threads = threads.max(1);
        // Room for every admitted job: `load` is the bound, the channel never refuses.
        let (queue, jobs) = std::sync::mpsc::sync_channel::<Job>(threads + max_waiting.max(1));
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..threads {
            let jobs = jobs.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("evistream-hash-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for a job.
                        let job = match jobs.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            // Every sender is gone: the app was dropped.
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        Self {
            queue,
            load: Arc::new(AtomicUsize::new(0)),
            capacity: threads + max_waiting,
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> ServiceResult<T> {
        let busy = || ServiceError::RateLimited {
            message: "the server is busy checking passwords; try again shortly".into(),
            retry_after_secs: 1,
        };
        if self.load.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.load.fetch_sub(1, Ordering::AcqRel);
            return Err(busy());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let load = self.load.clone();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
            load.fetch_sub(1, Ordering::AcqRel);
        });
        if self.queue.try_send(job).is_err() {
            self.load.fetch_sub(1, Ordering::AcqRel);
            return Err(busy());
        }
        rx.await
            .map_err(|_| ServiceError::Internal(anyhow::anyhow!("password hashing thread stopped")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(free: u32) -> LoginGuard {
        LoginGuard::new(&AuthConfig {
            login_free_failures: free,
            login_backoff_base_ms: 60_000,
            login_backoff_max_secs: 900,
            max_concurrent_hashes: 1,
            max_waiting_hashes: 1,
            ..AuthConfig::default()
        })
    }

    #[test]
    fn backoff_starts_after_the_free_failures_and_success_clears_the_account() {
        let g = guard(3);
        let a = Attempt::new("A@x.org", Some("10.0.0.1".parse().unwrap()));
        for _ in 0..3 {
            g.admit(&a).unwrap();
        }
        let Err(ServiceError::RateLimited {
            retry_after_secs, ..
        }) = g.admit(&a)
        else {
            panic!("not throttled after 3 failures")
        };
        assert!((59..=60).contains(&retry_after_secs), "{retry_after_secs}");
        // Same account from elsewhere: still throttled.
        assert!(g.admit(&Attempt::new("a@x.org", None)).is_err());
        g.succeeded(&a);
        assert!(g.admit(&Attempt::new("a@x.org", None)).is_ok());
    }

    #[test]
    fn parallel_attempts_count_before_their_passwords_are_checked() {
        // Three attempts admitted at once, none finished yet: the fourth
        // already waits (the count is taken at admission, not at failure).
        let g = guard(3);
        let a = Attempt::new("b@x.org", None);
        for _ in 0..3 {
            g.admit(&a).unwrap();
        }
        assert!(g.admit(&a).is_err());
    }

    #[test]
    fn an_address_spraying_accounts_is_throttled() {
        let g = guard(2);
        let ip: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        for i in 0..8 {
            let a = Attempt::new(&format!("user{i}@x.org"), Some(ip));
            g.admit(&a).unwrap();
        }
        // Another host in the same /64.
        let next = Attempt::new("fresh@x.org", Some("2001:db8:1:2::9".parse().unwrap()));
        assert!(g.admit(&next).is_err());
        assert!(g.admit(&Attempt::new("fresh@x.org", None)).is_ok());
    }

    #[tokio::test]
    async fn hashing_is_bounded_and_excess_waiters_are_refused() {
        // One thread, one waiting place: a third job at once is refused.
        let g = guard(5);
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let running = g.hashing(move || {
            let _ = hold.recv();
        });
        let waiting = g.hashing(|| ());
        let (r1, r2, r3) = tokio::join!(running, waiting, async {
            tokio::task::yield_now().await;
            let r = g.hashing(|| ()).await;
            release.send(()).unwrap();
            r
        });
        assert!(r1.is_ok() && r2.is_ok());
        assert!(matches!(r3, Err(ServiceError::RateLimited { .. })));
        // Afterwards there is room again.
        assert!(g.hashing(|| 7).await.is_ok_and(|v| v == 7));
    }
}
