//! What a helper writes, decoded by the host as the bridge does, with an
//! exact oracle where one exists:
//!
//! * the handshake message (`HelperMessage::decode`): one that decodes
//!   encodes back to itself;
//! * a fetch program's words (`Program::decode`, which both sides run): one
//!   that decodes re-encodes to words that decode to the same program;
//! * a fetch answer header (`check_answer`) and its page (`walk_page`): a
//!   page that walks has exactly `rows` rows of `columns` cells, and its
//!   cells account for every byte of it;
//! * the message area (`FuzzArena::message`): read iff its length fits, as
//!   the bytes written;
//! * a raw return word (`decode_scalar`), for every scalar type;
//! * a returned string (`read_cstr_of`), ending at an unmapped page: the
//!   bytes before the first NUL when it comes within the bound, else the
//!   right error.

use ffb_abi::signature::ScalarType;
use ffb_contract::wire::fetch::{Bounds, Program, ANSWER_BYTES};
use ffb_contract::wire::{HelperMessage, MESSAGE_CAPACITY, MESSAGE_OFFSET};
use ffb_loader::fuzzing::{check_answer, decode_scalar, read_cstr_of, walk_page, FuzzArena};
use ffb_loader::{Cell, ErrorKind, Value};

use crate::input::Input;
use crate::memory::{GuardedPage, PAGE};

/// Arena offsets and bounds for the program decoder: a 64 KiB arena whose
/// helper has 8 functions.
struct SmallHelper;

impl Bounds for SmallHelper {
    fn functions(&self) -> usize {
        8
    }
    fn fits(&self, offset: usize, len: usize) -> bool {
        offset >= 4096 && offset.checked_add(len).is_some_and(|end| end <= 64 << 10)
    }
}

/// The page bytes a walked row accounts for.
pub(crate) fn encoded_len(row: &[Cell<'_>]) -> usize {
    row.iter()
        .map(|c| match c {
            Cell::Int(_) | Cell::Float(_) => 9,
            Cell::Text(b) | Cell::Blob(b) => 5 + b.len(),
            Cell::Null => 1,
        })
        .sum()
}

/// Walks a page as the host does, and checks what came back against the
/// page itself. Returns the number of cells, or the walk's error.
pub(crate) fn walk_checked(page: &[u8], rows: usize, columns: usize) -> Result<usize, String> {
    let mut seen_rows = 0;
    let mut bytes = 0;
    walk_page(page, rows, columns, |row| {
        assert_eq!(
            row.len(),
            columns,
            "a row of {} cells, not {columns}",
            row.len()
        );
        seen_rows += 1;
        bytes += encoded_len(row);
    })?;
    assert_eq!(
        seen_rows, rows,
        "a walked page with {seen_rows} rows, not {rows}"
    );
    assert_eq!(
        bytes,
        page.len(),
        "cells cover {bytes} of the page's {} bytes",
        page.len()
    );
    Ok(rows * columns)
}

fn handshake(bytes: &[u8]) {
    if let Ok(message) = HelperMessage::decode(bytes) {
        let again = HelperMessage::decode(&message.encode()).expect("an encoded message decodes");
        assert_eq!(again, message);
    }
}

fn program(bytes: &[u8]) {
    let words: Vec<u64> = bytes
        .chunks(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(w)
        })
        .collect();
    let mut decoded = Program::default();
    if decoded.decode(&words, &SmallHelper).is_ok() {
        let mut encoded = Vec::new();
        decoded.encode(&mut encoded);
        let mut again = Program::default();
        again
            .decode(&encoded, &SmallHelper)
            .expect("a re-encoded program decodes");
        assert_eq!(again, decoded);
    }
}

fn fetch_answer(input: &mut Input<'_>) {
    let want = usize::from(input.u16()).max(1);
    let capacity = usize::from(input.u16());
    let columns = usize::from(input.u8() % 16) + 1;
    let head: [u8; ANSWER_BYTES] = input.array();
    let Ok((_, rows, used)) = check_answer(&head, want, capacity) else {
        return;
    };
    assert!(rows <= want && used <= capacity);
    // The host copies `used` bytes out of the arena, whatever they are.
    let mut page = input.take(used).to_vec();
    page.resize(used, 0);
    let _ = walk_checked(&page, rows, columns);
}

fn message(arena: &FuzzArena, input: &mut Input<'_>) {
    let len = input.u32() % (2 * MESSAGE_CAPACITY as u32);
    let bytes = input.take(MESSAGE_CAPACITY);
    let area = arena.base().wrapping_add(MESSAGE_OFFSET);
    // SAFETY: the message area (at most MESSAGE_CAPACITY bytes from
    // `area`) lies inside the arena's control block, which the mapping
    // holds; the source is the fuzzer's input, host memory.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), area, bytes.len()) };
    match arena.message(len) {
        Ok(text) => {
            // Bytes past this input's are what an earlier input left there.
            if let Some(written) = bytes.get(..len as usize) {
                assert_eq!(text, String::from_utf8_lossy(written));
            }
        }
        Err(e) => {
            assert!(
                len as usize > MESSAGE_CAPACITY,
                "a {len}-byte message refused: {e}"
            );
            assert_eq!(e.kind, ErrorKind::Protocol);
        }
    }
}

const SCALARS: [ScalarType; 12] = ScalarType::ALL;

fn return_word(raw: u64) {
    for s in SCALARS {
        match decode_scalar(s, raw) {
            Value::F32(f) => assert_eq!(f.to_bits(), raw as u32),
            Value::F64(f) => assert_eq!(f.to_bits(), raw),
            v => {
                let i = v.as_i128().expect("an integer type decodes to an integer");
                let bits = 8 * s.size() as u32;
                let mask = if bits == 64 {
                    u64::MAX
                } else {
                    (1u64 << bits) - 1
                };
                assert_eq!(i as u64 & mask, raw & mask, "{s} of {raw:#x} is {v:?}");
                if s.is_signed() {
                    assert!(i >= -(1i128 << (bits - 1)) && i < (1i128 << (bits - 1)));
                } else {
                    assert!(i >= 0 && i < (1i128 << bits));
                }
            }
        }
    }
}

fn returned_string(page: &GuardedPage, input: &mut Input<'_>) {
    let bound = usize::from(input.u16()) % (2 * PAGE);
    let bytes = input.take(PAGE);
    let addr = page.place_at_end(bytes);
    let pid = std::process::id() as i32;
    let got = read_cstr_of(pid, addr, bound);
    match bytes.iter().position(|&b| b == 0) {
        Some(nul) if nul <= bound => assert_eq!(got.expect("a readable string"), &bytes[..nul]),
        Some(_) => assert_eq!(got.unwrap_err().kind, ErrorKind::ResourceLimit),
        None if bytes.len() > bound => assert_eq!(got.unwrap_err().kind, ErrorKind::ResourceLimit),
        None => assert_eq!(got.unwrap_err().kind, ErrorKind::Protocol),
    }
}

/// Everything a helper writes, decoded; the input's first byte says which
/// decoder gets the rest.
pub fn host_decode(data: &[u8]) {
    let mut input = Input::new(data);
    match input.u8() % 6 {
        0 => handshake(input.rest()),
        1 => program(input.rest()),
        2 => fetch_answer(&mut input),
        3 => message(crate::decode_arena(), &mut input),
        4 => return_word(input.u64()),
        _ => returned_string(crate::decode_page(), &mut input),
    }
}
