//! A batch of coalesced values: what the latest and write-binding kernels share. Values join a
//! batch until it goes out as one; the output names the batch (its first value's tag and its
//! size) and carries the taints of all of it, with `delivery_coalesced` when it held several.

use crate::taint::{Taint, TaintSet};

/// One output standing for a batch of coalesced inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coalesced<T, G> {
    /// The latest value of the batch.
    pub value: T,
    /// The tag of the batch's first value.
    pub first: G,
    /// Values in the batch (at least 1).
    pub count: u32,
    /// The batch's taints, with `delivery_coalesced` when `count > 1`.
    pub taints: TaintSet,
}

/// The bookkeeping of an open batch (the latest value itself is kept by the kernel).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Batch<G> {
    first: G,
    /// Values in the batch; 0: no batch open.
    count: u32,
    taints: TaintSet,
}

impl<G: Copy + Default> Batch<G> {
    /// Values in the open batch (0: none).
    pub(crate) fn len(&self) -> u32 {
        self.count
    }

    /// Adds a value tagged `tag` with `taints`; true when it opened the batch.
    pub(crate) fn add(&mut self, tag: G, taints: TaintSet) -> bool {
        let opened = self.count == 0;
        if opened {
            *self = Batch { first: tag, count: 1, taints };
        } else {
            self.count = self.count.saturating_add(1);
            self.taints = self.taints.join(taints);
        }
        opened
    }

    /// Closes the batch into the output for `value` (the batch's latest value).
    pub(crate) fn close<T>(&mut self, value: T) -> Coalesced<T, G> {
        let Batch { first, count, taints } = core::mem::take(self);
        let taints = if count > 1 { taints.with(Taint::DeliveryCoalesced) } else { taints };
        Coalesced { value, first, count, taints }
    }
}
