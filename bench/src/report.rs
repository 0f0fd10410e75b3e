//! What a run measured: one [`Row`] per figure, the targets judged on them,
//! and the ratios between a row and the same measurement of each baseline.

use crate::format::size_label;
use crate::measure::summarize;
use crate::targets::Target;

/// The baselines, in column order.
pub const BASELINES: [&str; 4] = ["in-process", "socket", "pipe", "futex"];

#[derive(Clone, Copy, PartialEq)]
pub enum Unit {
    Ns,
    Percent,
}

pub struct Row {
    pub name: String,
    /// Rows in the same group measure the same thing by different mechanisms.
    pub group: String,
    /// "bridge", or the baseline this row measures.
    pub mech: Option<&'static str>,
    pub what: String,
    pub method: String,
    pub unit: Unit,
    pub median: f64,
    pub p99: Option<f64>,
    pub samples: usize,
    /// A throughput: value and unit ("B/s" or "calls/s").
    pub rate: Option<(f64, &'static str)>,
    /// Shown in the main table (sweep rows have their own).
    pub main: bool,
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub targets: Vec<Target>,
}

impl Report {
    /// Adds a row of nanosecond `samples` (its median and p99).
    pub fn timed(
        &mut self,
        name: &str,
        group: &str,
        mech: Option<&'static str>,
        method: &str,
        what: &str,
        samples: Vec<f64>,
    ) -> &mut Row {
        let (median, p99, n) = summarize(samples);
        self.rows.push(Row {
            name: name.into(),
            group: group.into(),
            mech,
            what: what.into(),
            method: method.into(),
            unit: Unit::Ns,
            median,
            p99: Some(p99),
            samples: n,
            rate: None,
            main: true,
        });
        self.rows.last_mut().expect("just pushed")
    }

    /// Adds a row of one figure, with no p99.
    pub fn value(
        &mut self,
        name: &str,
        unit: Unit,
        what: &str,
        method: &str,
        v: f64,
        samples: usize,
    ) {
        self.rows.push(Row {
            name: name.into(),
            group: name.into(),
            mech: None,
            what: what.into(),
            method: method.into(),
            unit,
            median: v,
            p99: None,
            samples,
            rate: None,
            main: true,
        });
    }

    /// Whether a row of that name was measured.
    pub fn has(&self, name: &str) -> bool {
        self.rows.iter().any(|r| r.name == name)
    }

    pub fn get(&self, name: &str) -> &Row {
        self.rows
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no row {name}"))
    }

    pub fn median(&self, name: &str) -> f64 {
        self.get(name).median
    }

    /// The sweep's row for `mech` carrying `size` bytes each way.
    pub fn sweep_row(&self, size: usize, mech: &str) -> Option<&Row> {
        let group = format!("bytes/{}", size_label(size));
        self.rows
            .iter()
            .find(|row| row.group == group && row.mech == Some(mech))
    }

    fn baseline_of(&self, row: &Row, mech: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|o| o.group == row.group && o.mech == Some(mech) && o.name != row.name)
    }

    /// `this ÷ in-process` for the in-process column, `baseline ÷ this`
    /// (how many times faster than it) for the others.
    pub fn ratio(&self, row: &Row, mech: &str) -> Option<f64> {
        if row.unit != Unit::Ns || row.median <= 0.0 {
            return None;
        }
        let base = self.baseline_of(row, mech)?;
        if base.median <= 0.0 {
            return None;
        }
        Some(if mech == "in-process" {
            row.median / base.median
        } else {
            base.median / row.median
        })
    }

    /// The verdicts of the targets judged on `row`.
    pub fn targets_of<'a>(&'a self, row: &'a str) -> impl Iterator<Item = &'a Target> + 'a {
        self.targets.iter().filter(move |t| t.row == row)
    }
}

/// Bytes per second for `bytes` moved in a median of `ns`.
pub fn bytes_per_s(bytes: usize, ns: f64) -> f64 {
    bytes as f64 / ns * 1e9
}
