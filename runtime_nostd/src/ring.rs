//! A bounded FIFO over caller-provided slots: `[Option<T>; N]` on a board, a boxed slice on a
//! host. The capacity is the slot count, fixed at construction; `push_back` hands the item back
//! when full instead of growing or dropping it.

use core::marker::PhantomData;

/// A bounded FIFO of `T` stored in `S`.
#[derive(Debug, Clone)]
pub struct Ring<T, S> {
    slots: S,
    head: usize,
    len: usize,
    _item: PhantomData<T>,
}

impl<T, S: AsRef<[Option<T>]> + AsMut<[Option<T>]>> Ring<T, S> {
    /// A ring over `slots`; any values already in the slots are cleared.
    pub fn new(mut slots: S) -> Self {
        for slot in slots.as_mut().iter_mut() {
            *slot = None;
        }
        Ring { slots, head: 0, len: 0, _item: PhantomData }
    }

    /// Items the ring can hold.
    pub fn capacity(&self) -> usize {
        self.slots.as_ref().len()
    }

    /// Items held now.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no item is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when `push_back` would hand the item back.
    pub fn is_full(&self) -> bool {
        self.len == self.capacity()
    }

    fn index(&self, offset: usize) -> usize {
        let cap = self.capacity();
        let i = self.head + offset;
        if i >= cap {
            i - cap
        } else {
            i
        }
    }

    /// Appends `item`, or returns it when the ring is full.
    pub fn push_back(&mut self, item: T) -> Result<(), T> {
        if self.is_full() {
            return Err(item);
        }
        let at = self.index(self.len);
        self.slots.as_mut()[at] = Some(item);
        self.len += 1;
        Ok(())
    }

    /// Removes and returns the oldest item.
    pub fn pop_front(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let item = self.slots.as_mut()[self.head].take();
        self.head = self.index(1);
        self.len -= 1;
        item
    }

    /// The oldest item.
    pub fn front(&self) -> Option<&T> {
        self.get(0)
    }

    /// The item `offset` places after the oldest.
    pub fn get(&self, offset: usize) -> Option<&T> {
        if offset >= self.len {
            return None;
        }
        self.slots.as_ref()[self.index(offset)].as_ref()
    }

    /// Items from oldest to newest.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        // The items are at most two contiguous runs of slots: head.. and ..wrap.
        let slots = self.slots.as_ref();
        let first_end = (self.head + self.len).min(slots.len());
        let wrapped = self.len - (first_end - self.head);
        slots[self.head..first_end].iter().chain(slots[..wrapped].iter()).filter_map(Option::as_ref)
    }

    /// Removes every item.
    pub fn clear(&mut self) {
        while self.pop_front().is_some() {}
    }
}

/// Slot storage with its capacity in the type (`N`) and a length chosen at run time (at most
/// `N`): a board reserves `N` slots per queue, and a partition image declares how many of them a
/// given mailbox or window uses.
#[derive(Debug, Clone)]
pub struct Slots<T, const N: usize> {
    items: [Option<T>; N],
    len: usize,
}

impl<T, const N: usize> Slots<T, N> {
    /// `len` empty slots (at most `N`; more are cut to `N`).
    pub fn new(len: usize) -> Self {
        Slots { items: [const { None }; N], len: len.min(N) }
    }
}

impl<T, const N: usize> AsRef<[Option<T>]> for Slots<T, N> {
    fn as_ref(&self) -> &[Option<T>] {
        self.items.get(..self.len).unwrap_or(&[])
    }
}

impl<T, const N: usize> AsMut<[Option<T>]> for Slots<T, N> {
    fn as_mut(&mut self) -> &mut [Option<T>] {
        // `len <= N` by construction; `get_mut` keeps the path panic-free anyway.
        self.items.get_mut(..self.len).unwrap_or(&mut [])
    }
}

#[cfg(test)]
mod tests {
    use super::{Ring, Slots};

    /// Slots expose only their chosen length, so a ring over them is bounded by it.
    #[test]
    fn slots_bound_the_ring() {
        let mut ring: Ring<u8, Slots<u8, 4>> = Ring::new(Slots::new(2));
        assert_eq!(ring.capacity(), 2);
        assert_eq!(ring.push_back(1), Ok(()));
        assert_eq!(ring.push_back(2), Ok(()));
        assert_eq!(ring.push_back(3), Err(3));
        assert_eq!(Slots::<u8, 4>::new(9).as_ref().len(), 4);
    }

    /// A full ring hands the item back, and order is FIFO across the wrap-around.
    #[test]
    fn bounded_fifo_hands_back_when_full() {
        let mut ring: Ring<u8, [Option<u8>; 3]> = Ring::new([None; 3]);
        assert_eq!(ring.push_back(1), Ok(()));
        assert_eq!(ring.push_back(2), Ok(()));
        assert_eq!(ring.push_back(3), Ok(()));
        assert_eq!(ring.push_back(4), Err(4));
        assert_eq!(ring.pop_front(), Some(1));
        assert_eq!(ring.push_back(5), Ok(()));
        assert_eq!(ring.iter().copied().collect::<Vec<_>>(), vec![2, 3, 5]);
        assert_eq!(ring.get(2), Some(&5));
        ring.clear();
        assert!(ring.is_empty());
    }
}
