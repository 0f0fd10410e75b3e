//! The `--plot` SVG: median round trip by payload size, log-log, one line
//! per mechanism.

use std::path::Path;

use plotters::prelude::*;

use crate::context::Context;
use crate::format::{decade_label, pretty_size};
use crate::plan::{MIB, SWEEP};
use crate::report::Report;

/// One line of the plot: its label, colour and (bytes, µs) points.
type Series = (&'static str, RGBColor, Vec<(f64, f64)>);

/// The lines, in legend order: label, mechanism, colour.
const LINES: [(&str, &str, RGBColor); 5] = [
    (
        "ffb bridge (bytes copied in and out)",
        "bridge",
        RGBColor(200, 30, 30),
    ),
    (
        "in-process call + 2 memcpy",
        "in-process",
        RGBColor(60, 60, 60),
    ),
    ("unix socket helper", "socket", RGBColor(30, 90, 200)),
    ("pipe helper", "pipe", RGBColor(30, 150, 60)),
    (
        "futex helper (shared memory)",
        "futex",
        RGBColor(200, 130, 0),
    ),
];

pub fn draw(r: &Report, ctx: &Context, path: &Path) -> Result<(), String> {
    let series = series(r);
    let (lo, hi) = y_range(&series)?;
    let decades: Vec<f64> = (lo.log10().round() as i32..=hi.log10().round() as i32)
        .map(|p| 10f64.powi(p))
        .collect();
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let root = SVGBackend::new(path, (960, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let caption = format!(
        "ffb round trip by payload size (median, payload both ways), {}",
        ctx.started_utc
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (32f64..(8 * MIB) as f64)
                .log_scale()
                .with_key_points(SWEEP.iter().map(|&s| s as f64).collect()),
            (lo..hi).log_scale().with_key_points(decades),
        )
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("payload each way (bytes)")
        .y_desc("median round trip")
        .x_label_formatter(&|v| pretty_size(*v))
        .y_label_formatter(&|v| decade_label(v * 1e3))
        .draw()
        .map_err(e)?;
    for (label, color, points) in series {
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)).point_size(4))
            .map_err(e)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(e)?;
    root.draw(&footer(ctx)).map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// Each line's measured points, in µs (sizes with no positive median left out).
fn series(r: &Report) -> Vec<Series> {
    LINES
        .into_iter()
        .map(|(label, mech, color)| {
            let points = SWEEP
                .iter()
                .filter_map(|&size| {
                    r.sweep_row(size, mech)
                        .filter(|row| row.median > 0.0)
                        .map(|row| (size as f64, row.median / 1e3))
                })
                .collect();
            (label, color, points)
        })
        .collect()
}

/// The y axis: whole decades around every point.
fn y_range(series: &[Series]) -> Result<(f64, f64), String> {
    let all = series.iter().flat_map(|s| s.2.iter().map(|p| p.1));
    let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return Err("no sweep data".into());
    }
    Ok((
        10f64.powf((lo * 0.95).log10().floor()),
        10f64.powf((hi * 1.05).log10().ceil()),
    ))
}

/// The machine and load, under the chart.
fn footer(ctx: &Context) -> Text<'static, (i32, i32), String> {
    let machine = &ctx.machine;
    Text::new(
        format!(
            "Linux {}, {} cpus, {}; load avg {} → {}",
            machine["kernel"].as_str().unwrap_or("?"),
            machine["cpus"],
            machine["cpu_model"].as_str().unwrap_or("?"),
            ctx.load_start,
            ctx.load_end
        ),
        (20, 620),
        ("sans-serif", 12).into_font().color(&RGBColor(90, 90, 90)),
    )
}
