//! The `--json` document: every row, ratio, target and verdict, the sweep
//! as series, and the run's context.

use serde_json::{json, Value};

use crate::context::Context;
use crate::plan::{Plan, SWEEP};
use crate::report::{Report, Row, Unit, BASELINES};
use crate::targets::Target;

/// The mechanisms of the sweep series, in order.
const SERIES: [&str; 5] = ["bridge", "in-process", "socket", "pipe", "futex"];

pub fn document(r: &Report, ctx: &Context, plan: &Plan) -> Value {
    let rows: Vec<_> = r.rows.iter().map(|row| row_json(r, row)).collect();
    let targets: Vec<_> = r.targets.iter().map(target_json).collect();
    json!({
        "command": ctx.command,
        "script": ctx.script,
        "build_commands": ctx.build,
        "toolchain": ctx.toolchain,
        "started_utc": ctx.started_utc,
        "elapsed_s": ctx.elapsed,
        "quick": plan.quick,
        "calls": plan.calls,
        "plan": ctx.plan_text,
        "machine": ctx.machine,
        "loadavg_start": ctx.load_start,
        "loadavg_end": ctx.load_end,
        "notes": [
            "Per-call figures include one Instant::now() pair (the timer row); rows ending /blk are block-timed (1,000 calls per timing, median over blocks of the time per call) and carry no timer overhead.",
            "Targets for the hot null call, add and mix4 are judged on the block-timed medians.",
            "ratios.in_process = this median / the in-process median of the same group; ratios.socket, .pipe, .futex = that baseline's median / this median (how many times faster than it).",
            "Rates: B/s counts the payload both ways for the sweep and memcpy_2x1MiB, and 16 MiB once for the zero-copy rows.",
        ],
        "results": rows,
        "targets": targets,
        "sweep": sweep_json(r),
    })
}

fn row_json(r: &Report, row: &Row) -> Value {
    let unit = match row.unit {
        Unit::Ns => "ns",
        Unit::Percent => "percent_of_a_core",
    };
    let ratios: serde_json::Map<String, Value> = BASELINES
        .iter()
        .filter_map(|m| r.ratio(row, m).map(|x| (m.replace('-', "_"), json!(x))))
        .collect();
    json!({
        "name": row.name,
        "group": row.group,
        "mechanism": row.mech,
        "what": row.what,
        "method": row.method,
        "unit": unit,
        "median": row.median,
        "p99": row.p99,
        "samples": row.samples,
        "rate": row.rate.map(|(v, u)| json!({"value": v, "unit": u})),
        "ratios": ratios,
        "targets": r.targets_of(&row.name).map(|t| t.id.clone()).collect::<Vec<_>>(),
    })
}

fn target_json(t: &Target) -> Value {
    json!({
        "id": t.id,
        "row": t.row,
        "target": t.goal,
        "figure": t.figure,
        "comparison": if t.at_most { "<=" } else { ">=" },
        "limit": t.limit,
        "measured": t.shown,
        "judged_on": t.basis,
        "met": t.met(),
    })
}

/// Per mechanism, its sweep points in size order.
fn sweep_json(r: &Report) -> Value {
    let mut series = serde_json::Map::new();
    for mech in SERIES {
        let points: Vec<_> = SWEEP
            .iter()
            .filter_map(|&size| {
                r.sweep_row(size, mech)
                    .map(|row| json!({"bytes": size, "median_ns": row.median, "p99_ns": row.p99}))
            })
            .collect();
        series.insert(mech.into(), json!(points));
    }
    Value::Object(series)
}
