//! How figures read: durations, ratios, rates, sizes and command lines.

use crate::plan::{KIB, MIB};
use crate::report::Unit;

pub fn human(ns: f64) -> String {
    if !ns.is_finite() {
        "-".into()
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// "10 ns", "1 µs", "100 µs", "1 ms", ... for an axis in nanoseconds.
pub fn decade_label(ns: f64) -> String {
    let (v, unit) = if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    };
    format!("{} {unit}", trim(v))
}

pub fn fmt_value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Ns => human(v),
        Unit::Percent => format!("{v:.2} %"),
    }
}

pub fn fmt_ratio(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// A table cell for a ratio: "8.55x", or "-" for none.
pub fn ratio_cell(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| fmt_ratio(x) + "x")
}

pub fn fmt_rate(v: f64, unit: &str) -> String {
    match unit {
        "B/s" if v >= 1e9 => format!("{:.2} GB/s", v / 1e9),
        "B/s" => format!("{:.1} MB/s", v / 1e6),
        _ if v >= 1e6 => format!("{:.2} M/s", v / 1e6),
        _ => format!("{:.0} k/s", v / 1e3),
    }
}

/// "64B", "16KiB", "1MiB": the size in row names.
pub fn size_label(size: usize) -> String {
    if size >= MIB && size.is_multiple_of(MIB) {
        format!("{}MiB", size / MIB)
    } else if size >= KIB && size.is_multiple_of(KIB) {
        format!("{}KiB", size / KIB)
    } else {
        format!("{size}B")
    }
}

/// "64 B", "16 KiB", "1 MiB": the size on the plot's axis.
pub fn pretty_size(v: f64) -> String {
    if v >= MIB as f64 {
        format!("{} MiB", trim(v / MIB as f64))
    } else if v >= KIB as f64 {
        format!("{} KiB", trim(v / KIB as f64))
    } else {
        format!("{} B", trim(v))
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// `args` as a shell would read them back.
pub fn shell_words(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
