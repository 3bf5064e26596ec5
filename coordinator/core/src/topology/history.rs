//! The last aggregate snapshots, for the dashboards' trend charts.

use super::Aggregates;
use crate::domain::Millis;
use std::collections::VecDeque;

/// Snapshots kept by default (the brief's "last 100").
pub const HISTORY_CAPACITY: usize = 100;

/// Aggregates at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct AggregateSnapshot {
    /// When it was taken.
    pub taken_at: Millis,
    /// The topology revision it describes.
    pub revision: u64,
    /// The figures.
    pub aggregates: Aggregates,
}

/// A ring of the last `cap` snapshots.
#[derive(Debug)]
pub struct History {
    items: VecDeque<AggregateSnapshot>,
    cap: usize,
}

impl Default for History {
    fn default() -> Self {
        History::new(HISTORY_CAPACITY)
    }
}

impl History {
    /// An empty history keeping `cap` snapshots (at least one).
    pub fn new(cap: usize) -> History {
        let cap = cap.max(1);
        History { items: VecDeque::with_capacity(cap), cap }
    }

    /// Adds a snapshot, dropping the oldest when full.
    pub fn push(&mut self, s: AggregateSnapshot) {
        if self.items.len() == self.cap {
            self.items.pop_front();
        }
        self.items.push_back(s);
    }

    /// The last `n` snapshots (fewer if fewer are held), oldest first.
    pub fn last(&self, n: usize) -> impl ExactSizeIterator<Item = &AggregateSnapshot> + DoubleEndedIterator {
        self.items.range(self.items.len().saturating_sub(n)..)
    }

    /// The newest snapshot.
    pub fn latest(&self) -> Option<&AggregateSnapshot> {
        self.items.back()
    }

    /// Number held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True if none is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(i: u64) -> AggregateSnapshot {
        AggregateSnapshot { taken_at: i * 1_000, revision: i, aggregates: Aggregates::default() }
    }

    #[test]
    fn keeps_the_last_hundred_oldest_first() {
        let mut h = History::default();
        for i in 1..=250 {
            h.push(snap(i));
        }
        assert_eq!(h.len(), 100);
        let all: Vec<u64> = h.last(1_000).map(|s| s.revision).collect();
        assert_eq!(all, (151..=250).collect::<Vec<_>>());
        let three: Vec<u64> = h.last(3).map(|s| s.revision).collect();
        assert_eq!(three, [248, 249, 250]);
        assert_eq!(h.latest().map(|s| s.taken_at), Some(250_000));
        assert_eq!(h.last(0).len(), 0);
    }

    #[test]
    fn a_short_history_gives_what_it_has() {
        let mut h = History::new(100);
        assert!(h.is_empty());
        h.push(snap(1));
        h.push(snap(2));
        assert_eq!(h.last(5).map(|s| s.revision).collect::<Vec<_>>(), [1, 2]);
    }
}
