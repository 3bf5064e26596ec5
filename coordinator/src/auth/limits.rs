//! Rate and concurrency limits, modelled on Kubernetes API Priority and
//! Fairness: separate budgets so that a flood of one kind cannot starve
//! another, and node sessions above all.
//!
//! - Per address, before authentication (verifying a token or a password costs
//!   CPU): every public and user request.
//! - Per identity, after authentication: reads, writes and watch opens each
//!   have their own GCRA budget (governor); watches also have a cap on how many
//!   one identity holds open.
//! - Sign-in has its own, much smaller budget per address and per username
//!   (argon2 is expensive on purpose), and at most a few hashes run at once.
//! - Unary user requests in flight are capped; beyond the cap a request is shed
//!   at once (`RESOURCE_EXHAUSTED`) instead of queueing without bound.
//! - Node heartbeats are messages inside an already open session stream: they
//!   never pass through these limits, and the engine reads node traffic on a
//!   lane of its own before API commands.
//!
//! Idle keys are evicted by [`Limits::evict_idle`], which the server runs every minute.

use super::policy::Budget;
use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Limits, all configurable (flags `--limit-*`).
#[derive(Clone, Debug)]
pub struct LimitSettings {
    /// Public and user requests per second per client address (burst 2×).
    pub per_ip_rps: u32,
    /// Node session opens and joins per second per client address (burst 5×).
    pub node_rps: u32,
    /// Unary reads per second per identity (burst 2×).
    pub read_rps: u32,
    /// Mutations per second per identity (burst 2×).
    pub write_rps: u32,
    /// Watch opens per second per identity (burst 2×).
    pub watch_rps: u32,
    /// Watches one identity may hold open.
    pub max_watches: u32,
    /// Sign-in attempts per minute per address and per username (burst = this).
    pub sign_in_per_min: u32,
    /// Unary user requests in flight, all identities together.
    pub max_inflight: u32,
}

impl Default for LimitSettings {
    fn default() -> LimitSettings {
        LimitSettings {
            per_ip_rps: 500,
            node_rps: 500,
            read_rps: 100,
            write_rps: 50,
            watch_rps: 5,
            max_watches: 16,
            sign_in_per_min: 20,
            max_inflight: 256,
        }
    }
}

/// Why a request was refused, and when to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exhausted {
    /// What ran out.
    pub what: &'static str,
    /// Earliest useful retry.
    pub retry_after: Duration,
}

fn quota(per_second: u32, burst_factor: u32) -> Quota {
    let rate = NonZeroU32::new(per_second.max(1)).expect("positive");
    Quota::per_second(rate)
        .allow_burst(NonZeroU32::new(per_second.max(1).saturating_mul(burst_factor)).expect("positive"))
}

/// The limiters.
pub struct Limits {
    settings: LimitSettings,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    node: DefaultKeyedRateLimiter<IpAddr>,
    read: DefaultKeyedRateLimiter<String>,
    write: DefaultKeyedRateLimiter<String>,
    watch: DefaultKeyedRateLimiter<String>,
    sign_in: DefaultKeyedRateLimiter<String>,
    hashing: Arc<Semaphore>,
    inflight: Arc<Semaphore>,
    watches: DashMap<String, Arc<Semaphore>>,
    clock: DefaultClock,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits").field("settings", &self.settings).finish()
    }
}

impl Limits {
    /// Limiters with these settings.
    pub fn new(settings: LimitSettings) -> Limits {
        let per_min = NonZeroU32::new(settings.sign_in_per_min.max(1)).expect("positive");
        Limits {
            per_ip: RateLimiter::keyed(quota(settings.per_ip_rps, 2)),
            node: RateLimiter::keyed(quota(settings.node_rps, 5)),
            read: RateLimiter::keyed(quota(settings.read_rps, 2)),
            write: RateLimiter::keyed(quota(settings.write_rps, 2)),
            watch: RateLimiter::keyed(quota(settings.watch_rps, 2)),
            sign_in: RateLimiter::keyed(Quota::per_minute(per_min)),
            hashing: Arc::new(Semaphore::new(4)),
            inflight: Arc::new(Semaphore::new(settings.max_inflight.max(1) as usize)),
            watches: DashMap::new(),
            clock: DefaultClock::default(),
            settings,
        }
    }

    fn check<K: std::hash::Hash + Eq + Clone>(
        &self,
        l: &DefaultKeyedRateLimiter<K>,
        key: &K,
        what: &'static str,
    ) -> Result<(), Exhausted> {
        l.check_key(key).map_err(|n| Exhausted { what, retry_after: n.wait_time_from(self.clock.now()) })
    }

