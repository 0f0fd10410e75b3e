//! The argument layout in the arena: where each parameter of a call goes,
//! and copying the out-values back from there after the response.
//!
//! Buffers go to the per-call scratch area, which starts just past the
//! control block and ends below the shared buffer and the lowest pinned
//! buffer; a retained argument goes to the [pinned region](super::pinned)
//! instead, which the next call does not overwrite.
//!
//! The host alone chooses every offset and length. The helper only ever
//! receives offsets the host wrote, and the host reads out-values back from
//! its own record of the layout ([`Slot`]s), never from anything the helper
//! wrote, so a hostile helper cannot steer a copy.

use ffb_abi::signature::{ArgType, Pointee};
use ffb_contract::wire::{align_up, MAX_WIRE_ARGS};

use super::handles::{refusal_message, HandleTable, KindId, Kinds, NONE};
use super::{Bridge, Declared};
use crate::arena::Arena;
use crate::error::{err, Error, ErrorKind, Result};
use crate::value::{buffer_bytes, decode_scalar, scalar_word, Value};

/// Where one parameter went for the current call.
#[derive(Clone, Copy, Debug)]
pub(super) struct Slot {
    ty: ArgType,
    /// The kind a `*handle<kind>` gives the token it receives, or [`NONE`].
    kind: KindId,
    /// The token a handle argument resolved to, or [`NONE`].
    token: u32,
    offset: usize,
    len: usize,
    /// A zero-copy argument: nothing is copied back.
    shared: bool,
    /// A retained buffer, in the pinned region.
    pinned: bool,
}

impl Slot {
    /// The token a handle argument resolved to, or [`NONE`].
    pub(super) fn token(&self) -> u32 {
        self.token
    }

    /// Whether this is a `handle` passed by value.
    pub(super) fn is_handle_by_value(&self) -> bool {
        self.ty == ArgType::Handle
    }

    /// Whether this is a retained buffer in the pinned region.
    pub(super) fn is_pinned(&self) -> bool {
        self.pinned
    }

    /// Where its buffer is.
    pub(super) fn offset(&self) -> usize {
        self.offset
    }
}

/// What laying out arguments needs from the bridge, borrowed apart from the
/// layout being written.
pub(super) struct LayoutContext<'a> {
    pub arena: &'a Arena,
    pub generation: u64,
    /// The tokens (checked, and doomed by a batch's close functions) and
    /// the pinned region (retained buffers are carved from it).
    pub handles: &'a mut HandleTable,
    /// The kinds' names, for messages.
    pub kinds: &'a Kinds,
    /// The declarations, for the close functions' names in messages.
    pub functions: &'a [Declared],
    /// Where the shared buffer starts (the arena's end without one).
    pub shared_at: usize,
    /// Whether a shared buffer is reserved: pins would overlap it.
    pub shared_reserved: bool,
}

