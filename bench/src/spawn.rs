//! Helper start: the first (cold) one, then from a warm fork server, and
//! under each `--policy` (parsed and compiled every time, as a caller would).

use std::time::Instant;

use ffb_loader::Bridge;

use crate::fixture;
use crate::measure::ns_since;
use crate::plan::{Plan, MAIN_ARENA};
use crate::progress;
use crate::report::Report;

pub fn measure(r: &mut Report, plan: &Plan, lib: &str, policies: &[String]) -> Result<(), String> {
    progress::step("helper start");
    let cold = timed_loads(1, || fixture::load(lib, MAIN_ARENA))?;
    r.timed(
        "spawn_cold",
        "spawn_cold",
        None,
        "one sample",
        "first helper: fork server exec + fork + seccomp + dlopen + resolve",
        cold,
    );
    let warm = timed_loads(plan.warm_spawns, || fixture::load(lib, MAIN_ARENA))?;
    r.timed(
        "spawn_warm",
        "spawn_warm",
        None,
        "per load()",
        "helper from a warm fork server: fork + seccomp + dlopen + resolve",
        warm,
    );
    for spec in policies {
        let spawns = timed_loads(plan.warm_spawns, || {
            let policy = ffb_policy::source::load_policy(spec).map_err(|e| e.to_string())?;
            fixture::builder(lib, MAIN_ARENA)
                .policy(policy)
                .load()
                .map_err(|e| e.to_string())
        })?;
        r.timed(
            &format!("spawn_policy:{spec}"),
            "spawn_policy",
            None,
            "per load()",
            "policy parse + compile + helper start under it, warm fork server",
            spawns,
        );
    }
    Ok(())
}

/// Times `n` calls of `load`; each bridge is dropped (its helper ended)
/// after its timing, before the next load.
fn timed_loads(
    n: usize,
    mut load: impl FnMut() -> Result<Bridge, String>,
) -> Result<Vec<f64>, String> {
    let mut spawns = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let b = load()?;
        spawns.push(ns_since(t));
        drop(b);
    }
    Ok(spawns)
}
