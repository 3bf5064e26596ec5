//! The failure detector: a pure state machine fed with session and heartbeat
//! events and the current time, answering with liveness transitions.
//!
//! Rules, per node:
//! - A new node, or one in [`Liveness::Unknown`], is Healthy as soon as its
//!   session opens.
//! - A Healthy node is Suspect once it has been silent for `suspect_after_ms`,
//!   or at once when its session closes (no tick needed: the engine learns
//!   about a reset session within one event).
//! - A Suspect node is Offline once `offline_grace_ms` have passed since its
//!   last heartbeat (or since the close, when a healthy session closed).
//! - Hysteresis: a Suspect or Offline node whose session (re)opens is Suspect
//!   ("recovering") until it has sent `recovery_heartbeats` consecutive
//!   heartbeats on an open session; a gap of `suspect_after_ms` restarts the count.
//! - A node known from the store after a coordinator restart is Unknown, and
//!   Offline if no session opens within `restart_grace_ms`.
//! - Flapping: a node that went from Healthy to Suspect `flap_threshold` times
//!   within `flap_window_ms` is flapping until `flap_quiet_ms` pass without a
//!   new suspicion.
//!
//! `tick` costs what is due, not the fleet's size: healthy nodes sit in a
//! list ordered by last heartbeat (a heartbeat moves its node to the tail in
//! O(1)), so the silent ones are at its head; the few other deadlines
//! (offline grace, restart grace, end of flapping) are in an ordered set.
//!
//! What this module is not: it reads no clock and keeps no node facts; the
//! engine applies the transitions to the node table.

use crate::domain::{Millis, NodeId};
use crate::registry::Liveness;
use std::collections::{BTreeSet, VecDeque};

/// Tuning of the failure detector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LivenessConfig {
    /// How often agents heartbeat.
    pub heartbeat_interval_ms: u64,
    /// Silence after which a healthy node is suspect.
    pub suspect_after_ms: u64,
    /// Silence (or time since the close) after which a suspect node is offline.
    pub offline_grace_ms: u64,
    /// Consecutive heartbeats a suspect node must send to be healthy again.
    pub recovery_heartbeats: u32,
    /// Suspicions within `flap_window_ms` that make a node flapping.
    pub flap_threshold: u32,
    /// Window in which suspicions are counted.
    pub flap_window_ms: u64,
    /// Time without suspicion after which flapping clears.
    pub flap_quiet_ms: u64,
    /// Time a node restored after a coordinator restart has to reconnect.
    pub restart_grace_ms: u64,
}

impl Default for LivenessConfig {
    fn default() -> Self {
        let interval = 1_000;
        LivenessConfig {
            heartbeat_interval_ms: interval,
            suspect_after_ms: 2 * interval,
            offline_grace_ms: 3 * interval,
            recovery_heartbeats: 3,
            flap_threshold: 3,
            flap_window_ms: 60_000,
            flap_quiet_ms: 60_000,
            restart_grace_ms: 10_000,
        }
    }
}

impl LivenessConfig {
    /// Checks that the settings make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.heartbeat_interval_ms == 0 {
            return Err("heartbeat_interval_ms must be greater than 0".into());
        }
        if self.suspect_after_ms <= self.heartbeat_interval_ms {
            return Err(format!(
                "suspect_after_ms ({}) must be greater than heartbeat_interval_ms ({}), or every node is suspected between two heartbeats",
                self.suspect_after_ms, self.heartbeat_interval_ms
            ));
        }
        if self.offline_grace_ms <= self.suspect_after_ms {
            return Err(format!(
                "offline_grace_ms ({}) must be greater than suspect_after_ms ({})",
                self.offline_grace_ms, self.suspect_after_ms
            ));
        }
        if self.recovery_heartbeats == 0 {
            return Err("recovery_heartbeats must be at least 1".into());
        }
        if self.flap_threshold < 2 {
            return Err("flap_threshold must be at least 2".into());
        }
        if self.flap_window_ms == 0 || self.flap_quiet_ms == 0 {
            return Err("flap_window_ms and flap_quiet_ms must be greater than 0".into());
        }
        Ok(())
    }
}

/// A change of a node's (liveness, flapping).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The node.
    pub node: NodeId,
    /// Its liveness now.
    pub liveness: Liveness,
    /// Whether it is flapping now.
    pub flapping: bool,
    /// Why, in a few words (for logs and events).
    pub reason: &'static str,
}

