//! A statement's results, from the first to the last: the first result
//! gives the column names (and starts the stream of rows) or the changes or
//! the error; rows come a page per handoff; a statement left before its end
//! is abandoned (a short remainder read and dropped in the helper, a long
//! one cancelled) and the connection's remaining results drained, so it is
//! ready for the next.

use std::ops::ControlFlow;

use super::program::initial_registers;
use super::values::{decode, Kind};
use super::{
    Postgres, Stream, PGRES_COMMAND_OK, PGRES_COPY_BOTH, PGRES_COPY_IN, PGRES_COPY_OUT,
    PGRES_EMPTY_QUERY, PGRES_SINGLE_TUPLE, PGRES_TUPLES_OK,
};
use crate::bridge::FunctionId;
use crate::error::{err, Error, ErrorKind, Result};
use crate::sql::calls::{batch, int, out, text};
use crate::sql::lifecycle::free_quietly;
use crate::sql::page::Decoder;
use crate::sql::{StatementId, Value};
use crate::value::Value as Raw;
use crate::FetchEnd;

/// A bound on the results read while draining one statement: more than a
/// statement can produce, so only a lying helper reaches it.
const DRAIN_LIMIT: usize = 64;
/// The most rows a statement left before its end has read and dropped
/// before it is cancelled instead: a short remainder costs no cancel (which
/// needs a connection of its own, and aborts an open transaction block).
const DRAIN_BEFORE_CANCEL: usize = 10_000;
/// `PQcancel`'s error buffer (its `out[256]`).
const CANCEL_MESSAGE_CAP: i32 = 256;
/// PostgreSQL's own limit on a result's columns.
const MAX_COLUMNS: usize = 1664;
/// Why a connection in COPY mode is of no more use.
const IN_COPY_MODE: &str =
    "the connection is in COPY mode, which the bridged driver does not support";

impl Postgres {
    /// Handles the statement's first result: column names and a stream for
    /// rows, or its changes, or its error.
    pub(super) fn first_result(&mut self, stmt: StatementId, res: Raw) -> Result<Vec<String>> {
        let one = std::slice::from_ref(&res);
        let outs = batch(
            &mut self.bridge,
            &[
                (self.fns.result_status, one),
                (self.fns.nfields, one),
                (self.fns.cmd_tuples, one),
            ],
        )?;
        let (status, nfields) = (int(&outs[0].ret), int(&outs[1].ret));
        let changes = text(&outs[2].ret).parse::<u64>().unwrap_or(0);
        match status {
            PGRES_SINGLE_TUPLE | PGRES_TUPLES_OK => {
                let n = usize::try_from(nfields)
                    .ok()
                    .filter(|&n| n <= MAX_COLUMNS)
                    .ok_or_else(|| {
                        Error::new(ErrorKind::Protocol, format!("PQnfields answered {nfields}"))
                    })?;
                let args: Vec<[Raw; 2]> =
                    (0..n).map(|j| [res.clone(), Raw::I32(j as i32)]).collect();
                // Names and types in one round trip.
                let mut calls: Vec<(FunctionId, &[Raw])> =
                    args.iter().map(|a| (self.fns.fname, &a[..])).collect();
                calls.extend(args.iter().map(|a| (self.fns.ftype, &a[..])));
                let outs = batch(&mut self.bridge, &calls)?;
                let names: Vec<String> = outs[..n].iter().map(|o| text(&o.ret)).collect();
                let kinds: Vec<Kind> = outs[n..]
                    .iter()
                    .map(|o| Kind::of(int(&o.ret) as u32))
                    .collect();
                let p = self.statements.get_mut(stmt)?;
                p.kinds = kinds;
                if status == PGRES_TUPLES_OK || n == 0 {
                    p.changes = changes;
                    self.bridge.call(self.fns.clear, &[res])?;
                    self.drain_results()?;
                    return Ok(if n == 0 { Vec::new() } else { names });
                }
                self.ensure_row_program(n)?;
                let init = initial_registers(res.clone(), self.conn.clone());
                let state = match self.bridge.fetch_state(&init) {
                    Ok(s) => s,
                    Err(e) => {
                        free_quietly(&mut self.bridge, self.fns.clear, &[res]);
                        return Err(e);
                    }
                };
                self.statements.get_mut(stmt)?.stream = Some(Stream {
                    state,
                    first: Some(res),
                    delivered: 0,
                });
                Ok(names)
            }
            PGRES_COMMAND_OK | PGRES_EMPTY_QUERY => {
                self.statements.get_mut(stmt)?.changes = changes;
                self.bridge.call(self.fns.clear, &[res])?;
                self.drain_results()?;
                Ok(Vec::new())
            }
            PGRES_COPY_IN | PGRES_COPY_OUT | PGRES_COPY_BOTH => {
                self.bridge.call(self.fns.clear, &[res])?;
                if status == PGRES_COPY_IN {
                    let args = [
                        self.conn.clone(),
                        Raw::str("COPY FROM STDIN is not supported by ffb"),
                    ];
                    self.bridge.call(self.fns.put_copy_end, &args)?;
                    self.drain_results()?;
                } else {
                    self.broken = Some(IN_COPY_MODE.into());
                }
                err(
                    ErrorKind::BadArgument,
                    "COPY ... FROM STDIN and COPY ... TO STDOUT are not supported by the bridged postgres driver",
                )
            }
            _ => {
                let e = self.result_error(&res);
                self.bridge.call(self.fns.clear, &[res])?;
                self.drain_results()?;
                Err(e)
            }
        }
    }