impl LayoutContext<'_> {
    /// End of the space scratch buffers may use: below the shared buffer
    /// and below every pinned buffer.
    pub fn limit(&self) -> usize {
        self.shared_at.min(self.handles.pinned.floor())
    }

    /// Checks every argument of `declared` against its type (a handle also
    /// against its kind and liveness) and writes it to the arena: scalars
    /// and handles as argument words (through `word`), buffers into the
    /// scratch area at host-chosen offsets from `cursor`, retained buffers
    /// into the pinned region. Nothing is sent yet, so a failure here leaves
    /// the helper idle; the caller releases the pins of a layout it does not
    /// send.
    pub fn lay_out(
        &mut self,
        declared: &Declared,
        args: &[Value],
        layout: &mut Vec<Slot>,
        cursor: &mut usize,
        word: &mut dyn FnMut(usize, u64),
    ) -> Result<()> {
        let sig = &declared.sig;
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
                let offset = self.shared_at;
                word(i, offset as u64);
                layout.push(Slot {
                    ty,
                    kind: NONE,
                    token: NONE,
                    offset,
                    len: *len,
                    shared: true,
                    pinned: false,
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
            let kind = declared.handles.arg_kind(i);
            let mut token = NONE;
            let handle_word = match ty {
                ArgType::Handle | ArgType::Ptr(Pointee::Handle) => {
                    match self.handles.check(value, self.generation, kind) {
                        Ok(r) => {
                            token = r.token;
                            r.raw
                        }
                        Err(refusal) => {
                            let functions = self.functions;
                            return Err(refusal_message(
                                refusal,
                                Some(position),
                                self.kinds,
                                &|f| functions.get(f as usize).map(|d| d.sig.name.clone()),
                            ));
                        }
                    }
                }
                _ => 0,
            };
            let pinned = declared.handles.is_retained(i);
            let offset = if pinned {
                self.pin(len, *cursor, position)?
            } else {
                let offset = *cursor;
                if ty.is_pointer() {
                    let limit = self.limit();
                    *cursor = align_up(cursor.saturating_add(len.max(1)))
                        .filter(|&end| end <= limit)
                        .ok_or_else(|| too_big(position, limit))?;
                }
                offset
            };
            let w = match ty {
                ArgType::Scalar(s) => scalar_word(s, value, position)?,
                ArgType::Handle => handle_word,
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
                    arena.write(offset, &handle_word.to_ne_bytes());
                    offset as u64
                }
            };
            word(i, w);
            layout.push(Slot {
                ty,
                kind,
                token,
                offset,
                len,
                shared: false,
                pinned,
            });
        }
        Ok(())
    }

    /// Pins `len` bytes for a retained argument at `position`, above the
    /// scratch already used (`cursor`).
    fn pin(&mut self, len: usize, cursor: usize, position: usize) -> Result<usize> {
        if self.shared_reserved {
            return err(
                ErrorKind::BadArgument,
                format!(
                    "argument {position}: a retained buffer cannot be pinned while a shared buffer is reserved \
                     (both live at the top of the arena)"
                ),
            );
        }
        let pinned = &mut self.handles.pinned;
        pinned.pin(len, cursor).ok_or_else(|| {
            Error::new(
                ErrorKind::ResourceLimit,
                format!(
                    "argument {position}: a {len}-byte retained buffer does not fit: {} of the {} bytes \
                     for retained buffers are pinned until their handles are closed \
                     (close handles, or raise BridgeBuilder::pinned_limit)",
                    pinned.used(),
                    pinned.cap()
                ),
            )
        })
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
        let shared_at = self.data_limit();
        let shared_reserved = matches!(self.shared, Some((g, _)) if g == self.generation);
        let Bridge {
            functions,
            helper,
            handles,
            kinds,
            layout,
            generation,
            ..
        } = self;
        layout.clear();
        let functions: &[Declared] = functions;
        let ctx = LayoutContext {
            arena: helper.as_ref().expect("ensured").arena(),
            generation: *generation,
            handles,
            kinds,
            functions,
            shared_at,
            shared_reserved,
        };
        (functions, layout, ctx)
    }

    /// End of the scratch area: below the shared buffer and every pinned
    /// buffer. Whatever a request lays out in the arena must end at or
    /// below it.
    pub(crate) fn scratch_limit(&self) -> usize {
        self.data_limit().min(self.handles.pinned.floor())
    }

    /// Copies out the values behind the pointer parameters laid out in
    /// `slots` (a range of the current layout) after a response: from
    /// host-chosen offsets and host-known lengths only, reusing the buffers
    /// already in `out`. A pointer left in a `*handle` becomes a token (of
    /// the declared kind, child of the call's token of its parent kind);
    /// that fails only when the helper has issued every token it can.
    pub(super) fn copy_out(
        &mut self,
        slots: std::ops::Range<usize>,
        out: &mut Vec<Option<Value>>,
    ) -> Result<()> {
        let Bridge {
            helper,
            handles,
            kinds,
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
                    let parent = if slot.kind == NONE {
                        NONE
                    } else {
                        handles.parent_for(kinds, slot.kind, layout.iter().map(Slot::token))
                    };
                    let raw = u64::from_ne_bytes(word);
                    *value = Some(handles.register(raw, *generation, slot.kind, parent)?);
                }
                _ => *value = None,
            }
        }
        Ok(())
    }
}
