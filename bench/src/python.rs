//! The Python helper ([`ffb_loader::python`]): a hot small call
//! (`operator.add(2, 3)`, two ints in, an int out) beside its baselines,
//! and helper starts. The baselines are measured by the project's `.venv`
//! interpreter running `bench/python/baselines.py` in the same run: the
//! call made in process by CPython, the call in a `multiprocessing` child
//! with pickle over a pipe, and the call in a subprocess speaking
//! MessagePack over pipes.
//!
//! Without `.venv` (made by `scripts/python.sh`, which `scripts/bench.sh`
//! runs) the step says so on stderr and records nothing.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use ffb_loader::python::{PyBridge, PyValue};
use ffb_loader::BridgeMode;

use crate::measure::{ns_since, per_block, per_call};
use crate::plan::Plan;
use crate::progress;
use crate::report::{Report, Unit};

const VENV_PYTHON: &str = ".venv/bin/python";
const BASELINES: &str = "bench/python/baselines.py";

/// The step: see the module docs.
pub fn measure(r: &mut Report, plan: &Plan) -> Result<(), String> {
    if !Path::new(VENV_PYTHON).is_file() {
        eprintln!("ffb-bench: Python rows skipped: no {VENV_PYTHON} (scripts/python.sh makes it)");
        return Ok(());
    }
    progress::step("Python helper: hot call and starts");
    let cold = start_samples(3, |b| b.preimport(false))?;
    let mut py = PyBridge::builder()
        .bridge_mode(BridgeMode::Enabled)
        .build()
        .map_err(|e| format!("starting a Python bridge: {e}"))?;
    let args = [PyValue::Int(2), PyValue::Int(3)];
    let mut call = || {
        let v = py.call("operator:add", &args, &[]).expect("operator.add");
        debug_assert_eq!(v, PyValue::Int(5));
    };
    let samples = per_call(plan.warm, plan.calls, &mut call);
    r.timed(
        "python_add",
        "python_add",
        None,
        "per-call median",
        "operator.add(2, 3) through the Python helper (hot, system CPython 3.11)",
        samples,
    );
    let blocks = per_block(plan.blocks, &mut call);
    r.timed(
        "python_add/blk",
        "python_add/blk",
        None,
        "block-timed median",
        "the same, timed in blocks of 1,000",
        blocks,
    );
    drop(py);
    let out = Command::new(VENV_PYTHON)
        .args([BASELINES, &plan.calls.to_string()])
        .output()
        .map_err(|e| format!("running {BASELINES}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{BASELINES} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let base: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{BASELINES} printed no JSON: {e}"))?;
    for (key, name, what) in [
        (
            "in_process",
            "python_inproc_add",
            "operator.add(2, 3) in process in CPython (blocks of 10,000)",
        ),
        (
            "multiprocessing",
            "python_mp_pickle_add",
            "the same in a multiprocessing child, pickle over a Pipe",
        ),
        (
            "msgpack_pipe",
            "python_msgpack_pipe_add",
            "the same in a subprocess, MessagePack over its stdin/stdout",
        ),
    ] {
        let ns = base[key]
            .as_f64()
            .ok_or_else(|| format!("{BASELINES}: no {key}"))?;
        r.value(
            name,
            Unit::Ns,
            what,
            "median, measured by the .venv interpreter",
            ns,
            plan.calls,
        );
    }
    r.value(
        "python_start_cold",
        Unit::Ns,
        "a Python helper's start: probe, spawn, interpreter init, no imports",
        "median of 3 whole PyBridge::build",
        median(cold),
        3,
    );
    let pandas = start_samples(3, |b| b.python(VENV_PYTHON).allow_module("pandas"))?;
    r.value(
        "python_start_pandas",
        Unit::Ns,
        "a Python helper's start with pandas imported (no zygote yet: every start imports it)",
        "median of 3 whole PyBridge::build",
        median(pandas),
        3,
    );
    Ok(())
}

/// Times `n` whole starts of a bridge configured by `configure`.
fn start_samples(
    n: usize,
    configure: impl Fn(ffb_loader::python::PyBridgeBuilder) -> ffb_loader::python::PyBridgeBuilder,
) -> Result<Vec<f64>, String> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let py = configure(PyBridge::builder().bridge_mode(BridgeMode::Enabled))
            .build()
            .map_err(|e| format!("starting a Python bridge: {e}"))?;
        samples.push(ns_since(t));
        drop(py);
    }
    Ok(samples)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
