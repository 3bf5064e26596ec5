//! Per-client-IP limits on API calls (GCRA, governor), so one browser or
//! script cannot crowd out the others behind the same gateway. The coordinator
//! applies its own per-identity limits behind this.

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// The client's IP address, as the TCP connection saw it (forwarding headers
/// are not trusted: anyone can send them).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// Per-IP GCRA limiter.
#[derive(Clone)]
pub struct IpLimits {
    limiter: Arc<RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>>,
}

impl IpLimits {
    /// `rps` sustained calls per second per IP with bursts of `burst` (both ≥ 1, checked by the config).
    pub fn new(rps: u32, burst: u32) -> IpLimits {
        let quota = Quota::per_second(NonZeroU32::new(rps.max(1)).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN));
        IpLimits { limiter: Arc::new(RateLimiter::keyed(quota)) }
    }

    /// `Ok` when `ip` may make one more call now, else how long until it may.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.limiter.check_key(&ip).map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets addresses whose budget is full again, so the table stays as
    /// small as the set of recently active clients.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}
