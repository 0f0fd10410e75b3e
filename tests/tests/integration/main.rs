//! ffb's integration tests that can share a process, as one test binary
//! (`cargo test -p ffb-tests --test integration`; add a filter such as
//! `pool::` to run one module).
//!
//! One binary, not one per file: each test binary links ffb and its
//! dependencies on its own, and on a small machine the links cost more than
//! the tests. Every module here must therefore tolerate the others running
//! beside it in the same process, on other threads: the fork server, the
//! process's children and fds, and its signal dispositions are shared. A
//! test that counts what the whole process holds belongs in a binary of its
//! own beside this directory, as `errors.rs` (it counts the fork server's
//! children), `leaks.rs` (fds, children, mappings) and `stress_leaks.rs` (the
//! same, after a stress run under random kills) do.
//!
//! What the modules share across the process, and why that is fine:
//! * `stress` installs a SIGUSR2 handler without `SA_RESTART` and sends
//!   SIGUSR2 only to its own thread; nothing else uses SIGUSR2.
//! * `pool::dropping_the_pool_stops_its_reaper` counts reaper threads, so it
//!   runs its check in a fresh copy of this binary, filtered to one test.
//! * `cli::session_eof_exits_0_and_leaves_no_helper_behind` watches only the
//!   session's own process tree.

// `&[token.clone()]` reads as the call it builds.
#![allow(clippy::cloned_ref_to_slice_refs)]

/// Declares the modules, and lists them for
/// [`every_file_here_is_a_module`]: cargo compiles a file in this directory
/// only if it is declared, so a forgotten one would silently not run.
macro_rules! modules {
    ($($name:ident),* $(,)?) => {
        $(mod $name;)*
        const MODULES: &[&str] = &[$(stringify!($name)),*];
    };
}

modules!(
    abi_fuzz,
    abi_matrix,
    api,
    batch,
    cli,
    cli_input,
    defence_identity,
    defence_namespaces,
    defence_imported,
    defence_output,
    defence_process,
    defence_routes,
    differential,
    differential_libs,
    fetch,
    grants,
    handles,
    hostile,
    manifests,
    ordering,
    policy_cli,
    pool,
    python,
    real_libs,
    sandbox_layers,
    servers,
    sql_api,
    sql_cli,
    sql_confinement,
    sql_recovery,
    sql_odbc,
    sql_postgres,
    stress,
);

#[test]
fn every_file_here_is_a_module() {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/integration"));
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".rs").map(str::to_string))
        .filter(|f| f != "main")
        .collect();
    files.sort();
    let mut modules: Vec<&str> = MODULES.to_vec();
    modules.sort();
    assert_eq!(
        files,
        modules,
        "a file in {} is not declared in main.rs",
        dir.display()
    );
}