type Slot = u32;
const NIL: Slot = Slot::MAX;

#[derive(Debug)]
struct NodeState {
    id: NodeId,
    liveness: Liveness,
    flapping: bool,
    session_open: bool,
    /// Last heartbeat, or session open.
    last_heartbeat: Millis,
    /// Offline grace counts from here while Suspect.
    offline_base: Millis,
    /// Consecutive heartbeats while recovering.
    recovery: u32,
    /// When a restored node was restored (until its first session).
    restored_at: Option<Millis>,
    /// Recent suspicions (at most `flap_threshold`), oldest first.
    suspicions: VecDeque<Millis>,
    /// The node's entry in the timer set, if armed.
    timer: Option<Millis>,
    /// Links of the healthy list (ordered by last heartbeat).
    prev: Slot,
    next: Slot,
    in_list: bool,
}

impl NodeState {
    fn new(id: NodeId, liveness: Liveness, now: Millis) -> Self {
        NodeState {
            id,
            liveness,
            flapping: false,
            session_open: false,
            last_heartbeat: now,
            offline_base: now,
            recovery: 0,
            restored_at: None,
            suspicions: VecDeque::new(),
            timer: None,
            prev: NIL,
            next: NIL,
            in_list: false,
        }
    }

    fn key(&self) -> (Liveness, bool) {
        (self.liveness, self.flapping)
    }

    /// Healthy → Suspect, counting the suspicion for flap detection.
    fn suspect(&mut self, cfg: &LivenessConfig, now: Millis, base: Millis) {
        self.liveness = Liveness::Suspect;
        self.recovery = 0;
        self.offline_base = base;
        while self.suspicions.front().is_some_and(|t| now.saturating_sub(*t) > cfg.flap_window_ms) {
            self.suspicions.pop_front();
        }
        self.suspicions.push_back(now);
        while self.suspicions.len() > cfg.flap_threshold as usize {
            self.suspicions.pop_front();
        }
        if self.suspicions.len() >= cfg.flap_threshold as usize {
            self.flapping = true;
        }
    }

