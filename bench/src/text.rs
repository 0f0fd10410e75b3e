//! The text report on stdout: how the run was made, the main table of
//! medians, p99s and ratios, the payload sweep, and every target's verdict.

use crate::context::Context;
use crate::format::{fmt_rate, fmt_value, human, ratio_cell, shell_words, size_label};
use crate::plan::SWEEP;
use crate::report::{Report, BASELINES};

pub fn print(r: &Report, ctx: &Context) {
    print_context(ctx);
    println!();
    println!("Medians and p99s. ÷in-proc = this ÷ the in-process call (how many times its cost);");
    println!("socket÷ / pipe÷ / futex÷ = that baseline ÷ this (how many times faster than it),");
    println!("each against the same measurement of that baseline in this run. Rows ending /blk");
    println!("are block-timed (1,000 calls per timing) and carry no timer overhead; the targets");
    println!("for the hot null call, add and mix4 are judged on them. Compared measurements are");
    println!(
        "interleaved (rounds, alternating pairs or equal-time windows) so that noise from the"
    );
    println!("rest of the machine falls on all of them alike.");
    println!();
    print_main(r);
    println!();
    if r.has(&format!("bridge_bytes_{}", size_label(SWEEP[0]))) {
        println!(
            "Payload sweep: median round trip with the payload carried both ways (p99 in brackets);"
        );
        println!("the ratio after each baseline is that baseline ÷ the bridge (for in-process: bridge ÷ it).");
        println!();
        print_sweep(r);
        println!();
    }
    let met = r.targets.iter().filter(|t| t.met()).count();
    println!("Targets: {met} of {} met.", r.targets.len());
    println!();
    print_targets(r);
}

/// The command, build, toolchain, machine, load and plan of the run.
fn print_context(ctx: &Context) {
    let m = &ctx.machine;
    println!("# ffb-bench");
    println!("command:    {}", shell_words(&ctx.command));
    if let Some(s) = &ctx.script {
        println!("via:        {s}");
    }
    for b in &ctx.build {
        println!("built with: {b}");
    }
    if let Some(t) = &ctx.toolchain {
        println!("toolchain:  {t}");
    }
    println!(
        "machine:    Linux {}, {} cpus ({}), {} GiB",
        m["kernel"].as_str().unwrap_or("?"),
        m["cpus"],
        m["cpu_model"].as_str().unwrap_or("?"),
        m["mem_gib"]
    );
    println!(
        "load avg:   {} at start, {} at end",
        ctx.load_start, ctx.load_end
    );
    println!(
        "run:        started {}, took {:.1} s; {}",
        ctx.started_utc, ctx.elapsed, ctx.plan_text
    );
}

/// Every main row: its figures, its ratios to each baseline, its rate and
/// the verdicts of the targets judged on it.
fn print_main(r: &Report) {
    let mut table = vec![header(
        "measurement|median|p99|÷in-proc|socket÷|pipe÷|futex÷|rate|target|what",
    )];
    for row in r.rows.iter().filter(|row| row.main) {
        let mut line = vec![
            row.name.clone(),
            fmt_value(row.median, row.unit),
            row.p99.map_or("-".into(), |v| fmt_value(v, row.unit)),
        ];
        for mech in BASELINES {
            line.push(ratio_cell(r.ratio(row, mech)));
        }
        line.push(row.rate.map_or("-".into(), |(v, u)| fmt_rate(v, u)));
        let verdicts: Vec<String> = r
            .targets_of(&row.name)
            .map(|t| format!("{} {}", t.id, t.verdict()))
            .collect();
        line.push(if verdicts.is_empty() {
            "-".into()
        } else {
            verdicts.join(", ")
        });
        line.push(row.what.clone());
        table.push(line);
    }
    print_table(
        &table,
        &[false, true, true, true, true, true, true, true, false],
    );
}

/// One line per payload size: the bridge, then each baseline and its ratio.
fn print_sweep(r: &Report) {
    let mut table = vec![header(
        "payload|bridge|in-process+copy|bridge÷|socket|÷bridge|pipe|÷bridge|futex|÷bridge",
    )];
    for &size in &SWEEP {
        let label = size_label(size);
        let cell = |prefix: &str| {
            let row = r.get(&format!("{prefix}_bytes_{label}"));
            format!(
                "{} [{}]",
                human(row.median),
                human(row.p99.unwrap_or(f64::NAN))
            )
        };
        let bridge = r.get(&format!("bridge_bytes_{label}"));
        let mut line = vec![label.clone(), cell("bridge")];
        for (prefix, mech) in [
            ("in_process", "in-process"),
            ("socket", "socket"),
            ("pipe", "pipe"),
            ("futex", "futex"),
        ] {
            line.push(cell(prefix));
            line.push(ratio_cell(r.ratio(bridge, mech)));
        }
        table.push(line);
    }
    print_table(
        &table,
        &[false, true, true, true, true, true, true, true, true],
    );
}

fn print_targets(r: &Report) {
    let mut table = vec![header("id|row|target|measured|verdict|judged on")];
    for t in &r.targets {
        table.push(vec![
            t.id.clone(),
            t.row.clone(),
            t.goal.clone(),
            t.shown.clone(),
            t.verdict().into(),
            t.basis.clone(),
        ]);
    }
    print_table(&table, &[false, false, false, false, false]);
}

/// A header line from its column names, separated by `|`.
fn header(names: &str) -> Vec<String> {
    names.split('|').map(str::to_string).collect()
}

/// Prints rows padded to column widths (right-aligned where `right`); the
/// last column is not padded.
fn print_table(rows: &[Vec<String>], right: &[bool]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
                break;
            }
            let pad = width[c].saturating_sub(cell.chars().count());
            if right.get(c).copied().unwrap_or(false) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
            line.push_str("  ");
        }
        println!("{}", line.trim_end());
    }
}
