//! The pinned region: arena space for retained buffers, which the foreign
//! code keeps a pointer to after the call returns (text bound with
//! `SQLITE_STATIC`, a buffer libpq holds on to).
//!
//! Every other argument buffer lives in the per-call scratch area from just
//! past the control block up, and the next call overwrites it. A retained
//! buffer must not be overwritten while the foreign code may still read it,
//! so it is carved from the top of the arena instead, and the scratch area's
//! limit drops below the lowest pin. A pin stays until the handle that owns
//! it is closed, or the helper ends; its bytes are never handed out again
//! while it is pinned. The region is bounded ([`PinnedRegion::cap`]), so a
//! program that retains without ever closing gets `resource_limit`, not an
//! arena with no scratch left.

use std::collections::BTreeMap;

use ffb_contract::wire::align_up;

/// The live pins of one helper's arena, by offset.
#[derive(Debug, Default)]
pub(super) struct PinnedRegion {
    /// One past the highest byte a pin may use: the arena's end.
    top: usize,
    /// How many bytes below `top` pins may take.
    cap: usize,
    /// Offset to length (aligned) of every live pin.
    live: BTreeMap<usize, usize>,
    /// The sum of the live pins' lengths.
    used: usize,
}

impl PinnedRegion {
    /// An empty region: pins may use `cap` bytes below `top`.
    pub(super) fn new(top: usize, cap: usize) -> Self {
        PinnedRegion {
            top,
            cap: cap.min(top),
            live: BTreeMap::new(),
            used: 0,
        }
    }

    /// The bytes pinned now.
    pub(super) fn used(&self) -> usize {
        self.used
    }

    /// The most bytes pins may take.
    pub(super) fn cap(&self) -> usize {
        self.cap
    }

    /// The lowest pinned byte (`top` when nothing is pinned): scratch
    /// buffers must end at or below it.
    pub(super) fn floor(&self) -> usize {
        self.live.keys().next().copied().unwrap_or(self.top)
    }

    /// Pins `len` bytes (at least 1, rounded up to the buffer alignment) at
    /// no offset below `lowest`, as high as they fit: the highest gap between
    /// live pins first, so the floor stays as high as it can. `None` when
    /// no gap within the cap is large enough.
    pub(super) fn pin(&mut self, len: usize, lowest: usize) -> Option<usize> {
        let len = align_up(len.max(1))?;
        let bottom = (self.top - self.cap).max(lowest);
        // Walk the gaps from the top down: between `end` and each pin's end.
        let mut end = self.top;
        let mut found = None;
        for (&offset, &pinned) in self.live.iter().rev() {
            let gap_start = offset + pinned;
            if end - gap_start >= len && end - len >= bottom {
                found = Some(end - len);
                break;
            }
            end = offset;
        }
        let offset = match found {
            Some(offset) => offset,
            None if end >= bottom && end - bottom >= len => end - len,
            None => return None,
        };
        self.live.insert(offset, len);
        self.used += len;
        Some(offset)
    }

    /// Unpins the buffer at `offset` (nothing if none is pinned there).
    pub(super) fn unpin(&mut self, offset: usize) {
        if let Some(len) = self.live.remove(&offset) {
            self.used -= len;
        }
    }

    /// Unpins everything, for a helper that is gone.
    pub(super) fn clear(&mut self) {
        self.live.clear();
        self.used = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_grow_down_from_the_top_and_reuse_freed_gaps() {
        let mut region = PinnedRegion::new(4096, 1024);
        assert_eq!(region.floor(), 4096);
        let a = region.pin(10, 0).unwrap();
        assert_eq!(a, 4096 - 16);
        let b = region.pin(100, 0).unwrap();
        assert_eq!(b, a - 112);
        assert_eq!(region.floor(), b);
        assert_eq!(region.used(), 128);
        // A freed gap is reused only by what fits in it; the floor rises
        // when the lowest pin goes.
        region.unpin(a);
        assert_eq!(region.pin(32, 0), Some(b - 32));
        assert_eq!(region.pin(16, 0), Some(a));
        region.unpin(b - 32);
        assert_eq!(region.floor(), b);
        region.unpin(b);
        region.unpin(a);
        assert_eq!((region.used(), region.floor()), (0, 4096));
    }

    #[test]
    fn pins_stay_within_the_cap_and_above_the_scratch() {
        let mut region = PinnedRegion::new(4096, 256);
        assert_eq!(region.pin(257, 0), None);
        assert_eq!(region.pin(256, 0), Some(4096 - 256));
        assert_eq!(region.pin(1, 0), None);
        region.clear();
        // Scratch in use up to 4000: a pin may not reach below it.
        assert_eq!(region.pin(128, 4000), None);
        assert_eq!(region.pin(96, 4000), Some(4000));
    }
}