    /// Applies the time-driven rules at `now`; returns the reason of the last one applied.
    fn advance(&mut self, cfg: &LivenessConfig, now: Millis) -> Option<&'static str> {
        let mut reason = None;
        if self.liveness == Liveness::Unknown
            && !self.session_open
            && let Some(at) = self.restored_at
            && now >= at.saturating_add(cfg.restart_grace_ms)
        {
            self.liveness = Liveness::Offline;
            self.restored_at = None;
            reason = Some("no session after restart");
        }
        if self.liveness == Liveness::Healthy && now >= self.last_heartbeat.saturating_add(cfg.suspect_after_ms) {
            let base = self.last_heartbeat;
            self.suspect(cfg, now, base);
            reason = Some("heartbeats missed");
        }
        if self.liveness == Liveness::Suspect && now >= self.offline_base.saturating_add(cfg.offline_grace_ms) {
            self.liveness = Liveness::Offline;
            self.recovery = 0;
            reason = Some("offline grace expired");
        }
        if self.flapping && self.suspicions.back().is_none_or(|t| now >= t.saturating_add(cfg.flap_quiet_ms)) {
            self.flapping = false;
            self.suspicions.clear();
            reason.get_or_insert("flapping cleared");
        }
        reason
    }

    /// When [`NodeState::advance`] may next change something, apart from the
    /// silence of a healthy node (which the healthy list tracks).
    fn timer_deadline(&self, cfg: &LivenessConfig) -> Option<Millis> {
        let liveness = match self.liveness {
            Liveness::Unknown if !self.session_open => {
                self.restored_at.map(|at| at.saturating_add(cfg.restart_grace_ms))
            }
            Liveness::Suspect => Some(self.offline_base.saturating_add(cfg.offline_grace_ms)),
            Liveness::Unknown | Liveness::Healthy | Liveness::Offline => None,
        };
        let flap = self.flapping.then(|| self.suspicions.back().map_or(0, |t| t.saturating_add(cfg.flap_quiet_ms)));
        match (liveness, flap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The failure detector of the whole fleet.
///
/// Two structures keep `tick` proportional to the work due rather than to the
/// fleet: healthy nodes sit in an intrusive list ordered by last heartbeat (a
/// heartbeat moves its node to the tail in O(1)), so the silent ones are
/// always at the head; every other deadline (offline grace, restart grace,
/// end of flapping) is in a small ordered set holding at most one entry per
/// node. `now` is expected not to go backwards; an earlier `now` counts as
/// the latest one seen.
#[derive(Debug)]
pub struct LivenessDetector {
    cfg: LivenessConfig,
    slots: Vec<Option<NodeState>>,
    free: Vec<Slot>,
    by_id: crate::domain::IdMap<Slot>,
    /// Healthy nodes, oldest heartbeat first.
    head: Slot,
    tail: Slot,
    /// (deadline, node) of the nodes with a non-healthy deadline.
    timers: BTreeSet<(Millis, Slot)>,
    /// The latest `now` seen.
    latest: Millis,
}

impl LivenessDetector {
    /// A detector with no nodes.
    pub fn new(cfg: LivenessConfig) -> Self {
        LivenessDetector {
            cfg,
            slots: Vec::new(),
            free: Vec::new(),
            by_id: Default::default(),
            head: NIL,
            tail: NIL,
            timers: BTreeSet::new(),
            latest: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LivenessConfig {
        &self.cfg
    }

    /// Number of nodes tracked.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True if no node is tracked.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The (liveness, flapping) of a node.
    pub fn get(&self, id: &str) -> Option<(Liveness, bool)> {
        let slot = *self.by_id.get(id)?;
        self.state(slot).map(NodeState::key)
    }

    /// A node known from the store after a coordinator restart: Unknown, and
    /// Offline if no session opens within `restart_grace_ms`. No effect on a
    /// node already tracked.
    pub fn restore(&mut self, id: NodeId, now: Millis) {
        let now = self.clock(now);
        if self.by_id.contains_key(&id) {
            return;
        }
        let slot = self.insert(id, now);
        let st = self.st(slot);
        st.restored_at = Some(now);
        self.sync(slot);
    }

    /// A session opened. A new or Unknown node is Healthy at once; a Suspect
    /// or Offline node is Suspect ("recovering") until it has heartbeated
    /// steadily; a Healthy one stays Healthy.
    pub fn session_opened(&mut self, id: NodeId, now: Millis) -> Option<Transition> {
        let now = self.clock(now);
        let slot = match self.by_id.get(&id) {
            Some(s) => *s,
            None => self.insert(id, now),
        };
        let cfg = &self.cfg;
        let st = self.slots[slot as usize].as_mut().expect("slot is occupied");
        let before = st.key();
        st.session_open = true;
        st.restored_at = None;
        st.last_heartbeat = now;
        st.recovery = 0;
        let reason = match st.liveness {
            Liveness::Unknown => {
                st.liveness = Liveness::Healthy;
                "session opened"
            }
            Liveness::Healthy => "session reopened",
            Liveness::Suspect | Liveness::Offline => {
                st.liveness = Liveness::Suspect;
                st.offline_base = now;
                "recovering"
            }
        };
        // A node whose `flap_quiet_ms` passed while we were not looking.
        let _ = st.advance(cfg, now);
        // Its last heartbeat moved: `sync` re-links it at the tail.
        self.unlink(slot);
        self.finish(slot, before, reason)
    }

    /// A heartbeat arrived on the node's session.
    pub fn heartbeat(&mut self, id: &str, now: Millis) -> Option<Transition> {
        let now = self.clock(now);
        let slot = *self.by_id.get(id)?;
        let cfg = &self.cfg;
        let st = self.slots[slot as usize].as_mut()?;
        if !st.session_open {
            // Heartbeats only count on an open session; a stray one from a
            // closed session proves nothing.
            return None;
        }
        let before = st.key();
        let gap = now - st.last_heartbeat;
        st.last_heartbeat = now;
        if st.liveness == Liveness::Healthy && st.in_list {
            // The common case: only the node's place in the healthy list moves.
            self.move_to_tail(slot);
            return None;
        }
        let mut reason = "recovering";
        if matches!(st.liveness, Liveness::Suspect | Liveness::Offline) {
            // A silence as long as the one that makes a node suspect
            // breaks the run: steady means consecutive.
            st.recovery = if gap >= cfg.suspect_after_ms { 1 } else { st.recovery + 1 };
            st.offline_base = now;
            st.liveness = Liveness::Suspect;
            if st.recovery >= cfg.recovery_heartbeats {
                st.liveness = Liveness::Healthy;
                st.recovery = 0;
                reason = "recovered";
            }
        }
        if let Some(r) = st.advance(cfg, now) {
            reason = r;
        }
        self.finish(slot, before, reason)
    }

    /// The node's session closed: a Healthy node is Suspect at once.
    pub fn session_closed(&mut self, id: &str, now: Millis) -> Option<Transition> {
        let now = self.clock(now);
        let slot = *self.by_id.get(id)?;
        let cfg = &self.cfg;
        let st = self.slots[slot as usize].as_mut()?;
        let before = st.key();
        st.session_open = false;
        st.recovery = 0;
        let mut reason = "session closed";
        if st.liveness == Liveness::Healthy {
            st.suspect(cfg, now, now);
        }
        if let Some(r) = st.advance(cfg, now) {
            reason = r;
        }
        self.finish(slot, before, reason)
    }

    /// Applies the time-driven rules to the nodes whose deadline has come.
    pub fn tick(&mut self, now: Millis) -> Vec<Transition> {
        let now = self.clock(now);
        let mut out = Vec::new();
        // Silent healthy nodes: the head of the list.
        while self.head != NIL {
            let slot = self.head;
            let st = self.slots[slot as usize].as_mut().expect("listed slot is occupied");
            if now < st.last_heartbeat.saturating_add(self.cfg.suspect_after_ms) {
                break;
            }
            self.process(slot, now, &mut out);
        }
        // Everything else.
        while let Some(&(at, slot)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            self.st(slot).timer = None;
            self.process(slot, now, &mut out);
        }
        out
    }

    /// Stops tracking a node (removed from the fleet).
    pub fn forget(&mut self, id: &str) {
        let Some(slot) = self.by_id.remove(id) else {
            return;
        };
        self.unlink(slot);
        if let Some(at) = self.st(slot).timer {
            self.timers.remove(&(at, slot));
        }
        self.slots[slot as usize] = None;
        self.free.push(slot);
    }

    fn clock(&mut self, now: Millis) -> Millis {
        self.latest = self.latest.max(now);
        self.latest
    }

    fn state(&self, slot: Slot) -> Option<&NodeState> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    fn st(&mut self, slot: Slot) -> &mut NodeState {
        self.slots[slot as usize].as_mut().expect("slot from by_id is occupied")
    }

    fn insert(&mut self, id: NodeId, now: Millis) -> Slot {
        let st = NodeState::new(id.clone(), Liveness::Unknown, now);
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(st);
                s
            }
            None => {
                self.slots.push(Some(st));
                (self.slots.len() - 1) as Slot
            }
        };
        self.by_id.insert(id, slot);
        slot
    }

    fn process(&mut self, slot: Slot, now: Millis, out: &mut Vec<Transition>) {
        let cfg = &self.cfg;
        let st = self.slots[slot as usize].as_mut().expect("slot is occupied");
        let before = st.key();
        let reason = st.advance(cfg, now).unwrap_or("tick");
        out.extend(self.finish(slot, before, reason));
    }

    /// After a change: puts the node where its state says (healthy list,
    /// timer) and returns the transition, if (liveness, flapping) changed.
    fn finish(&mut self, slot: Slot, before: (Liveness, bool), reason: &'static str) -> Option<Transition> {
        self.sync(slot);
        let st = self.state(slot)?;
        (st.key() != before).then(|| Transition {
            node: st.id.clone(),
            liveness: st.liveness,
            flapping: st.flapping,
            reason,
        })
    }

    /// Restores the invariants: a node is in the healthy list iff it is
    /// Healthy, and its timer entry is
    /// no later than its next non-healthy deadline.
    fn sync(&mut self, slot: Slot) {
        let cfg = &self.cfg;
        let st = self.slots[slot as usize].as_mut().expect("slot is occupied");
        let healthy = st.liveness == Liveness::Healthy;
        let want = st.timer_deadline(cfg);
        let armed = st.timer;
        if healthy && !st.in_list {
            // Just became healthy, or just heartbeated (the caller unlinked
            // it): its last heartbeat is the latest, so the tail keeps order.
            self.move_to_tail(slot);
        } else if !healthy {
            self.unlink(slot);
        }
        match (armed, want) {
            // Armed early enough: it fires, finds nothing due, and re-arms.
            (Some(a), Some(w)) if a <= w => {}
            (_, None) => {}
            (a, Some(w)) => {
                if let Some(a) = a {
                    self.timers.remove(&(a, slot));
                }
                self.timers.insert((w, slot));
                self.st(slot).timer = Some(w);
            }
        }
    }

    fn unlink(&mut self, slot: Slot) {
        let st = self.st(slot);
        if !st.in_list {
            return;
        }
        let (prev, next) = (st.prev, st.next);
        st.in_list = false;
        st.prev = NIL;
        st.next = NIL;
        if prev == NIL {
            self.head = next;
        } else {
            self.st(prev).next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.st(next).prev = prev;
        }
    }

    fn move_to_tail(&mut self, slot: Slot) {
        if self.tail == slot {
            return;
        }
        self.unlink(slot);
        let tail = self.tail;
        let st = self.st(slot);
        st.in_list = true;
        st.prev = tail;
        st.next = NIL;
        if tail == NIL {
            self.head = slot;
        } else {
            self.st(tail).next = slot;
        }
        self.tail = slot;
    }

    /// Checks the structural invariants (tests only).
    #[cfg(test)]
    fn check(&self) {
        let mut listed = 0;
        let mut cur = self.head;
        let mut last = 0;
        while cur != NIL {
            let st = self.state(cur).unwrap();
            assert_eq!(st.liveness, Liveness::Healthy, "{}", st.id);
            assert!(st.last_heartbeat >= last, "healthy list out of order at {}", st.id);
            last = st.last_heartbeat;
            listed += 1;
            cur = st.next;
        }
        let healthy = self.slots.iter().flatten().filter(|s| s.liveness == Liveness::Healthy).count();
        assert_eq!(listed, healthy);
        for (slot, st) in self.slots.iter().enumerate() {
            let Some(st) = st else { continue };
            if let Some(w) = st.timer_deadline(&self.cfg) {
                let a = st.timer.expect("a node with a deadline is armed");
                assert!(a <= w && self.timers.contains(&(a, slot as Slot)));
            }
        }
        assert!(self.timers.iter().all(|(a, s)| self.state(*s).unwrap().timer == Some(*a)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(s: &str) -> NodeId {
        NodeId::from(s)
    }

    fn det() -> LivenessDetector {
        LivenessDetector::new(LivenessConfig::default())
    }

    /// Heartbeats `n` at every interval from `from` (exclusive) to `to` (inclusive), ticking each time.
    fn steady(d: &mut LivenessDetector, n: &str, from: Millis, to: Millis) -> Vec<Transition> {
        let mut out = Vec::new();
        let mut t = from;
        while t + 1_000 <= to {
            t += 1_000;
            out.extend(d.tick(t));
            out.extend(d.heartbeat(n, t));
        }
        out
    }

    #[test]
    fn default_config_is_valid_and_bad_ones_are_refused() {
        assert_eq!(LivenessConfig::default().validate(), Ok(()));
        let bad = LivenessConfig { offline_grace_ms: 2_000, ..Default::default() };
        assert!(bad.validate().unwrap_err().contains("offline_grace_ms"));
        let bad = LivenessConfig { heartbeat_interval_ms: 0, ..Default::default() };
        assert!(bad.validate().is_err());
        let bad = LivenessConfig { recovery_heartbeats: 0, ..Default::default() };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn new_node_is_healthy_when_its_session_opens() {
        let mut d = det();
        let t = d.session_opened(id("a"), 1_000).unwrap();
        assert_eq!((t.liveness, t.flapping, t.reason), (Liveness::Healthy, false, "session opened"));
        assert_eq!(d.get("a"), Some((Liveness::Healthy, false)));
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn silence_makes_a_node_suspect_then_offline() {
        let mut d = det();
        d.session_opened(id("a"), 0);
        d.heartbeat("a", 1_000);
        assert!(d.tick(2_999).is_empty(), "silent 1999 ms < suspect_after");
        let t = d.tick(3_000);
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].liveness, t[0].reason), (Liveness::Suspect, "heartbeats missed"));
        // Offline grace counts from the last heartbeat (1000 + 3000).
        assert!(d.tick(3_999).is_empty());
        let t = d.tick(4_000);
        assert_eq!((t[0].liveness, t[0].reason), (Liveness::Offline, "offline grace expired"));
        assert!(d.tick(100_000).is_empty(), "no transition without a change");
    }

    #[test]
    fn a_late_tick_goes_straight_to_offline() {
        let mut d = det();
        d.session_opened(id("a"), 0);
        let t = d.tick(10_000);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].liveness, Liveness::Offline);
    }

    #[test]
    fn closed_session_is_suspect_at_once_and_offline_after_grace_from_the_close() {
        let mut d = det();
        d.session_opened(id("a"), 0);
        d.heartbeat("a", 1_000);
        let t = d.session_closed("a", 1_500).unwrap();
        assert_eq!((t.liveness, t.reason), (Liveness::Suspect, "session closed"));
        assert!(d.tick(4_499).is_empty(), "grace counts from the close, not the heartbeat");
        assert_eq!(d.tick(4_500)[0].liveness, Liveness::Offline);
        assert_eq!(d.session_closed("a", 5_000), None);
    }

    #[test]
    fn closing_an_already_suspect_node_does_not_extend_its_grace() {
        let mut d = det();
        d.session_opened(id("a"), 0);
        assert_eq!(d.tick(2_000)[0].liveness, Liveness::Suspect);
        assert_eq!(d.session_closed("a", 2_500), None);
        assert_eq!(d.tick(3_000)[0].liveness, Liveness::Offline);
    }

    #[test]
    fn suspect_node_needs_consecutive_heartbeats_to_recover() {
        let mut d = det();
        d.session_opened(id("a"), 0);
        d.session_closed("a", 100);
        assert_eq!(d.session_opened(id("a"), 200), None, "stays suspect while recovering");
        assert_eq!(d.get("a"), Some((Liveness::Suspect, false)));
        assert_eq!(d.heartbeat("a", 1_200), None);
        assert_eq!(d.heartbeat("a", 2_200), None);
        let t = d.heartbeat("a", 3_200).unwrap();
        assert_eq!((t.liveness, t.reason), (Liveness::Healthy, "recovered"));
    }

    #[test]
    fn a_gap_restarts_the_recovery_count() {
        let mut d = det();
        d.session_opened(id("a"), 0);
        d.session_closed("a", 0);
        d.session_opened(id("a"), 100);
        d.heartbeat("a", 1_000);
        d.heartbeat("a", 2_000);
        // 2.5 s of silence (≥ suspect_after) breaks the run, but not the grace (from 2000).
        assert_eq!(d.heartbeat("a", 4_500), None);
        assert_eq!(d.heartbeat("a", 5_500), None);
        assert_eq!(d.heartbeat("a", 6_500).unwrap().liveness, Liveness::Healthy);
    }

    #[test]
    fn heartbeats_on_a_closed_session_do_not_count() {
        let mut d = det();
        d.session_opened(id("a"), 0);
        d.session_closed("a", 10);
        for t in [500, 1_000, 1_500, 2_000] {
            assert_eq!(d.heartbeat("a", t), None);
        }
        assert_eq!(d.get("a"), Some((Liveness::Suspect, false)));
        assert_eq!(d.heartbeat("nobody", 0), None);
    }

    #[test]
    fn offline_node_recovers_through_suspect() {
        let mut d = det();
        d.session_opened(id("a"), 0);
        d.tick(10_000);
        assert_eq!(d.get("a"), Some((Liveness::Offline, false)));
        let t = d.session_opened(id("a"), 20_000).unwrap();
        assert_eq!((t.liveness, t.reason), (Liveness::Suspect, "recovering"));
        let t = steady(&mut d, "a", 20_000, 23_000);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].liveness, Liveness::Healthy);
    }

    #[test]
    fn recovering_node_that_goes_silent_is_offline_again() {
        let mut d = det();
        d.session_opened(id("a"), 0);
        d.tick(10_000);
        d.session_opened(id("a"), 20_000);
        d.heartbeat("a", 21_000);
        assert!(d.tick(23_999).is_empty());
        assert_eq!(d.tick(24_000)[0].liveness, Liveness::Offline);
    }

    #[test]
    fn restored_node_is_unknown_then_offline_without_a_session() {
        let mut d = det();
        d.restore(id("a"), 1_000);
        d.restore(id("b"), 1_000);
        assert_eq!(d.get("a"), Some((Liveness::Unknown, false)));
        assert_eq!(d.session_opened(id("b"), 5_000).unwrap().liveness, Liveness::Healthy);
        d.heartbeat("b", 6_000);
        assert!(d.tick(7_000).is_empty());
        d.heartbeat("b", 8_000);
        d.heartbeat("b", 10_000);
        assert!(d.tick(10_999).is_empty());
        let t = d.tick(11_000);
        assert_eq!(t.len(), 1);
        assert_eq!((&*t[0].node, t[0].liveness, t[0].reason), ("a", Liveness::Offline, "no session after restart"));
        assert_eq!(d.get("b"), Some((Liveness::Healthy, false)));
    }

    #[test]
    fn restore_does_not_reset_a_tracked_node() {
        let mut d = det();
        d.session_opened(id("a"), 0);
        d.restore(id("a"), 10);
        assert_eq!(d.get("a"), Some((Liveness::Healthy, false)));
    }

    /// Drives `a` through one healthy → suspect → healthy cycle starting at `t`; returns the suspicion's transition.
    fn flap(d: &mut LivenessDetector, t: Millis) -> Transition {
        let s = d.session_closed("a", t).expect("healthy node becomes suspect");
        d.session_opened(id("a"), t + 10);
        for i in 1..=3 {
            d.heartbeat("a", t + 10 + i * 1_000);
        }
        assert_eq!(d.get("a").unwrap().0, Liveness::Healthy);
        s
    }

    #[test]
    fn repeated_suspicion_marks_flapping_until_quiet() {
        let mut d = det();
        d.session_opened(id("a"), 0);
        assert!(!flap(&mut d, 1_000).flapping);
        assert!(!flap(&mut d, 10_000).flapping);
        let t = flap(&mut d, 20_000);
        assert!(t.flapping, "third suspicion within 60 s");
        assert_eq!(d.get("a"), Some((Liveness::Healthy, true)), "flapping outlives recovery");
        // Quiet from the last suspicion (20_000): keep it healthy meanwhile.
        let t = steady(&mut d, "a", 23_010, 79_010);
        assert!(t.is_empty(), "{t:?}");
        let t = steady(&mut d, "a", 79_010, 81_010);
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].liveness, t[0].flapping, t[0].reason), (Liveness::Healthy, false, "flapping cleared"));
    }

    #[test]
    fn suspicions_spread_beyond_the_window_do_not_flap() {
        let mut d = det();
        d.session_opened(id("a"), 0);
        flap(&mut d, 1_000);
        flap(&mut d, 40_000);
        let t = flap(&mut d, 80_000);
        assert!(!t.flapping, "1 s and 80 s are 79 s apart");
        assert!(flap(&mut d, 100_000).flapping);
    }

    #[test]
    fn flapping_clears_on_an_offline_node_too() {
        let mut d = det();
        d.session_opened(id("a"), 0);
        flap(&mut d, 1_000);
        flap(&mut d, 10_000);
        flap(&mut d, 20_000);
        // Silent from 23_010: suspected again at 30_000 (a new suspicion), offline at once.
        let mut t = d.tick(30_000);
        assert_eq!(t.pop().map(|t| (t.liveness, t.flapping)), Some((Liveness::Offline, true)));
        assert!(d.tick(89_999).is_empty());
        let t = d.tick(90_000);
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].liveness, t[0].flapping), (Liveness::Offline, false));
    }

    #[test]
    fn forget_removes_node_and_its_timer() {
        let mut d = det();
        d.session_opened(id("a"), 0);
        d.forget("a");
        assert_eq!(d.get("a"), None);
        assert!(d.is_empty());
        assert!(d.tick(100_000).is_empty());
        assert!(d.timers.is_empty() && d.head == NIL);
        d.check();
    }

    #[test]
    fn silent_nodes_are_found_without_visiting_the_others() {
        let mut d = det();
        for i in 0..1_000 {
            d.session_opened(id(&format!("n{i}")), i);
        }
        for i in 0..1_000 {
            d.heartbeat(&format!("n{i}"), 1_500 + i);
        }
        d.check();
        assert!(d.timers.is_empty(), "healthy nodes need no timer");
        assert!(d.tick(3_499).is_empty());
        let t = d.tick(3_509);
        let names: Vec<&str> = t.iter().map(|t| &*t.node).collect();
        assert_eq!(names, (0..10).map(|i| format!("n{i}")).collect::<Vec<_>>());
        assert_eq!(d.timers.len(), 10, "the suspects now wait for their offline grace");
        d.check();
    }

    #[derive(Clone, Debug)]
    enum Ev {
        Open(usize),
        Close(usize),
        Beat(usize),
        Tick,
        Wait(u64),
    }

    fn ev() -> impl Strategy<Value = Ev> {
        prop_oneof![
            1 => (0..3usize).prop_map(Ev::Open),
            1 => (0..3usize).prop_map(Ev::Close),
            6 => (0..3usize).prop_map(Ev::Beat),
            3 => Just(Ev::Tick),
            4 => (0..4_000u64).prop_map(Ev::Wait),
        ]
    }

    proptest! {
        #[test]
        fn suspect_never_turns_healthy_without_steady_heartbeats(evs in prop::collection::vec(ev(), 1..300)) {
            let cfg = LivenessConfig::default();
            let mut d = LivenessDetector::new(cfg.clone());
            let names = ["a", "b", "c"];
            // Heartbeats on an open session since the node last left Healthy.
            let mut beats = [0u32; 3];
            let mut now = 0;
            for e in evs {
                let before: Vec<_> = names.iter().map(|n| d.get(n).map(|s| s.0)).collect();
                let touched = match e {
                    Ev::Open(i) => { d.session_opened(id(names[i]), now); Some(i) }
                    Ev::Close(i) => { d.session_closed(names[i], now); Some(i) }
                    Ev::Beat(i) => { d.heartbeat(names[i], now); Some(i) }
                    Ev::Tick => { d.tick(now); None }
                    Ev::Wait(ms) => { now += ms; None }
                };
                for (i, n) in names.iter().enumerate() {
                    let after = d.get(n).map(|s| s.0);
                    if matches!(before[i], Some(Liveness::Suspect | Liveness::Offline)) {
                        if after == Some(Liveness::Healthy) {
                            prop_assert!(matches!(e, Ev::Beat(j) if j == i), "{n} healthy from suspect on {e:?}");
                            prop_assert!(beats[i] + 1 >= cfg.recovery_heartbeats, "{n} recovered after {} heartbeats", beats[i] + 1);
                        }
                        prop_assert!(!(before[i] == Some(Liveness::Offline) && after == Some(Liveness::Healthy)));
                    }
                    if after != Some(Liveness::Healthy) && touched == Some(i) {
                        match e {
                            Ev::Beat(_) => beats[i] += 1,
                            _ => beats[i] = 0,
                        }
                    }
                    if after == Some(Liveness::Healthy) || (before[i] == Some(Liveness::Healthy) && after != before[i]) {
                        beats[i] = 0;
                    }
                }
                d.check();
            }
        }

        #[test]
        fn a_node_heartbeating_every_interval_is_never_suspected(
            others in prop::collection::vec(ev(), 0..200),
            jitter in prop::collection::vec(0..1_000u64, 1..200),
        ) {
            let mut d = det();
            d.session_opened(id("steady"), 0);
            let mut now = 0;
            let mut others = others.into_iter();
            for j in jitter {
                // Ticks land anywhere between two heartbeats, at most an interval apart.
                let hb_at = now + 1_000;
                let tick_at = now + j;
                for t in d.tick(tick_at) {
                    prop_assert!(&*t.node != "steady", "{t:?}");
                }
                match others.next() {
                    Some(Ev::Open(i)) => { d.session_opened(id(&format!("o{i}")), tick_at); }
                    Some(Ev::Close(i)) => { d.session_closed(&format!("o{i}"), tick_at); }
                    Some(Ev::Beat(i)) => { d.heartbeat(&format!("o{i}"), tick_at); }
                    _ => {}
                }
                now = hb_at;
                for t in d.tick(now) {
                    prop_assert!(&*t.node != "steady", "{t:?}");
                }
                prop_assert_eq!(d.heartbeat("steady", now), None);
                prop_assert_eq!(d.get("steady"), Some((Liveness::Healthy, false)));
            }
        }
    }
}
