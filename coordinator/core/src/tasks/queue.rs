//! One FIFO queue per SLA tier. Placement serves them from platinum down.

use crate::domain::{SlaTier, TaskId};
use std::collections::VecDeque;

/// Queued task ids by tier.
#[derive(Default, Debug)]
pub struct TierQueues {
    by_tier: [VecDeque<TaskId>; 4],
}

impl TierQueues {
    /// Appends a task to its tier's queue.
    pub fn push_back(&mut self, tier: SlaTier, id: TaskId) {
        self.by_tier[tier.index()].push_back(id);
    }

    /// Puts a task at the head of its tier's queue (retries go first).
    pub fn push_front(&mut self, tier: SlaTier, id: TaskId) {
        self.by_tier[tier.index()].push_front(id);
    }

    /// Takes the head of a tier's queue.
    pub fn pop_front(&mut self, tier: SlaTier) -> Option<TaskId> {
        self.by_tier[tier.index()].pop_front()
    }

    /// Replaces a tier's queue (after a placement round).
    pub fn replace(&mut self, tier: SlaTier, q: VecDeque<TaskId>) {
        let old = std::mem::replace(&mut self.by_tier[tier.index()], q);
        // Anything pushed during the round (none today) keeps its place after.
        self.by_tier[tier.index()].extend(old);
    }

    /// Lengths, bronze first (entries of tasks that left the queue may linger
    /// until the next round drops them).
    pub fn lens(&self) -> [usize; 4] {
        [0, 1, 2, 3].map(|i| self.by_tier[i].len())
    }
}
