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
    /// Watches one identity may hold open (also: public streams per address).
    pub max_watches: u32,
    /// Unary requests one identity may have in flight.
    pub max_inflight_per_identity: u32,
    /// Sign-in attempts per minute per address and per username (burst = this).
    pub sign_in_per_min: u32,
    /// Unary user requests in flight, all identities together.
    pub max_inflight: u32,
    /// Messages per second one node session may send; a session over it is closed.
    pub session_msg_rate: u32,
    /// The burst a node session may save up.
    pub session_msg_burst: u32,
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
            max_inflight_per_identity: 32,
            sign_in_per_min: 20,
            max_inflight: 256,
            session_msg_rate: 200,
            session_msg_burst: 1000,
        }
    }
}

/// Why a request was refused, and when to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exhausted {
    /// What ran out, for people.
    pub what: &'static str,
    /// The same, as a metric label (`fog_rate_limited_requests_total{limit}`).
    pub limit: &'static str,
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
    sign_in_user: DefaultKeyedRateLimiter<String>,
    hashing: Arc<Semaphore>,
    inflight: Arc<Semaphore>,
    inflight_by: DashMap<String, Arc<Semaphore>>,
    streams: DashMap<String, Arc<Semaphore>>,
    clock: DefaultClock,
    metrics: Arc<crate::metrics::Metrics>,
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
            // A username under attack from many addresses: a ceiling, not a lockout.
            sign_in_user: RateLimiter::keyed(Quota::per_minute(
                per_min.saturating_mul(NonZeroU32::new(30).expect("30")),
            )),
            hashing: Arc::new(Semaphore::new(4)),
            inflight: Arc::new(Semaphore::new(settings.max_inflight.max(1) as usize)),
            inflight_by: DashMap::new(),
            streams: DashMap::new(),
            clock: DefaultClock::default(),
            settings,
            metrics: Arc::default(),
        }
    }

    /// Counts refusals in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Limits {
        self.metrics = metrics;
        self
    }

    fn refused(&self, what: &'static str, limit: &'static str, retry_after: Duration) -> Exhausted {
        self.metrics.limited(limit);
        Exhausted { what, limit, retry_after }
    }

    fn check<K: std::hash::Hash + Eq + Clone>(
        &self,
        l: &DefaultKeyedRateLimiter<K>,
        key: &K,
        (what, limit): (&'static str, &'static str),
    ) -> Result<(), Exhausted> {
        l.check_key(key).map_err(|n| self.refused(what, limit, n.wait_time_from(self.clock.now())))
    }

    /// The per-address budget of a request before authentication.
    pub fn check_address(&self, ip: IpAddr, budget: Budget) -> Result<(), Exhausted> {
        let ip = address(ip);
        match budget {
            Budget::Node => self.check(&self.node, &ip, ("node requests per address", "node_per_address")),
            _ => self.check(&self.per_ip, &ip, ("requests per address", "per_address")),
        }
    }

    /// The per-identity budget of an authenticated request.
    pub fn check_identity(&self, subject: &str, budget: Budget) -> Result<(), Exhausted> {
        let key = subject.to_string();
        match budget {
            Budget::Read => self.check(&self.read, &key, ("reads per identity", "reads_per_identity")),
            Budget::Write => self.check(&self.write, &key, ("writes per identity", "writes_per_identity")),
            Budget::Watch => self.check(&self.watch, &key, ("watch opens per identity", "watch_opens_per_identity")),
            Budget::Public | Budget::PublicStream | Budget::Node => Ok(()),
        }
    }

    /// A sign-in attempt from `ip` for `username`. The strict budgets are per
    /// address and per (username, address), so an attacker elsewhere cannot
    /// lock a user out; a username also has a 30x higher ceiling across all
    /// addresses, against guessing from many.
    pub fn check_sign_in(&self, ip: Option<IpAddr>, username: &str) -> Result<(), Exhausted> {
        let from = ip.map(|ip| address(ip).to_string()).unwrap_or_default();
        self.check(&self.sign_in, &format!("ip:{from}"), ("sign-in attempts per address", "sign_in_per_address"))?;
        self.check(
            &self.sign_in,
            &format!("user:{username}@{from}"),
            ("sign-in attempts per username and address", "sign_in_per_user_address"),
        )?;
        self.check(&self.sign_in_user, &username.to_string(), ("sign-in attempts per username", "sign_in_per_user"))
    }

    /// A slot to hash a password in; `None` when all are busy (shed).
    pub fn hashing_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.hashing.clone().try_acquire_owned().ok()
    }

    /// Slots for one unary request of `subject`: its own cap first (so one
    /// identity cannot take every slot), then the coordinator's (shed when full).
    pub fn inflight_slots(&self, subject: &str) -> Result<Vec<OwnedSemaphorePermit>, Exhausted> {
        let own = keyed_slot(&self.inflight_by, subject, self.settings.max_inflight_per_identity).ok_or_else(|| {
            self.refused("requests in flight per identity", "inflight_per_identity", Duration::from_millis(100))
        })?;
        let all = self.inflight.clone().try_acquire_owned().map_err(|_| {
            self.refused("requests in flight (coordinator overloaded)", "inflight", Duration::from_millis(100))
        })?;
        Ok(vec![own, all])
    }

    /// A slot for one open stream of `key` (an identity's watches, or an
    /// address's public streams), held for the stream's life.
    pub fn stream_slot(&self, key: &str) -> Result<OwnedSemaphorePermit, Exhausted> {
        keyed_slot(&self.streams, key, self.settings.max_watches)
            .ok_or_else(|| self.refused("open streams per identity or address", "streams", Duration::from_secs(1)))
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
        self.streams.retain(|_, s| s.available_permits() < max);
        let max = self.settings.max_inflight_per_identity.max(1) as usize;
        self.inflight_by.retain(|_, s| s.available_permits() < max);
        self.sign_in_user.retain_recent();
        self.sign_in_user.shrink_to_fit();
    }

    /// Number of keys tracked (for tests of eviction and for status).
    pub fn tracked_keys(&self) -> usize {
        self.per_ip.len() + self.node.len() + self.read.len() + self.write.len() + self.watch.len() + self.sign_in.len()
    }
}

