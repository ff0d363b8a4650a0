//! The device's timer list: what is due next, fired in deadline order, and in arming order when
//! several are due at the same instant (the order a user sees on a board, and a deterministic one).

use std::collections::BTreeMap;

use crate::clock::SimTime;

/// Identifies one armed entry so it can be cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerKey {
    deadline: SimTime,
    seq: u64,
}

impl TimerKey {
    pub fn deadline(&self) -> SimTime {
        self.deadline
    }
}

#[derive(Debug)]
pub struct TimerQueue<T> {
    entries: BTreeMap<TimerKey, T>,
    next_seq: u64,
}

impl<T> Default for TimerQueue<T> {
    fn default() -> Self {
        TimerQueue {
            entries: BTreeMap::new(),
            next_seq: 0,
        }
    }
}

impl<T> TimerQueue<T> {
    /// Arms `item` to fire at `deadline`.
    pub fn arm(&mut self, deadline: SimTime, item: T) -> TimerKey {
        let key = TimerKey {
            deadline,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.entries.insert(key, item);
        key
    }

    /// Disarms an entry; returns it if it was still armed.
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        self.entries.remove(&key)
    }

    /// When the earliest entry is due.
    pub fn next_deadline(&self) -> Option<SimTime> {
        self.entries.keys().next().map(|k| k.deadline)
    }

    /// Takes the earliest entry if it is due at `now`.
    pub fn pop_due(&mut self, now: SimTime) -> Option<(TimerKey, T)> {
        let first = *self.entries.keys().next()?;
        if first.deadline <= now {
            self.entries.remove_entry(&first)
        } else {
            None
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn same_deadline_fires_in_arming_order() {
        let mut q = TimerQueue::default();
        let t = Duration::from_secs(1);
        q.arm(t, "first");
        q.arm(Duration::from_millis(10), "earliest");
        q.arm(t, "second");
        let order: Vec<_> = std::iter::from_fn(|| q.pop_due(t).map(|(_, v)| v)).collect();
        assert_eq!(order, ["earliest", "first", "second"]);
    }

    #[test]
    fn cancel_and_not_yet_due() {
        let mut q = TimerQueue::default();
        let k = q.arm(Duration::from_secs(5), 1);
        q.arm(Duration::from_secs(6), 2);
        assert_eq!(q.cancel(k), Some(1));
        assert!(q.pop_due(Duration::from_secs(5)).is_none());
        assert_eq!(q.next_deadline(), Some(Duration::from_secs(6)));
    }
}
