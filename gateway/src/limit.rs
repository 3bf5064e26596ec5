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

fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

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
    /// IPv6 clients are limited per /64, the block one subscriber usually
    /// gets (a client could otherwise rotate addresses within it).
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.limiter.check_key(&bucket(ip)).map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets addresses whose budget is full again, so the table stays as
    /// small as the set of recently active clients.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_a_budget_per_64_and_mapped_v4_is_v4() {
        let limits = IpLimits::new(1, 2);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(limits.check(a).is_ok() && limits.check(b).is_ok());
        assert!(limits.check(a).is_err(), "same /64, budget spent");
        assert!(limits.check(other).is_ok(), "another /64 has its own");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(bucket(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