/// A permit from the semaphore of `key` (created with `cap` permits), taken
/// while holding the map entry so eviction cannot race it.
fn keyed_slot(map: &DashMap<String, Arc<Semaphore>>, key: &str, cap: u32) -> Option<OwnedSemaphorePermit> {
    let entry = map.entry(key.to_string()).or_insert_with(|| Arc::new(Semaphore::new(cap.max(1) as usize)));
    entry.value().clone().try_acquire_owned().ok()
}

/// The address limits are keyed on: IPv4 as is, IPv6 by its /64 (one host
/// usually holds a whole /64, and could otherwise mint fresh keys at will).
pub fn address(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

/// The stream-slot key of an address.
pub fn address_key(ip: IpAddr) -> String {
    format!("ip:{}", address(ip))
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
        let a = l.stream_slot("alice").unwrap();
        let _b = l.stream_slot("alice").unwrap();
        assert!(l.stream_slot("alice").is_err());
        drop(a);
        assert!(l.stream_slot("alice").is_ok());
        l.evict_idle();
        assert_eq!(l.streams.len(), 1, "alice still holds one");
    }

    #[test]
    fn one_identity_cannot_take_every_inflight_slot() {
        let l =
            Limits::new(LimitSettings { max_inflight: 8, max_inflight_per_identity: 3, ..LimitSettings::default() });
        let held: Vec<_> = (0..3).map(|_| l.inflight_slots("hog").unwrap()).collect();
        assert_eq!(l.inflight_slots("hog").unwrap_err().what, "requests in flight per identity");
        let _other = l.inflight_slots("someone-else").expect("others are still served");
        drop(held);
        assert!(l.inflight_slots("hog").is_ok());
    }

    #[test]
    fn sign_in_is_limited_per_address_and_username_pair() {
        let l = Limits::new(LimitSettings { sign_in_per_min: 3, ..LimitSettings::default() });
        let attacker = Some("10.0.0.66".parse().unwrap());
        for _ in 0..3 {
            l.check_sign_in(attacker, "admin").unwrap();
        }
        assert!(l.check_sign_in(attacker, "admin").is_err());
        l.check_sign_in(Some("10.0.0.7".parse().unwrap()), "admin")
            .expect("the real admin, elsewhere, can still sign in");
    }

    #[test]
    fn ipv6_addresses_are_keyed_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(address(a), address(b));
        assert_ne!(address(a), address("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(address("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
