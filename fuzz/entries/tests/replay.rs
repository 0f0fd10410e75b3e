//! Every saved corpus entry (`fuzz/corpus/TARGET/`) and every regression
//! input (`fuzz/regressions/TARGET/`, the minimized crashes the fuzzers
//! found) goes through its target's function again, as an ordinary test:
//! a crash, once fixed, stays fixed without a fuzzer running.

use std::path::{Path, PathBuf};

use ffb_fuzz_entries::{Target, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The files in `dir`, sorted; none when it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| {
            e.unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `target` on every input in `dir`; returns the failures, one line each.
fn replay(name: &str, target: Target, dir: &Path) -> (usize, Vec<String>) {
    let files = inputs(dir);
    let mut failures = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if let Err(panic) = std::panic::catch_unwind(|| target(&bytes)) {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            failures.push(format!("{name}: {}: {why}", file.display()));
        }
    }
    (files.len(), failures)
}

#[test]
fn every_corpus_entry_and_regression_replays() {
    let mut failures = Vec::new();
    for &(name, target) in TARGETS {
        let (seeds, mut failed) = replay(name, target, &fuzz_dir().join("corpus").join(name));
        assert!(seeds > 0, "fuzz/corpus/{name}/ has no seeds");
        failures.append(&mut failed);
        let (_, mut failed) = replay(name, target, &fuzz_dir().join("regressions").join(name));
        failures.append(&mut failed);
    }
    assert!(
        failures.is_empty(),
        "{} inputs fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_input_directory_names_a_target() {
    for top in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(top)) else {
            continue;
        };
        for entry in entries {
            let name = entry.expect("a directory entry").file_name();
            let name = name.to_string_lossy();
            assert!(
                TARGETS.iter().any(|&(t, _)| t == name),
                "fuzz/{top}/{name} is no target's: its inputs would never replay"
            );
        }
    }
}
