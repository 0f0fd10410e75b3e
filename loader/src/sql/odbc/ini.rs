//! What an ODBC connection reaches, read on the host so that the helper's
//! policy grants exactly that: unixODBC's ini files, the driver library the
//! DSN names, and the driver's endpoint.
//!
//! unixODBC finds a DSN in `$ODBCINI` (else `/etc/odbc.ini`) and then in
//! `$ODBCSYSINI/odbc.ini`, and a driver's library in
//! `$ODBCSYSINI/odbcinst.ini` (`ODBCSYSINI` defaults to `/etc`). The
//! connection string's own attributes win over the DSN's. Keywords are
//! case-insensitive.
//!
//! Endpoints are known for the drivers the project ships tests for:
//! psqlODBC (`Servername`/`Server`, `Port`; a servername starting with `/`
//! is a unix socket directory) and the SQLite ODBC drivers (`Database`).
//! Any other driver gets its ini files and library, and nothing else.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::sql::pg_socket::{socket_path, DEFAULT_PORT};

/// Where the driver manager looks for its files, from the host's
/// environment (the helper gets the same variables).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Files {
    /// `$ODBCSYSINI`, else `/etc`.
    pub sysini: PathBuf,
    /// `$ODBCINI`, if set.
    pub ini: Option<PathBuf>,
}

impl Files {
    /// From the process's `ODBCSYSINI` and `ODBCINI`.
    pub fn from_env() -> Files {
        Files {
            sysini: std::env::var_os("ODBCSYSINI")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/etc")),
            ini: std::env::var_os("ODBCINI").map(PathBuf::from),
        }
    }

    /// The ini files, in the order unixODBC reads them.
    pub fn ini_files(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        match &self.ini {
            Some(i) => v.push(i.clone()),
            None => v.push(PathBuf::from("/etc/odbc.ini")),
        }
        v.push(self.sysini.join("odbc.ini"));
        v.push(self.sysini.join("odbcinst.ini"));
        v.dedup();
        v
    }
}

/// Where a connection leads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Reach {
    /// The driver library, when it could be found.
    pub driver: Option<PathBuf>,
    /// TCP ports.
    pub tcp_ports: Vec<u16>,
    /// Unix socket paths.
    pub unix_sockets: Vec<PathBuf>,
    /// Whether a host is a name (the resolver's files are needed).
    pub names: bool,
    /// Database files that are written (their directory is granted, for
    /// journals).
    pub databases: Vec<PathBuf>,
}

/// `key=value;...` as ODBC connection strings are written (`{...}` quotes a
/// value holding `;`). Keys are lower-cased.
pub(super) fn attributes(connection_string: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = connection_string;
    while !rest.trim().is_empty() {
        let (key, after) = match rest.split_once('=') {
            Some(kv) => kv,
            None => break,
        };
        let after = after.trim_start();
        let (value, next) = if let Some(braced) = after.strip_prefix('{') {
            match braced.split_once('}') {
                Some((v, n)) => (v.to_string(), n.split_once(';').map_or("", |(_, r)| r)),
                None => (braced.to_string(), ""),
            }
        } else {
            match after.split_once(';') {
                Some((v, n)) => (v.trim().to_string(), n),
                None => (after.trim().to_string(), ""),
            }
        };
        out.insert(key.trim().to_ascii_lowercase(), value);
        rest = next;
    }
    out
}

/// The `[section]` of an ini file, keys lower-cased; `None` if the file or
/// the section is missing.
fn section(path: &Path, name: &str) -> Option<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut found = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if found.is_some() {
                break;
            }
            if s.trim().eq_ignore_ascii_case(name) {
                found = Some(HashMap::new());
            }
            continue;
        }
        if let (Some(map), Some((k, v))) = (found.as_mut(), line.split_once('=')) {
            map.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    found
}

/// Where the connection string leads, with unixODBC's files as `files`
/// says.
pub(super) fn reach(connection_string: &str, files: &Files) -> Reach {
    let given = attributes(connection_string);
    let mut attrs = HashMap::new();
    if let Some(dsn) = given.get("dsn") {
        let inis = files.ini_files();
        if let Some(found) = inis[..inis.len() - 1].iter().find_map(|f| section(f, dsn)) {
            attrs = found;
        }
    }
    attrs.extend(given);
    let mut reach = Reach::default();
    if let Some(driver) = attrs.get("driver") {
        let path = PathBuf::from(driver);
        reach.driver = if path.is_absolute() {
            Some(path)
        } else {
            section(&files.sysini.join("odbcinst.ini"), driver)
                .and_then(|s| s.get("driver").cloned())
                .map(PathBuf::from)
        };
    }
    let library = reach
        .driver
        .as_ref()
        .and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let get = |keys: &[&str]| keys.iter().find_map(|k| attrs.get(*k)).cloned();
    if library.contains("psqlodbc") {
        let port = get(&["port"])
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or(DEFAULT_PORT);
        let server = get(&["servername", "server"]).unwrap_or_else(|| "localhost".into());
        if server.starts_with('/') {
            reach.unix_sockets.push(socket_path(&server, port));
        } else {
            reach.tcp_ports.push(port);
            reach.names = server.parse::<std::net::IpAddr>().is_err();
        }
    } else if library.contains("sqlite") {
        if let Some(db) = get(&["database"]).filter(|d| !d.is_empty() && d != ":memory:") {
            reach
                .databases
                .push(std::path::absolute(&db).unwrap_or_else(|_| PathBuf::from(db)));
        }
    }
    reach
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings() {
        let a = attributes("DSN=x; uid = me ;PWD={a;b}; Database=/tmp/d.db");
        assert_eq!(a["dsn"], "x");
        assert_eq!(a["uid"], "me");
        assert_eq!(a["pwd"], "a;b");
        assert_eq!(a["database"], "/tmp/d.db");
    }

    #[test]
    fn a_dsn_leads_to_its_driver_and_endpoint() {
        let dir = std::env::temp_dir().join(format!("ffb-odbc-ini-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("odbcinst.ini"),
            "[PG]\nDriver = /usr/lib/odbc/psqlodbcw.so\n\n[Lite]\nDriver=/usr/lib/odbc/libsqlite3odbc.so\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("odbc.ini"),
            "[tcp]\nDriver = PG\nServername = 127.0.0.1\nPort = 6543\n\n[sock]\nDriver=PG\nServername=/run/pg\nPort=7\n[lite]\nDriver=Lite\nDatabase=/data/x.db\n",
        )
        .unwrap();
        let files = Files {
            sysini: dir.clone(),
            ini: Some(dir.join("odbc.ini")),
        };
        let r = reach("DSN=tcp;", &files);
        assert_eq!(r.driver, Some(PathBuf::from("/usr/lib/odbc/psqlodbcw.so")));
        assert_eq!((r.tcp_ports.clone(), r.names), (vec![6543], false));
        // The connection string's attributes win.
        assert_eq!(
            reach("DSN=tcp;Port=1;Servername=db.example", &files).tcp_ports,
            [1]
        );
        assert!(reach("DSN=tcp;Servername=db.example", &files).names);
        let r = reach("dsn=SOCK", &files);
        assert_eq!(r.unix_sockets, [PathBuf::from("/run/pg/.s.PGSQL.7")]);
        let r = reach("DSN=lite;", &files);
        assert_eq!(r.databases, [PathBuf::from("/data/x.db")]);
        let r = reach("Driver=Lite;Database=/other.db", &files);
        assert_eq!(r.databases, [PathBuf::from("/other.db")]);
        let r = reach("DSN=missing", &files);
        assert_eq!(r, Reach::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
