//! Every failure is a value: [`Error`] with a stable [`ErrorKind`].

use std::fmt;
use std::io;
use std::sync::Arc;

use serde_json::{json, Map, Value as Json};

/// Why a call, a load or a spawn failed. The names ([`ErrorKind::name`]) are
/// stable: they appear in JSON output and audit logs. More kinds may come,
/// so a `match` on one needs a `_` arm.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bridge mode is off: nothing was loaded and nothing was spawned.
    BridgeDisabled,
    /// The library could not be loaded, or the helper could not start.
    LoadFailed,
    /// A declared symbol is not in the library.
    SymbolNotFound,
    /// A signature is malformed or unsupported.
    BadSignature,
    /// An argument does not fit its declared type.
    BadArgument,
    /// The helper died from a signal.
    Crashed {
        /// The signal's name, e.g. `SIGSEGV`.
        signal: String,
    },
    /// The extension made a syscall its policy forbids; the helper was killed.
    PolicyViolation {
        /// The syscall's name (or `syscall_<nr>`).
        syscall: String,
        /// Its number.
        nr: i64,
    },
    /// The call did not finish in time; the helper was killed.
    Timeout,
    /// The helper hit a resource limit (CPU time, a size bound).
    ResourceLimit,
    /// The helper exited during a call.
    Exited {
        /// Its exit code.
        code: i32,
    },
    /// A handle from a helper that is gone, or not a handle at all.
    StaleHandle,
    /// The helper broke the protocol (garbage in the arena); it was killed.
    Protocol,
    /// The foreign library itself reported a failure: a database driver's
    /// syntax error, missing table, constraint violation or failed
    /// authentication. The helper is fine; the message is the driver's.
    Foreign {
        /// Which driver said so: `sqlite`, `postgres` or `odbc`.
        driver: String,
        /// The driver's own code, as text: SQLite's extended result code in
        /// decimal (`"1"`, `"2067"`), a SQLSTATE for PostgreSQL and ODBC
        /// (`"42P01"`).
        code: String,
    },
    /// Python code in the helper raised an exception (see
    /// [`crate::python`]). The helper is fine. Everything here is the
    /// helper's own words, bounded and escaped: the message says "the helper
    /// reported", and no exception can make itself look like another kind.
    PythonException {
        /// The exception's qualified type name (`ValueError`,
        /// `decimal.InvalidOperation`), as the helper reported it.
        type_name: String,
        /// The formatted traceback, as the helper reported it.
        traceback: String,
    },
}

impl ErrorKind {
    /// The stable name of this kind.
    pub fn name(&self) -> &'static str {
        match self {
            ErrorKind::BridgeDisabled => "bridge_disabled",
            ErrorKind::LoadFailed => "load_failed",
            ErrorKind::SymbolNotFound => "symbol_not_found",
            ErrorKind::BadSignature => "bad_signature",
            ErrorKind::BadArgument => "bad_argument",
            ErrorKind::Crashed { .. } => "crashed",
            ErrorKind::PolicyViolation { .. } => "policy_violation",
            ErrorKind::Timeout => "timeout",
            ErrorKind::ResourceLimit => "resource_limit",
            ErrorKind::Exited { .. } => "exited",
            ErrorKind::StaleHandle => "stale_handle",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Foreign { .. } => "foreign",
            ErrorKind::PythonException { .. } => "python_exception",
        }
    }

    /// Whether this failure ended the helper. The next call starts a fresh one.
    pub fn ends_helper(&self) -> bool {
        matches!(
            self,
            ErrorKind::Crashed { .. }
                | ErrorKind::PolicyViolation { .. }
                | ErrorKind::Timeout
                | ErrorKind::Exited { .. }
                | ErrorKind::Protocol
        )
    }
}

/// An ffb failure: what kind, and a message for the person reading it.
///
/// When a system call's failure is the cause, the message already says so
/// in words, and [`source`](std::error::Error::source) keeps the
/// [`io::Error`] itself for code that wants its `errno`:
///
/// ```
/// use std::error::Error as _;
/// use ffb_loader::{Error, ErrorKind};
/// let cause = std::io::Error::from_raw_os_error(libc::EMFILE);
/// let e = Error::with_source(ErrorKind::LoadFailed, format!("eventfd: {cause}"), cause);
/// assert!(e.to_string().starts_with("load_failed: eventfd: "));
/// let io = e.source().and_then(|s| s.downcast_ref::<std::io::Error>()).unwrap();
/// assert_eq!(io.raw_os_error(), Some(libc::EMFILE));
/// ```
#[derive(Clone)]
pub struct Error {
    /// The kind, with its data.
    pub kind: ErrorKind,
    /// What happened, in one line.
    pub message: String,
    /// The OS error behind it, if one is. Shared, so an error stays cheap
    /// to clone (a helper's ending is handed to every later call).
    source: Option<Arc<io::Error>>,
}

