//! The audit log: one JSON line per violation, crash, timeout, resource-limit
//! hit and respawn, written from the host's view of events. Nothing in a line
//! comes from the extension: syscall numbers and arguments come from the
//! kernel's seccomp notification, exit statuses from the fork server.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
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
        })
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
        let _ = file.write_all(text.as_bytes());
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
