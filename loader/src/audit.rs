//! The audit log: one JSON line per violation, crash, timeout, resource-limit
//! hit and respawn, written from the host's view of events. Nothing in a line
//! comes from the extension: syscall numbers and arguments come from the
//! kernel's seccomp notification, exit statuses from the fork server.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::json;

use crate::error::{Error, ErrorKind, Result};

/// Where audit lines go. Shared by every helper of a bridge (and of a pool).
#[derive(Debug)]
pub(crate) struct AuditLog {
    file: Mutex<File>,
    library: String,
    policy: String,
    policy_hash: String,
    losses: Arc<AuditLosses>,
}

/// Audit lines that could not be written (a full disk, a quota, an I/O
/// error): how many, and the first error, so that a lost event is reported
/// instead of vanishing.
#[derive(Debug, Default)]
pub(crate) struct AuditLosses {
    count: AtomicU64,
    first: Mutex<Option<String>>,
}

impl AuditLosses {
    /// Counts one line lost to `e`, keeping the first error.
    fn note(&self, e: &std::io::Error) {
        let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert_with(|| e.to_string());
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// How many lines were lost and the first error, if any was.
    pub fn get(&self) -> Option<(u64, String)> {
        let first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        let count = self.count.load(Ordering::Relaxed);
        first.clone().map(|e| (count, e))
    }
}

/// What happened.
pub(crate) struct AuditEvent<'a> {
    pub event: &'a str,
    pub function: Option<&'a str>,
    pub syscall: Option<(i64, [u64; 6])>,
    pub action: &'a str,
    pub pid: i32,
    pub detail: Option<&'a Error>,
}

impl AuditLog {
    pub fn open(path: &Path, library: &str, policy: &str, policy_hash: String) -> Result<AuditLog> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                Error::new(
                    ErrorKind::LoadFailed,
                    format!("cannot open the audit log '{}': {e}", path.display()),
                )
            })?;
        Ok(AuditLog {
            file: Mutex::new(file),
            library: library.to_string(),
            policy: policy.to_string(),
            policy_hash,
            losses: Arc::default(),
        })
    }

    /// The lines this log could not write: see [`AuditLosses::get`].
    pub fn losses(&self) -> Option<(u64, String)> {
        self.losses.get()
    }

    /// The counter of lines lost, which outlives the log (a pool keeps its
    /// finished members' counts).
    pub fn loss_counter(&self) -> Arc<AuditLosses> {
        Arc::clone(&self.losses)
    }

    pub fn record(&self, e: &AuditEvent<'_>) {
        let mut line = json!({
            "time": rfc3339_now(),
            "event": e.event,
            "library": self.library,
            "policy": self.policy,
            "policy_hash": self.policy_hash,
            "function": e.function,
            "action": e.action,
            "pid": e.pid,
        });
        if let Some((nr, args)) = e.syscall {
            line["syscall"] = json!(ffb_policy::syscalls::display_name(nr));
            line["nr"] = json!(nr);
            line["args"] = json!(args.iter().map(|a| format!("{a:#x}")).collect::<Vec<_>>());
        }
        if let Some(err) = e.detail {
            line["error"] = err.to_json();
        }
        let mut text = line.to_string();
        text.push('\n');
        // One write per line, so concurrent writers never interleave a line.
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = file.write_all(text.as_bytes()) {
            self.losses.note(&e);
        }
    }
}

/// The event name for an error that ended a helper: the kind's own name
/// where it already reads as an event, a noun where the kind names a state.
pub(crate) fn event_for(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::PolicyViolation { .. } => "violation",
        ErrorKind::Crashed { .. } => "crash",
        ErrorKind::Exited { .. } => "exit",
        ErrorKind::Timeout | ErrorKind::ResourceLimit | ErrorKind::Protocol => kind.name(),
        _ => "error",
    }
}

/// The current UTC time as RFC 3339 with milliseconds, as audit lines carry it.
fn rfc3339_now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_stable() {
        let events = [
            (ErrorKind::Timeout, "timeout"),
            (ErrorKind::ResourceLimit, "resource_limit"),
            (ErrorKind::Protocol, "protocol"),
            (ErrorKind::Exited { code: 1 }, "exit"),
            (ErrorKind::StaleHandle, "error"),
        ];
        for (kind, event) in events {
            assert_eq!(event_for(&kind), event, "{kind:?}");
        }
    }

    fn event(pid: i32) -> AuditEvent<'static> {
        AuditEvent {
            event: "crash",
            function: Some("f"),
            syscall: None,
            action: "killed",
            pid,
            detail: None,
        }
    }

    #[test]
    fn lines_a_full_disk_refuses_are_counted_with_the_first_error() {
        let full = AuditLog::open(Path::new("/dev/full"), "lib", "p", "h".into()).unwrap();
        assert_eq!(full.losses(), None, "nothing lost before a write");
        for pid in 1..=3 {
            full.record(&event(pid));
        }
        let (count, first) = full.losses().expect("losses on /dev/full");
        assert_eq!(count, 3);
        assert_eq!(
            first,
            std::io::Error::from_raw_os_error(libc::ENOSPC).to_string()
        );

        let dir = std::env::temp_dir().join(format!("ffb-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let fine = AuditLog::open(&path, "lib", "p", "h".into()).unwrap();
        fine.record(&event(1));
        assert_eq!(fine.losses(), None);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn time_is_rfc3339() {
        let t = rfc3339_now();
        assert_eq!(t.len(), 24, "{t}");
        assert!(
            t.starts_with("20") && t.ends_with('Z') && &t[10..11] == "T",
            "{t}"
        );
    }
}
