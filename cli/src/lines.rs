//! The lines of `ffb session`'s stdin, read so that every line gets an
//! answer: a line is at most [`MAX_LINE`] bytes (the rest of a longer one is
//! skipped, a bounded piece at a time), and one that is not UTF-8 is
//! refused by itself instead of ending the session.

use std::io::{BufRead, Read};

use ffb_loader::DEFAULT_ARENA;
use serde_json::Value as Json;

/// Longest request line: a `bytes` argument as large as the arena, written
/// as hex, with room for the rest of the request.
pub const MAX_LINE: usize = 2 * DEFAULT_ARENA + (1 << 20);

/// One line of stdin, as the session reads it.
pub enum Line {
    /// A line of UTF-8 text, without its newline.
    Text(String),
    /// A line that is not served, with the id it seems to carry (so that
    /// its answer can name it) and why.
    Refused { id: Json, why: String },
}

/// stdin as lines of at most [`MAX_LINE`] bytes, each answered: a line that
/// is not UTF-8 or is too long is [`Line::Refused`], never the end of the
/// session.
pub struct Lines<R> {
    input: R,
    buf: Vec<u8>,
    number: usize,
}

impl<R: BufRead> Lines<R> {
    /// Lines read from `input`.
    pub fn new(input: R) -> Self {
        Lines {
            input,
            buf: Vec::new(),
            number: 0,
        }
    }

    /// The 1-based number of the line last read.
    pub fn number(&self) -> usize {
        self.number
    }

    /// The next line; `None` at the end of the input.
    pub fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        self.buf.clear();
        let limit = MAX_LINE as u64 + 1;
        let n = (&mut self.input)
            .take(limit)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.number += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        } else if self.buf.len() > MAX_LINE {
            // Skip the rest of the line, a bounded piece at a time.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                let n = (&mut self.input)
                    .take(1 << 16)
                    .read_until(b'\n', &mut rest)?;
                if n == 0 || rest.last() == Some(&b'\n') {
                    break;
                }
            }
            return Ok(Some(Line::Refused {
                id: Json::Null,
                why: format!("longer than {} bytes; not served", MAX_LINE),
            }));
        }
        match std::str::from_utf8(&self.buf) {
            Ok(text) => Ok(Some(Line::Text(text.to_string()))),
            Err(e) => {
                // The id, if the line is JSON once the bad bytes are replaced.
                let lossy = String::from_utf8_lossy(&self.buf);
                let id = serde_json::from_str::<Json>(&lossy)
                    .ok()
                    .and_then(|v| v.get("id").cloned())
                    .unwrap_or(Json::Null);
                Ok(Some(Line::Refused {
                    id,
                    why: format!(
                        "not UTF-8 (byte {} is not valid): JSON text must be UTF-8; not served",
                        e.valid_up_to() + 1
                    ),
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn every_line_is_one_item_whatever_its_bytes() {
        let input = b"{\"id\":1}\n{\"id\":7,\"x\":\"caf\xe9\"}\n\xff\nlast".to_vec();
        let mut lines = Lines::new(Cursor::new(input));
        let mut got = Vec::new();
        while let Some(line) = lines.next_line().unwrap() {
            got.push(match line {
                Line::Text(t) => format!("text {t}"),
                Line::Refused { id, why } => format!("refused {id} {}", &why[..10]),
            });
        }
        assert_eq!(
            got,
            [
                "text {\"id\":1}",
                "refused 7 not UTF-8 ",
                "refused null not UTF-8 ",
                "text last"
            ]
        );
        assert_eq!(lines.number(), 4);
    }
}
