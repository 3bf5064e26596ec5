//! The revisioned change log: every topology change gets the next revision,
//! and a watcher that fell behind resumes from the last revision it saw, or
//! is told explicitly that it must resync ([`TooOld`]). Nothing is skipped
//! silently.

use super::{Aggregates, TopoNode};
use crate::domain::NodeId;
use std::collections::VecDeque;

/// One change of the topology.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A node appeared or its status (anything but load/RTT) changed.
    NodeUpserted(TopoNode),
    /// Only the node's load or RTT changed.
    NodeMetrics(TopoNode),
    /// A node left the fleet.
    NodeRemoved(NodeId),
    /// New fleet aggregates.
    Aggregates(Aggregates),
}

/// A change with its revision.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Revision, from 1, without gaps.
    pub revision: u64,
    /// What changed.
    pub change: Change,
}

/// The events after a revision are no longer (or were never) in the log: the
/// watcher must start again from a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "revision {requested} cannot be resumed: the log holds revisions {oldest} to {current}; resync from a snapshot"
)]
pub struct TooOld {
    /// The revision asked for.
    pub requested: u64,
    /// The oldest revision still held (current + 1 when none is held).
    pub oldest: u64,
    /// The current revision.
    pub current: u64,
}

/// The last `retained` events.
#[derive(Debug)]
pub struct TopologyLog {
    events: VecDeque<Event>,
    retained: usize,
    revision: u64,
}

impl TopologyLog {
    /// An empty log at revision 0 that keeps the last `retained` events.
    pub fn new(retained: usize) -> TopologyLog {
        TopologyLog { events: VecDeque::with_capacity(retained.min(1 << 16)), retained, revision: 0 }
    }

    /// The revision of the last change (0 before any).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Number of events held.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True if no event is held.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Records a change; returns its revision.
    pub fn append(&mut self, change: Change) -> u64 {
        self.revision += 1;
        if self.retained == 0 {
            return self.revision;
        }
        if self.events.len() == self.retained {
            self.events.pop_front();
        }
        self.events.push_back(Event { revision: self.revision, change });
        self.revision
    }

    /// Every event after revision `rev`, oldest first. `rev == revision()`
    /// gives nothing; `rev` ahead of the log (a revision of another run) or
    /// behind what is retained is [`TooOld`].
    pub fn since(&self, rev: u64) -> Result<std::collections::vec_deque::Iter<'_, Event>, TooOld> {
        let oldest = self.events.front().map_or(self.revision + 1, |e| e.revision);
        let too_old = TooOld { requested: rev, oldest, current: self.revision };
        if rev > self.revision {
            return Err(too_old);
        }
        if rev == self.revision {
            return Ok(self.events.range(self.events.len()..));
        }
        if rev + 1 < oldest {
            return Err(too_old);
        }
        Ok(self.events.range((rev + 1 - oldest) as usize..))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn removed(i: u64) -> Change {
        Change::NodeRemoved(format!("n{i}").into())
    }

    fn revs(log: &TopologyLog, rev: u64) -> Result<Vec<u64>, TooOld> {
        log.since(rev).map(|it| it.map(|e| e.revision).collect())
    }

    #[test]
    fn revisions_are_monotonic_from_one() {
        let mut log = TopologyLog::new(3);
        assert_eq!(log.revision(), 0);
        let r: Vec<u64> = (0..10).map(|i| log.append(removed(i))).collect();
        assert_eq!(r, (1..=10).collect::<Vec<_>>());
        assert_eq!((log.revision(), log.len()), (10, 3));
    }

    #[test]
    fn since_returns_exactly_the_missing_events() {
        let mut log = TopologyLog::new(10);
        for i in 0..5 {
            log.append(removed(i));
        }
        assert_eq!(revs(&log, 0), Ok(vec![1, 2, 3, 4, 5]));
        assert_eq!(revs(&log, 3), Ok(vec![4, 5]));
        assert_eq!(revs(&log, 5), Ok(vec![]));
        let e: Vec<_> = log.since(4).unwrap().cloned().collect();
        assert_eq!(e, vec![Event { revision: 5, change: removed(4) }]);
    }

    #[test]
    fn trimmed_or_foreign_revisions_are_too_old() {
        let mut log = TopologyLog::new(3);
        for i in 0..6 {
            log.append(removed(i));
        }
        // Holds 4, 5, 6.
        assert_eq!(revs(&log, 3), Ok(vec![4, 5, 6]));
        assert_eq!(revs(&log, 2), Err(TooOld { requested: 2, oldest: 4, current: 6 }));
        assert!(revs(&log, 0).is_err());
        assert!(revs(&log, 7).is_err(), "a revision from another run");
        assert_eq!(revs(&log, 6), Ok(vec![]));
        assert!(TopologyLog::new(3).since(1).is_err());
        assert_eq!(revs(&TopologyLog::new(3), 0), Ok(vec![]));
    }

    #[test]
    fn a_log_that_retains_nothing_only_serves_the_current_revision() {
        let mut log = TopologyLog::new(0);
        log.append(removed(0));
        log.append(removed(1));
        assert_eq!(revs(&log, 2), Ok(vec![]));
        assert!(revs(&log, 1).is_err());
    }
}
