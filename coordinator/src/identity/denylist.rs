//! Serials of certificates that must no longer be accepted (removed nodes).
//!
//! An entry is needed only while its certificate could still pass the TLS
//! handshake, i.e. until its `not_after`; after that the handshake itself
//! refuses it and [`CertDenylist::prune`] drops the entry, so the list stays
//! as small as the number of nodes removed within one certificate lifetime.

use std::collections::HashMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Denied certificate serials (lowercase hex, as in
/// [`super::NodeIdentity::serial_hex`] and [`super::IssuedCert::serial_hex`]),
/// each with its certificate's end of validity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertDenylist {
    entries: HashMap<String, SystemTime>,
}

impl CertDenylist {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Denies a serial until `not_after`. Returns false if it was already
    /// denied (the later `not_after` is kept).
    pub fn deny(&mut self, serial_hex: &str, not_after: SystemTime) -> bool {
        let key = normalise(serial_hex);
        match self.entries.get_mut(&key) {
            Some(t) => {
                *t = (*t).max(not_after);
                false
            }
            None => {
                self.entries.insert(key, not_after);
                true
            }
        }
    }

    /// True if certificates with this serial must be refused.
    pub fn is_denied(&self, serial_hex: &str) -> bool {
        self.entries.contains_key(&normalise(serial_hex))
    }

    /// Drops the entries of certificates that expired before `now` and
    /// returns how many. A certificate is valid through its `not_after`
    /// second, so an entry is kept while `now <= not_after`.
    pub fn prune(&mut self, now: SystemTime) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, not_after| *not_after >= now);
        before - self.entries.len()
    }

    /// Entries, in no particular order, for persisting.
    pub fn iter(&self) -> impl Iterator<Item = (&str, SystemTime)> {
        self.entries.iter().map(|(s, t)| (s.as_str(), *t))
    }

    /// Number of denied serials.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is denied.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<'a> FromIterator<(&'a str, SystemTime)> for CertDenylist {
    fn from_iter<I: IntoIterator<Item = (&'a str, SystemTime)>>(iter: I) -> Self {
        let mut list = CertDenylist::new();
        for (serial, not_after) in iter {
            list.deny(serial, not_after);
        }
        list
    }
}

/// Serials compare as numbers: case and leading zero bytes do not matter.
fn normalise(serial_hex: &str) -> String {
    let lower = serial_hex.to_ascii_lowercase();
    let mut s = lower.as_str();
    while s.len() > 2 && s.starts_with("00") {
        s = &s[2..];
    }
    s.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn deny_check_and_prune_after_expiry() {
        let mut d = CertDenylist::new();
        assert!(d.deny("4a01", at(100)));
        assert!(d.deny("4b02", at(200)));
        assert!(d.is_denied("4a01") && d.is_denied("4B02") && d.is_denied("004a01"));
        assert!(!d.is_denied("4c03"));
        assert_eq!(d.prune(at(100)), 0, "still valid through its not_after");
        assert_eq!(d.prune(at(101)), 1);
        assert!(!d.is_denied("4a01") && d.is_denied("4b02"));
        assert_eq!(d.prune(at(1000)), 1);
        assert!(d.is_empty());
    }

    #[test]
    fn denying_twice_keeps_the_later_expiry() {
        let mut d = CertDenylist::new();
        assert!(d.deny("4a01", at(300)));
        assert!(!d.deny("4A01", at(100)));
        assert_eq!(d.prune(at(200)), 0);
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn round_trips_through_its_entries() {
        let mut d = CertDenylist::new();
        d.deny("4a01", at(100));
        d.deny("4b02", at(200));
        let back: CertDenylist = d.iter().collect();
        assert_eq!(back, d);
    }
}
