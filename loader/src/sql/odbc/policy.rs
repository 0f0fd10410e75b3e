//! The helper's policy for a connection: the driver manager's shipped
//! policy plus what the connection reaches (see [`ini`]).

use std::path::PathBuf;

use super::ini;
use crate::error::{Error, ErrorKind, Result};
use crate::sql::{shipped_policy, Config};
use ffb_policy::grants::Grants;
use ffb_policy::sandbox::{Action, SandboxPolicy, SyscallRule};

/// `EPERM`.
const EPERM: u32 = 1;
/// The shipped policy for the driver manager (see the file).
const BASE_POLICY: &str = include_str!("../../../../manifests/odbc.policy.toml");
const BASE_POLICY_PATH: &str = "manifests/odbc.policy.toml";
/// The resolver's files, for a psqlODBC server given by name.
const RESOLVER: &[&str] = &[
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
];

/// The policy for a connection: see the driver's docs.
pub(super) fn policy(config: &Config) -> Result<SandboxPolicy> {
    let files = ini::Files::from_env();
    policy_for(
        &ini::reach(&super::connection_string(config)?, &files),
        &files,
    )
}

fn policy_for(reach: &ini::Reach, files: &ini::Files) -> Result<SandboxPolicy> {
    let mut read: Vec<PathBuf> = shipped_policy::existing(files.ini_files()).collect();
    read.extend(shipped_policy::existing(reach.driver.iter().cloned()));
    if reach.names {
        read.extend(shipped_policy::existing(RESOLVER.iter().map(PathBuf::from)));
    }
    let write: Vec<PathBuf> = shipped_policy::existing(
        reach
            .databases
            .iter()
            .filter_map(|db| db.parent().map(|d| d.to_path_buf())),
    )
    .collect();
    let grants = Grants {
        read,
        write,
        connect_tcp: reach.tcp_ports.clone(),
        connect_unix: reach.unix_sockets.clone(),
    };
    let base = shipped_policy::parse(BASE_POLICY, BASE_POLICY_PATH)?;
    let mut p = shipped_policy::with_grants(base, &grants, "odbc")?;
    if !reach.databases.is_empty() {
        // As in sqlite3.policy.toml: SQLite sets a new journal's owner (as
        // root) and mode (when the umask made it differ from the
        // database's) and ignores the answer; refused softly, since
        // Landlock does not confine metadata.
        let bad = |e: ffb_policy::sandbox::PolicyError| {
            Error::new(ErrorKind::BadArgument, format!("odbc policy: {e}"))
        };
        for syscall in ["fchown", "fchmod"] {
            let rule = SyscallRule::new(syscall, Action::Errno(EPERM), vec![]).map_err(bad)?;
            p = p.with_rule(rule).map_err(bad)?;
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_policy_grants_what_the_connection_reaches() {
        let dir = std::env::temp_dir().join(format!("ffb-odbc-policy-{}", std::process::id()));
        let lib = dir.join("libsqlite3odbc.so");
        let db_dir = dir.join("data");
        std::fs::create_dir_all(&db_dir).unwrap();
        std::fs::write(&lib, b"").unwrap();
        let files = ini::Files {
            sysini: dir.clone(),
            ini: Some(dir.join("odbc.ini")),
        };
        let reach = ini::Reach {
            driver: Some(lib.clone()),
            tcp_ports: vec![6543],
            unix_sockets: vec![PathBuf::from("/run/pg/.s.PGSQL.7")],
            names: false,
            databases: vec![db_dir.join("x.db")],
        };
        let p = policy_for(&reach, &files).unwrap();
        assert_eq!(p.name, "odbc");
        assert!(p.filesystem.read.contains(&lib));
        // Ini files that do not exist are not granted (Landlock could not).
        assert!(!p.filesystem.read.contains(&dir.join("odbc.ini")));
        assert_eq!(p.filesystem.write, [db_dir]);
        assert_eq!(p.network.connect_tcp, [6543]);
        assert_eq!(p.connect_unix, [PathBuf::from("/run/pg/.s.PGSQL.7")]);
        assert!(!p
            .filesystem
            .read
            .iter()
            .any(|r| r == Path::new("/etc/hosts")));
        let softly = |name: &str| {
            p.rules
                .iter()
                .any(|r| r.syscall == name && r.action == Action::Errno(EPERM))
        };
        assert!(softly("fchown") && softly("fchmod"));

        let p = policy_for(
            &ini::Reach {
                names: true,
                ..ini::Reach::default()
            },
            &files,
        )
        .unwrap();
        assert!(p.filesystem.write.is_empty());
        assert!(!p.rules.iter().any(|r| r.syscall == "fchown"));
        if Path::new("/etc/hosts").exists() {
            assert!(p
                .filesystem
                .read
                .iter()
                .any(|r| r == Path::new("/etc/hosts")));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
