//! Reading a page back: the answer's header checked ([`check_answer`]) and
//! the page decoded exactly ([`decode_page`]), both from the host's own
//! copy, so every byte the helper wrote is read once.

use std::ops::ControlFlow;

use ffb_contract::wire::fetch::{answer, CellTag, Outcome, Shape, ANSWER_BYTES};

use super::Cell;
use crate::error::{Error, ErrorKind};

pub(super) fn protocol(why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Protocol,
        format!("the helper's fetch answer is inconsistent ({why}); it was killed"),
    )
}

/// Word `i` of an answer header.
pub(super) fn answer_word(head: &[u8; ANSWER_BYTES], i: usize) -> u64 {
    u64::from_ne_bytes(head[8 * i..8 * i + 8].try_into().expect("8 bytes"))
}

/// Checks an answer header, already copied out of the arena once: a known
/// outcome, at most `want` rows, at most `capacity` page bytes, and no full
/// page without rows. Returns the outcome, the rows and the bytes used.
pub(crate) fn check_answer(
    head: &[u8; ANSWER_BYTES],
    want: usize,
    capacity: usize,
) -> std::result::Result<(Outcome, usize, usize), String> {
    let word = |i: usize| answer_word(head, i);
    let outcome = Outcome::from_u64(word(answer::OUTCOME))
        .ok_or_else(|| format!("outcome {}", word(answer::OUTCOME)))?;
    let (rows, used) = (word(answer::ROWS), word(answer::BYTES));
    if rows > want as u64 {
        return Err(format!("{rows} rows where at most {want} were asked for"));
    }
    if used > capacity as u64 {
        return Err(format!("{used} bytes in a {capacity}-byte page"));
    }
    if outcome == Outcome::PageFull && rows == 0 {
        return Err("a full page with no rows".into());
    }
    Ok((outcome, rows as usize, used as usize))
}

/// Decodes `rows` rows of `columns` cells of `page` into `cells` (cleared
/// first), exactly: every tag known, every length inside the page, and
/// nothing left over. One pass over the page; nothing of it is read twice.
pub(super) fn decode_page<'a>(
    page: &'a [u8],
    rows: usize,
    columns: usize,
    cells: &mut Vec<Cell<'a>>,
) -> std::result::Result<(), String> {
    cells.clear();
    let total = rows
        .checked_mul(columns)
        .ok_or_else(|| format!("{rows} rows of {columns} cells"))?;
    // Every cell takes at least its tag byte, so a page holds at most its
    // length in cells: a forged row count cannot make this reserve more.
    cells.reserve(total.min(page.len()));
    let past = || format!("a cell runs past the page's {} bytes", page.len());
    let mut rest = page;
    for _ in 0..total {
        let (&t, after_tag) = rest.split_first().ok_or_else(past)?;
        let tag = CellTag::from_u8(t).ok_or_else(|| format!("unknown cell tag {t}"))?;
        let cell = match tag.shape() {
            Shape::Word => {
                let (w, after) = after_tag.split_first_chunk::<8>().ok_or_else(past)?;
                rest = after;
                let w = u64::from_ne_bytes(*w);
                match tag {
                    CellTag::Int => Cell::Int(w as i64),
                    _ => Cell::Float(f64::from_bits(w)),
                }
            }
            Shape::Bytes => {
                let (n, after_len) = after_tag.split_first_chunk::<4>().ok_or_else(past)?;
                let n = u32::from_ne_bytes(*n) as usize;
                let (bytes, after) = after_len.split_at_checked(n).ok_or_else(past)?;
                rest = after;
                match tag {
                    CellTag::Text => Cell::Text(bytes),
                    _ => Cell::Blob(bytes),
                }
            }
            Shape::Empty => {
                rest = after_tag;
                Cell::Null
            }
        };
        cells.push(cell);
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes past the last row", rest.len()));
    }
    Ok(())
}

/// Decodes a page whole ([`decode_page`]), then calls `each` with its rows
/// in order until one breaks off.
pub(crate) fn walk<'a>(
    page: &'a [u8],
    rows: usize,
    columns: usize,
    cells: &mut Vec<Cell<'a>>,
    mut each: impl FnMut(&[Cell<'a>]) -> ControlFlow<()>,
) -> std::result::Result<ControlFlow<()>, String> {
    decode_page(page, rows, columns, cells)?;
    Ok(deliver(cells, rows, columns, &mut each))
}

/// Calls `each` with the `rows` rows of `columns` cells in `cells`, in
/// order, until one breaks off.
pub(super) fn deliver<'a>(
    cells: &[Cell<'a>],
    rows: usize,
    columns: usize,
    mut each: impl FnMut(&[Cell<'a>]) -> ControlFlow<()>,
) -> ControlFlow<()> {
    for row in 0..rows {
        if each(&cells[row * columns..(row + 1) * columns]).is_break() {
            return ControlFlow::Break(());
        }
    }
    ControlFlow::Continue(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_of(cells: &[(u8, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        for (tag, body) in cells {
            v.push(*tag);
            v.extend_from_slice(body);
        }
        v
    }

    #[test]
    fn a_page_is_walked_exactly() {
        let blob = [4u8, 0, 0, 0, 0, 0xff, 0, 7];
        let mut text = 3u32.to_ne_bytes().to_vec();
        text.extend_from_slice(b"a\0b");
        let page = page_of(&[
            (1, &(-5i64).to_ne_bytes()),
            (2, &1.5f64.to_ne_bytes()),
            (3, &text),
            (4, &blob),
            (5, &[]),
        ]);
        let mut rows = Vec::new();
        let mut cells = Vec::new();
        let r = walk(&page, 1, 5, &mut cells, |row| {
            rows.push(format!("{row:?}"));
            ControlFlow::Continue(())
        });
        assert_eq!(r, Ok(ControlFlow::Continue(())));
        assert_eq!(
            rows,
            [r#"[Int(-5), Float(1.5), Text([97, 0, 98]), Blob([0, 255, 0, 7]), Null]"#]
        );
        let fails = |page: &[u8], rows: usize, cols: usize| {
            walk(page, rows, cols, &mut Vec::new(), |_| {
                ControlFlow::Continue(())
            })
            .unwrap_err()
        };
        // Too few cells, too many bytes, a bad tag, a length past the end.
        assert!(fails(&page, 1, 6).contains("past the page"));
        assert!(fails(&page, 1, 4).contains("1 bytes past the last row"));
        assert!(fails(&page, 2, 5).contains("past the page"));
        assert!(fails(&[9], 1, 1).contains("unknown cell tag 9"));
        assert!(fails(&[3, 0xff, 0xff, 0xff, 0xff, 0], 1, 1).contains("past the page"));
        assert!(fails(&[1, 0, 0], 1, 1).contains("past the page"));
        assert_eq!(
            walk(&[], 0, 3, &mut cells, |_| ControlFlow::Continue(())),
            Ok(ControlFlow::Continue(()))
        );
    }
}