    /// Appends up to `max_rows` of the statement's rows to `out`: see
    /// [`Driver::fetch`](crate::sql::Driver::fetch).
    pub(super) fn fetch_rows(
        &mut self,
        stmt: StatementId,
        max_rows: usize,
        out: &mut Vec<Value>,
    ) -> Result<bool> {
        let p = self.statements.get_mut(stmt)?;
        p.failed.take()?;
        let Some(mut stream) = p.stream.take() else {
            return Ok(false);
        };
        let program = self
            .programs
            .get(&p.kinds.len())
            .expect("built with the stream");
        // A page whose cells are not what libpq's types say ends the
        // stream: the helper is not to be trusted with another page.
        let page = Decoder {
            columns: &p.kinds,
            decode,
            driver: "postgres",
        }
        .read_page(&mut self.bridge, program, &mut stream.state, max_rows, out)?;
        stream.delivered += page.rows;
        let past_first = stream.delivered >= 2 || matches!(page.end, FetchEnd::Ended { .. });
        if past_first {
            if let Some(first) = stream.first.take() {
                self.bridge.call(self.fns.clear, &[first])?;
            }
        }
        match page.end {
            FetchEnd::More => {
                self.statements.get_mut(stmt)?.stream = Some(stream);
                Ok(true)
            }
            FetchEnd::Ended { reason } if reason == PGRES_TUPLES_OK => {
                self.statements.get_mut(stmt)?.changes = stream.delivered;
                self.drain_results()?;
                Ok(false)
            }
            FetchEnd::Ended { .. } => {
                let e = self.connection_error();
                self.drain_results()?;
                // The rows before the error count; the error comes next.
                self.statements.get_mut(stmt)?.failed.after(page.rows, e)
            }
        }
    }