/// Two errors are equal when they say the same thing: the kind and the
/// message (which already spells out any OS error).
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.message == other.message
    }
}

impl Eq for Error {}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Crashed { signal } => write!(f, "crashed ({signal}): {}", self.message),
            ErrorKind::PolicyViolation { syscall, nr } => {
                write!(f, "policy_violation ({syscall}, nr {nr}): {}", self.message)
            }
            ErrorKind::Exited { code } => write!(f, "exited ({code}): {}", self.message),
            ErrorKind::Foreign { driver, code } => {
                write!(f, "foreign ({driver} {code}): {}", self.message)
            }
            ErrorKind::PythonException { type_name, .. } => {
                write!(f, "python_exception ({type_name}): {}", self.message)
            }
            kind => write!(f, "{}: {}", kind.name(), self.message),
        }
    }
}

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An error of `kind` with `message`, caused by `source`. The message
    /// is shown as it is: say the cause in it too.
    pub fn with_source(kind: ErrorKind, message: impl Into<String>, source: io::Error) -> Self {
        Self {
            kind,
            message: message.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// A failure the foreign library reported itself ([`ErrorKind::Foreign`]):
    /// `driver`'s `code` and its own `message`.
    pub fn foreign(driver: &str, code: impl ToString, message: impl Into<String>) -> Self {
        Self::new(
            ErrorKind::Foreign {
                driver: driver.to_string(),
                code: code.to_string(),
            },
            message,
        )
    }

    /// The stable name of the kind.
    pub fn kind_name(&self) -> &'static str {
        self.kind.name()
    }

    /// The JSON form: `{"kind":"crashed","signal":"SIGSEGV","message":"..."}`.
    pub fn to_json(&self) -> Json {
        let mut map = Map::new();
        map.insert("kind".into(), json!(self.kind.name()));
        match &self.kind {
            ErrorKind::Crashed { signal } => {
                map.insert("signal".into(), json!(signal));
            }
            ErrorKind::PolicyViolation { syscall, nr } => {
                map.insert("syscall".into(), json!(syscall));
                map.insert("nr".into(), json!(nr));
            }
            ErrorKind::Exited { code } => {
                map.insert("code".into(), json!(code));
            }
            ErrorKind::Foreign { driver, code } => {
                map.insert("driver".into(), json!(driver));
                map.insert("code".into(), json!(code));
            }
            ErrorKind::PythonException {
                type_name,
                traceback,
            } => {
                map.insert("type".into(), json!(type_name));
                map.insert("traceback".into(), json!(traceback));
            }
            _ => {}
        }
        map.insert("message".into(), json!(self.message));
        Json::Object(map)
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn err<T>(kind: ErrorKind, message: impl Into<String>) -> Result<T> {
    Err(Error::new(kind, message))
}

/// The conventional name of a signal number.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSTKFLT => "SIGSTKFLT",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGURG => "SIGURG",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGVTALRM => "SIGVTALRM",
        libc::SIGPROF => "SIGPROF",
        libc::SIGWINCH => "SIGWINCH",
        libc::SIGIO => "SIGIO",
        libc::SIGPWR => "SIGPWR",
        libc::SIGSYS => "SIGSYS",
        other => return format!("SIG{other}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_carries_the_kind_data() {
        let e = Error::new(
            ErrorKind::PolicyViolation {
                syscall: "execve".into(),
                nr: 59,
            },
            "x",
        );
        assert_eq!(
            e.to_json(),
            json!({"kind":"policy_violation","syscall":"execve","nr":59,"message":"x"})
        );
        let e = Error::new(ErrorKind::Exited { code: 7 }, "y");
        assert_eq!(e.to_json()["code"], 7);
        let e = Error::foreign("sqlite", 1, "no such table: t");
        assert_eq!(
            e.to_json(),
            json!({"kind":"foreign","driver":"sqlite","code":"1","message":"no such table: t"})
        );
        assert_eq!(e.to_string(), "foreign (sqlite 1): no such table: t");
        assert!(!e.kind.ends_helper());
        assert_eq!(signal_name(11), "SIGSEGV");
    }

    #[test]
    fn a_source_changes_neither_the_text_nor_equality() {
        use std::error::Error as _;
        let plain = Error::new(ErrorKind::LoadFailed, "eventfd: too many open files");
        let caused = Error::with_source(
            ErrorKind::LoadFailed,
            "eventfd: too many open files",
            io::Error::from_raw_os_error(libc::EMFILE),
        );
        assert_eq!(plain.to_string(), caused.to_string());
        assert_eq!(plain, caused);
        assert!(plain.source().is_none());
        let copy = caused.clone();
        let io = copy.source().and_then(|s| s.downcast_ref::<io::Error>());
        assert_eq!(io.and_then(io::Error::raw_os_error), Some(libc::EMFILE));
        assert!(!format!("{plain:?}").contains("source"));
        assert!(format!("{caused:?}").contains("source"));
    }
}