    /// The per-address budget of a request before authentication.
    pub fn check_address(&self, ip: IpAddr, budget: Budget) -> Result<(), Exhausted> {
        match budget {
            Budget::Node => self.check(&self.node, &ip, "node requests per address"),
            _ => self.check(&self.per_ip, &ip, "requests per address"),
        }
    }

    /// The per-identity budget of an authenticated request.
    pub fn check_identity(&self, subject: &str, budget: Budget) -> Result<(), Exhausted> {
        let key = subject.to_string();
        match budget {
            Budget::Read => self.check(&self.read, &key, "reads per identity"),
            Budget::Write => self.check(&self.write, &key, "writes per identity"),
            Budget::Watch => self.check(&self.watch, &key, "watch opens per identity"),
            Budget::Public | Budget::Node => Ok(()),
        }
    }

    /// A sign-in attempt from `ip` for `username`: both budgets must allow it.
    pub fn check_sign_in(&self, ip: Option<IpAddr>, username: &str) -> Result<(), Exhausted> {
        if let Some(ip) = ip {
            self.check(&self.sign_in, &format!("ip:{ip}"), "sign-in attempts per address")?;
        }
        self.check(&self.sign_in, &format!("user:{username}"), "sign-in attempts per username")
    }

    /// A slot to hash a password in; `None` when all are busy (shed).
    pub fn hashing_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.hashing.clone().try_acquire_owned().ok()
    }

    /// A slot for one unary request; `None` when the coordinator is at its cap (shed).
    pub fn inflight_slot(&self) -> Result<OwnedSemaphorePermit, Exhausted> {
        self.inflight.clone().try_acquire_owned().map_err(|_| Exhausted {
            what: "requests in flight (coordinator overloaded)",
            retry_after: Duration::from_millis(100),
        })
    }

    /// A slot for one open watch of `subject`, held for the watch's life.
    pub fn watch_slot(&self, subject: &str) -> Result<OwnedSemaphorePermit, Exhausted> {
        let sem = self
            .watches
            .entry(subject.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.settings.max_watches.max(1) as usize)))
            .clone();
        sem.try_acquire_owned()
            .map_err(|_| Exhausted { what: "open watches per identity", retry_after: Duration::from_secs(1) })
    }

    /// Forgets keys that have not been limited recently and identities with no open watch.
    pub fn evict_idle(&self) {
        self.per_ip.retain_recent();
        self.node.retain_recent();
        self.read.retain_recent();
        self.write.retain_recent();
        self.watch.retain_recent();
        self.sign_in.retain_recent();
        for l in [&self.read, &self.write, &self.watch, &self.sign_in] {
            l.shrink_to_fit();
        }
        let max = self.settings.max_watches.max(1) as usize;
        self.watches.retain(|_, s| s.available_permits() < max);
    }

    /// Number of keys tracked (for tests of eviction and for status).
    pub fn tracked_keys(&self) -> usize {
        self.per_ip.len() + self.node.len() + self.read.len() + self.write.len() + self.watch.len() + self.sign_in.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_separate_and_say_when_to_retry() {
        let l = Limits::new(LimitSettings { read_rps: 2, write_rps: 1, ..LimitSettings::default() });
        for _ in 0..4 {
            l.check_identity("alice", Budget::Read).unwrap();
        }
        let e = l.check_identity("alice", Budget::Read).unwrap_err();
        assert!(e.retry_after > Duration::ZERO && e.retry_after <= Duration::from_secs(1), "{e:?}");
        l.check_identity("bob", Budget::Read).expect("another identity has its own budget");
        l.check_identity("alice", Budget::Write).expect("writes have their own budget");
    }

    #[test]
    fn idle_keys_are_evicted() {
        let l = Limits::new(LimitSettings { read_rps: 1000, ..LimitSettings::default() });
        for who in ["a", "b", "c"] {
            l.check_identity(who, Budget::Read).unwrap();
        }
        assert_eq!(l.tracked_keys(), 3);
        // A key is idle once its bucket is full again (a few ms at 1000/s).
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while l.tracked_keys() > 0 {
            assert!(std::time::Instant::now() < deadline, "keys never evicted");
            std::thread::sleep(Duration::from_millis(5));
            l.evict_idle();
        }
    }

    #[test]
    fn watches_per_identity_are_capped_and_released() {
        let l = Limits::new(LimitSettings { max_watches: 2, ..LimitSettings::default() });
        let a = l.watch_slot("alice").unwrap();
        let _b = l.watch_slot("alice").unwrap();
        assert!(l.watch_slot("alice").is_err());
        drop(a);
        assert!(l.watch_slot("alice").is_ok());
        l.evict_idle();
        assert_eq!(l.watches.len(), 1, "alice still holds one");
    }
}