    /// Reads the connection's remaining results (there should be none or
    /// one) until `PQgetResult` says there are no more, freeing each.
    pub(super) fn drain_results(&mut self) -> Result<()> {
        let conn = [self.conn.clone()];
        for _ in 0..DRAIN_LIMIT {
            let res = self.bridge.call(self.fns.get_result, &conn)?.ret;
            if res == Raw::Null {
                return Ok(());
            }
            let status = int(&self
                .bridge
                .call(self.fns.result_status, std::slice::from_ref(&res))?
                .ret);
            self.bridge.call(self.fns.clear, &[res])?;
            if matches!(status, PGRES_COPY_OUT | PGRES_COPY_BOTH) {
                self.broken = Some(IN_COPY_MODE.into());
                return Ok(());
            }
        }
        self.broken = Some("libpq kept answering results after its statement ended".into());
        err(
            ErrorKind::Protocol,
            "libpq kept answering results after its statement ended",
        )
    }

    /// Ends a statement left before its end, and frees the first row's
    /// result: up to [`DRAIN_BEFORE_CANCEL`] of its remaining rows are read
    /// and dropped in the helper; a result with more is cancelled
    /// (`PQcancel`) and what the server sent before it stopped is dropped
    /// too, so leaving an endless result takes as long as leaving a short
    /// one. A statement that cannot be cancelled leaves the connection
    /// broken (its result is still coming), never a drain without end.
    pub(super) fn abandon(&mut self, stmt: StatementId) -> Result<()> {
        let Some(mut stream) = self
            .statements
            .get_mut(stmt)
            .ok()
            .and_then(|p| p.stream.take())
        else {
            return Ok(());
        };
        let mut end = self.drop_rows(&mut stream, DRAIN_BEFORE_CANCEL);
        if matches!(end, Ok(FetchEnd::More)) {
            end = match self.cancel_statement() {
                Ok(()) => self.drop_rows(&mut stream, usize::MAX),
                Err(e) => {
                    self.broken = Some(format!(
                        "a result left before its end could not be cancelled: {e}"
                    ));
                    Err(e)
                }
            };
        }
        if let Some(first) = stream.first.take() {
            self.bridge.call(self.fns.clear, &[first])?;
        }
        if end? == FetchEnd::More {
            // usize::MAX rows were dropped and more keep coming.
            self.broken = Some("libpq kept answering rows after a cancel".into());
            return err(
                ErrorKind::Protocol,
                "libpq kept answering rows after a cancel",
            );
        }
        self.drain_results()
    }

    /// Reads and drops up to `max_rows` rows of `stream` in the helper.
    fn drop_rows(&mut self, stream: &mut Stream, max_rows: usize) -> Result<FetchEnd> {
        self.ensure_drain_program()?;
        stream.state.set_page_rows(1 << 20);
        let program = self.drain.as_ref().expect("built above");
        self.bridge
            .fetch(program, &mut stream.state, max_rows, |_| {
                ControlFlow::Continue(())
            })
    }

    /// Asks the server to cancel the running statement (`PQcancel`, on a
    /// connection of its own to the same server: the helper's policy grants
    /// that endpoint). The statement then ends with an error result, which
    /// the caller drains.
    fn cancel_statement(&mut self) -> Result<()> {
        if self.cancel == Raw::Null {
            return Err(Error::foreign(
                "postgres",
                "08006",
                "libpq gave no cancel handle (PQgetCancel)",
            ));
        }
        let args = [self.cancel.clone(), Raw::I32(CANCEL_MESSAGE_CAP)];
        let o = self.bridge.call(self.fns.cancel, &args)?;
        if int(&o.ret) == 1 {
            return Ok(());
        }
        let message = match out(&o, 1) {
            Raw::Bytes(b) => {
                let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                String::from_utf8_lossy(&b[..end]).trim_end().to_string()
            }
            _ => String::new(),
        };
        Err(Error::foreign(
            "postgres",
            "08006",
            format!("PQcancel: {message}"),
        ))
    }

    /// Abandons whichever statement is still streaming: libpq runs one at a
    /// time.
    pub(super) fn abandon_all(&mut self) -> Result<()> {
        for stmt in self.statements.ids_where(|p| p.stream.is_some()) {
            self.abandon(stmt)?;
        }
        Ok(())
    }
}
