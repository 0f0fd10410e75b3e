//! Zero-copy buffers: a [`SharedBuffer`] reserved at the end of the arena,
//! passed to `bytes` parameters as [`Value::Shared`](crate::Value::Shared) without copying.
//!
//! The reservation belongs to one helper: the bridge records it with the
//! helper's generation, argument buffers stop below it, and a
//! [`Value::Shared`](crate::Value::Shared) that outlived its helper is refused as stale.

use std::marker::PhantomData;

use ffb_contract::wire::{align_up, CONTROL_SIZE};

use super::Bridge;
use crate::error::{err, ErrorKind, Result};

/// A view of a buffer inside the shared arena (see [`Bridge::shared_buffer`]).
pub struct SharedBuffer<'a> {
    /// Start of the reservation at the end of the live arena mapping.
    ptr: *mut u8,
    len: usize,
    /// Borrows the bridge mutably, so the arena (and its mapping) outlives the
    /// view and no call can run while it is held.
    _bridge: PhantomData<&'a mut Bridge>,
}

impl SharedBuffer<'_> {
    /// Its length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `data` to the start of the buffer (at most its length).
    pub fn write(&mut self, data: &[u8]) {
        let n = data.len().min(self.len);
        // SAFETY: `ptr..ptr + len` lies inside the arena mapping, which the
        // borrow of the bridge keeps alive, and `n <= len`; `data` is a host
        // slice, so the two ranges cannot overlap. The helper may write the
        // same bytes concurrently, but only through its own mapping, and
        // nothing on the host side holds a reference into them.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr, n) };
    }

    /// Copies the start of the buffer into `out` (at most its length).
    pub fn read(&self, out: &mut [u8]) {
        let n = out.len().min(self.len);
        // SAFETY: as in `write`: `n` bytes from `ptr` are inside the live
        // mapping, and `out` is a distinct host slice. What the helper wrote
        // is only copied as bytes, which every bit pattern is.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr, out.as_mut_ptr(), n) };
    }

    /// The buffer as a slice, to fill in place.
    ///
    /// # Safety
    /// The helper maps the same memory and may write to it while the slice
    /// lives; only use this while no call is running, and treat what you read
    /// as untrusted.
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: `ptr..ptr + len` is the reserved end of the live arena
        // mapping, borrowed mutably through `self`; the caller upholds the
        // no-call-running rule above.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Bridge {
    /// A buffer of `len` bytes inside the shared arena, for zero-copy calls:
    /// fill it, then pass [`Value::Shared`](crate::Value::Shared) for a `bytes` parameter, and the
    /// function gets a pointer to it with nothing copied in or out. Read what
    /// the function left there through a new `shared_buffer` view.
    ///
    /// The helper can write to this memory at any time: treat what you read
    /// back as untrusted bytes. A buffer from a helper that has since been
    /// replaced is gone; passing `Value::Shared` then gives `stale_handle`.
    ///
    /// ```
    /// use ffb_loader::{Bridge, BridgeMode, Value};
    ///
    /// let mut z = Bridge::builder("libz.so.1")
    /// #   .shim(std::env::var_os("FFB_SHIM").unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/ffb-shim").into()))
    ///     .bridge_mode(BridgeMode::Enabled)
    ///     .declare("crc32(u64, bytes, u32) -> u64")
    ///     .load()?;
    /// let crc32 = z.function("crc32").unwrap();
    ///
    /// // Fill the buffer in place, then pass its first 5 bytes by reference.
    /// z.shared_buffer(4096)?.write(b"hello");
    /// let out = z.call(crc32, &[Value::U64(0), Value::Shared(5), Value::U32(5)])?;
    /// assert_eq!(out.ret, Value::U64(0x3610a686));
    /// assert_eq!(out.out[1], None); // nothing was copied back
    ///
    /// let mut back = [0u8; 5];
    /// z.shared_buffer(4096)?.read(&mut back);
    /// assert_eq!(&back, b"hello");
    /// # Ok::<(), ffb_loader::Error>(())
    /// ```
    pub fn shared_buffer(&mut self, len: usize) -> Result<SharedBuffer<'_>> {
        self.ensure_helper()?;
        let arena = self.helper.as_ref().expect("ensured").arena();
        let reserve = align_up(len.max(1)).unwrap_or(usize::MAX);
        if reserve > arena.data_capacity() / 2 {
            return err(
                ErrorKind::BadArgument,
                format!(
                    "a {len}-byte shared buffer needs an arena of at least {} bytes (this one has {})",
                    reserve.saturating_mul(2).saturating_add(CONTROL_SIZE),
                    arena.len()
                ),
            );
        }
        self.shared = Some((self.generation, reserve));
        let arena = self.helper.as_ref().expect("ensured").arena();
        let offset = arena.len() - reserve;
        // SAFETY: `reserve <= data_capacity / 2 < arena.len()`, so `offset`
        // is inside the mapping that `base` starts, and the result stays in
        // the same allocation.
        let ptr = unsafe { arena.base().add(offset) };
        Ok(SharedBuffer {
            ptr,
            len,
            _bridge: PhantomData,
        })
    }

    /// Where argument buffers may go: the data area below any shared buffer.
    pub(super) fn data_limit(&self) -> usize {
        let arena_len = self.helper.as_ref().map_or(0, |h| h.arena().len());
        match self.shared {
            Some((generation, reserve)) if generation == self.generation => arena_len - reserve,
            _ => arena_len,
        }
    }

    /// Checks a [`Value::Shared`](crate::Value::Shared) argument of `len` bytes against the current
    /// helper's shared buffer.
    pub(super) fn check_shared(&self, len: usize) -> Result<()> {
        match self.shared {
            Some((generation, reserve)) if generation == self.generation && len <= reserve => {
                Ok(())
            }
            Some((generation, _)) if generation == self.generation => err(
                ErrorKind::BadArgument,
                format!("Value::Shared({len}) is longer than the shared buffer"),
            ),
            _ => err(
                ErrorKind::StaleHandle,
                "Value::Shared refers to a shared buffer of a helper that is gone (call shared_buffer again)",
            ),
        }
    }
}
