//! The argument layout in the arena: where each parameter of a call goes,
//! and copying the out-values back from there after the response.
//!
//! The host alone chooses every offset and length. The helper only ever
//! receives offsets the host wrote, and the host reads out-values back from
//! its own record of the layout ([`Slot`]s), never from anything the helper
//! wrote, so a hostile helper cannot steer a copy.

use ffb_abi::signature::{ArgType, Pointee, Signature};
use ffb_contract::wire::{align_up, MAX_WIRE_ARGS};

use super::handles::HandleTable;
use super::{Bridge, Declared};
use crate::arena::Arena;
use crate::error::{err, Error, ErrorKind, Result};
use crate::value::{buffer_bytes, decode_scalar, scalar_word, Value};

/// Where one parameter went for the current call.
#[derive(Clone, Copy, Debug)]
pub(super) struct Slot {
    ty: ArgType,
    offset: usize,
    len: usize,
    /// A zero-copy argument: nothing is copied back.
    shared: bool,
}

/// What laying out arguments needs from the bridge, borrowed apart from the
/// layout being written.
pub(super) struct LayoutContext<'a> {
    pub arena: &'a Arena,
    pub generation: u64,
    pub handles: &'a HandleTable,
    /// End of the space argument buffers may use.
    pub limit: usize,
}

impl LayoutContext<'_> {
    /// Checks every argument against its type and writes it to the arena:
    /// scalars and handles as argument words (through `word`), buffers into
    /// the data area at host-chosen offsets from `cursor`. Nothing is sent
    /// yet, so a failure here leaves the helper idle.
    pub fn lay_out(
        &self,
        sig: &Signature,
        args: &[Value],
        layout: &mut Vec<Slot>,
        cursor: &mut usize,
        word: &mut dyn FnMut(usize, u64),
    ) -> Result<()> {
        if sig.args.len() > MAX_WIRE_ARGS {
            return err(ErrorKind::BadSignature, "too many parameters");
        }
        let arena = self.arena;
        let mut given = args.iter();
        for (i, &ty) in sig.args.iter().enumerate() {
            let position = i + 1;
            let value = if ty.takes_value() {
                given.next().expect("arity checked")
            } else {
                &Value::Null
            };
            if let (ArgType::Bytes, Value::Shared(len)) = (ty, value) {
                // The shared buffer starts where argument buffers must end.
                let offset = self.limit;
                word(i, offset as u64);
                layout.push(Slot {
                    ty,
                    offset,
                    len: *len,
                    shared: true,
                });
                continue;
            }
            let bytes = match ty {
                ArgType::CStr | ArgType::Bytes => buffer_bytes(ty, value, position)?,
                _ => &[],
            };
            let len = match ty {
                ArgType::CStr => bytes.len() + 1,
                ArgType::Bytes => bytes.len(),
                ArgType::Out(n) => n,
                ArgType::Ptr(_) => 8,
                ArgType::Scalar(_) | ArgType::Handle => 0,
            };
            let offset = *cursor;
            if ty.is_pointer() {
                *cursor = align_up(cursor.saturating_add(len.max(1)))
                    .filter(|&end| end <= self.limit)
                    .ok_or_else(|| too_big(position, self.limit))?;
            }
            let w = match ty {
                ArgType::Scalar(s) => scalar_word(s, value, position)?,
                ArgType::Handle => self.handles.resolve(value, self.generation)?,
                ArgType::CStr => {
                    arena.write(offset, bytes);
                    arena.write(offset + bytes.len(), &[0]);
                    offset as u64
                }
                ArgType::Bytes => {
                    arena.write(offset, bytes);
                    offset as u64
                }
                ArgType::Out(n) => {
                    arena.zero(offset, n);
                    offset as u64
                }
                ArgType::Ptr(Pointee::Scalar(s)) => {
                    arena.write(offset, &scalar_word(s, value, position)?.to_ne_bytes());
                    offset as u64
                }
                ArgType::Ptr(Pointee::Handle) => {
                    let raw = self.handles.resolve(value, self.generation)?;
                    arena.write(offset, &raw.to_ne_bytes());
                    offset as u64
                }
            };
            word(i, w);
            layout.push(Slot {
                ty,
                offset,
                len,
                shared: false,
            });
        }
        Ok(())
    }
}

/// The error for buffers that do not fit below `limit`.
pub(super) fn too_big(position: usize, limit: usize) -> Error {
    Error::new(
        ErrorKind::BadArgument,
        format!(
            "argument {position}: the call's buffers need more than the {limit}-byte arena (raise the arena size)"
        ),
    )
}

impl Bridge {
    /// Starts a new layout on the live helper's arena: clears the bridge's
    /// layout and splits the bridge into what laying out reads (the
    /// declarations, and a context with the arena and the handles) and the
    /// layout it writes.
    pub(super) fn start_layout(&mut self) -> (&[Declared], &mut Vec<Slot>, LayoutContext<'_>) {
        let limit = self.data_limit();
        let Bridge {
            functions,
            helper,
            handles,
            layout,
            generation,
            ..
        } = self;
        layout.clear();
        let ctx = LayoutContext {
            arena: helper.as_ref().expect("ensured").arena(),
            generation: *generation,
            handles,
            limit,
        };
        (functions, layout, ctx)
    }

    /// Copies out the values behind the pointer parameters laid out in
    /// `slots` (a range of the current layout) after a response: from
    /// host-chosen offsets and host-known lengths only, reusing the buffers
    /// already in `out`.
    pub(super) fn copy_out(&mut self, slots: std::ops::Range<usize>, out: &mut Vec<Option<Value>>) {
        let Bridge {
            helper,
            handles,
            layout,
            generation,
            ..
        } = self;
        let arena = helper.as_ref().expect("alive after a response").arena();
        let layout = &layout[slots];
        out.truncate(layout.len());
        out.resize(layout.len(), None);
        for (slot, value) in layout.iter().zip(out.iter_mut()) {
            match slot.ty {
                _ if slot.shared => *value = None,
                ArgType::Bytes | ArgType::Out(_) => {
                    let mut buf = match value.take() {
                        Some(Value::Bytes(b)) => b,
                        _ => Vec::new(),
                    };
                    arena.read_to_vec(slot.offset, slot.len, &mut buf);
                    *value = Some(Value::Bytes(buf));
                }
                ArgType::Ptr(Pointee::Scalar(s)) => {
                    let mut word = [0u8; 8];
                    arena.read_into(slot.offset, &mut word);
                    *value = Some(decode_scalar(s, u64::from_ne_bytes(word)));
                }
                ArgType::Ptr(Pointee::Handle) => {
                    let mut word = [0u8; 8];
                    arena.read_into(slot.offset, &mut word);
                    *value = Some(handles.register(u64::from_ne_bytes(word), *generation));
                }
                _ => *value = None,
            }
        }
    }
}
