//! Bounded mailboxes with a declared overflow policy.
//!
//! A mailbox never grows and never loses an item silently: every offer ends in exactly one
//! [`Offer`] outcome, and every outcome other than `Accepted` is counted in
//! [`MailboxCounters`]. The graph turns those counts into delivery taints and flow queries.

use crate::ring::Ring;

/// What a full mailbox does with a new item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Refuse the item and tell the producer to wait: real backpressure.
    Block,
    /// Evict the oldest queued item to make room (the newest data wins).
    DropOldest,
    /// Discard the new item and keep the queue (the oldest data wins).
    DropNewest,
    /// Refuse the item with an error to the producer.
    Reject,
}

/// The outcome of offering an item to a mailbox.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer<T> {
    /// Queued.
    Accepted,
    /// Queued, and the oldest item was evicted to make room; it is handed back.
    AcceptedEvicting(T),
    /// Not queued: the mailbox is full and drops new items. The item is handed back.
    DroppedNewest(T),
    /// Not queued: the mailbox is full and rejects. The item is handed back.
    Rejected(T),
    /// Not queued: the mailbox is full and blocks; retry after it drains. Handed back.
    MustWait(T),
}

/// Counts of what a mailbox did since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxCounters {
    /// Items queued.
    pub accepted: u64,
    /// Items taken out for delivery.
    pub delivered: u64,
    /// Queued items evicted by `DropOldest`.
    pub dropped_oldest: u64,
    /// New items discarded by `DropNewest`.
    pub dropped_newest: u64,
    /// New items refused by `Reject`.
    pub rejected: u64,
    /// Offers refused by `Block` (the producer was told to wait).
    pub blocked: u64,
    /// The deepest the queue has been.
    pub depth_max: u64,
}

impl MailboxCounters {
    /// Items lost for good (evicted or discarded); refusals the producer saw are not losses.
    pub fn dropped(&self) -> u64 {
        self.dropped_oldest + self.dropped_newest
    }
}

/// A bounded FIFO with an overflow policy, over caller-provided slots.
#[derive(Debug, Clone)]
pub struct Mailbox<T, S> {
    queue: Ring<T, S>,
    overflow: Overflow,
    counters: MailboxCounters,
}

impl<T, S: AsRef<[Option<T>]> + AsMut<[Option<T>]>> Mailbox<T, S> {
    /// A mailbox holding at most `slots.len()` items.
    pub fn new(slots: S, overflow: Overflow) -> Self {
        Mailbox { queue: Ring::new(slots), overflow, counters: MailboxCounters::default() }
    }

    /// Offers `item`; see [`Offer`] for the outcomes.
    pub fn offer(&mut self, item: T) -> Offer<T> {
        let outcome = match self.queue.push_back(item) {
            Ok(()) => Offer::Accepted,
            Err(item) => match self.overflow {
                Overflow::Block => {
                    self.counters.blocked += 1;
                    return Offer::MustWait(item);
                }
                Overflow::Reject => {
                    self.counters.rejected += 1;
                    return Offer::Rejected(item);
                }
                Overflow::DropNewest => {
                    self.counters.dropped_newest += 1;
                    return Offer::DroppedNewest(item);
                }
                Overflow::DropOldest => match self.queue.pop_front() {
                    Some(oldest) => {
                        self.counters.dropped_oldest += 1;
                        // Cannot fail: one slot was just freed.
                        let _ = self.queue.push_back(item);
                        Offer::AcceptedEvicting(oldest)
                    }
                    // A zero-capacity mailbox: nothing to evict, so the new item is the loss.
                    None => {
                        self.counters.dropped_newest += 1;
                        return Offer::DroppedNewest(item);
                    }
                },
            },
        };
        self.counters.accepted += 1;
        self.counters.depth_max = self.counters.depth_max.max(self.queue.len() as u64);
        outcome
    }

    /// Takes the oldest item for delivery.
    pub fn take(&mut self) -> Option<T> {
        let item = self.queue.pop_front();
        if item.is_some() {
            self.counters.delivered += 1;
        }
        item
    }

    /// Items that can be offered before the overflow policy applies.
    pub fn free(&self) -> usize {
        self.queue.capacity() - self.queue.len()
    }

    /// Items queued.
    pub fn depth(&self) -> usize {
        self.queue.len()
    }

    /// The most items the mailbox holds.
    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// The overflow policy.
    pub fn overflow(&self) -> Overflow {
        self.overflow
    }

    /// What the mailbox did so far.
    pub fn counters(&self) -> MailboxCounters {
        self.counters
    }

    /// Queued items, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.queue.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(policy: Overflow) -> Mailbox<u32, [Option<u32>; 2]> {
        let mut mb = Mailbox::new([None; 2], policy);
        assert_eq!(mb.offer(1), Offer::Accepted);
        assert_eq!(mb.offer(2), Offer::Accepted);
        mb
    }

    /// Each policy gives its own outcome on a full mailbox, hands the item back, and counts it.
    #[test]
    fn each_policy_is_visible() {
        let mut mb = full(Overflow::Block);
        assert_eq!(mb.offer(3), Offer::MustWait(3));
        assert_eq!(mb.counters().blocked, 1);

        let mut mb = full(Overflow::Reject);
        assert_eq!(mb.offer(3), Offer::Rejected(3));
        assert_eq!(mb.counters().rejected, 1);

        let mut mb = full(Overflow::DropNewest);
        assert_eq!(mb.offer(3), Offer::DroppedNewest(3));
        assert_eq!(mb.iter().copied().collect::<Vec<_>>(), vec![1, 2]);

        let mut mb = full(Overflow::DropOldest);
        assert_eq!(mb.offer(3), Offer::AcceptedEvicting(1));
        assert_eq!(mb.iter().copied().collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(mb.counters().dropped(), 1);
        assert_eq!(mb.counters().depth_max, 2);
    }

    /// Taking frees room: a blocked producer can retry after a delivery.
    #[test]
    fn delivery_frees_room() {
        let mut mb = full(Overflow::Block);
        assert_eq!(mb.take(), Some(1));
        assert_eq!(mb.free(), 1);
        assert_eq!(mb.offer(3), Offer::Accepted);
        assert_eq!(mb.counters().delivered, 1);
    }
}
