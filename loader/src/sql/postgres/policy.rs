//! The helper's policy for a connection string: libpq's shipped policy
//! plus what the string reaches (see [`conninfo`]).

use std::path::PathBuf;

use super::conninfo;
use crate::error::{Error, ErrorKind, Result};
use crate::sql::{shipped_policy, Config};
use ffb_policy::grants::Grants;
use ffb_policy::sandbox::SandboxPolicy;

/// The shipped policy for libpq: `pure`, the resolver's files, and nscd's
/// socket refused softly (see the file). The connection's own grants are
/// added to it at run time.
const BASE_POLICY: &str = include_str!("../../../../manifests/libpq.policy.toml");
const BASE_POLICY_PATH: &str = "manifests/libpq.policy.toml";
/// OpenSSL's configuration, which libpq's TLS attempt reads over TCP
/// (`/usr/lib/ssl/openssl.cnf` is a link to it, and only the target counts
/// for Landlock).
const TLS_CONFIG: &[&str] = &["/etc/ssl/openssl.cnf"];

/// The policy for a connection string: see the driver's docs.
pub(super) fn policy(config: &Config) -> Result<SandboxPolicy> {
    let conninfo = super::target(config)?;
    let reach = conninfo::reach(conninfo)
        .map_err(|m| Error::new(ErrorKind::BadArgument, format!("connection string: {m}")))?;
    policy_for(&reach)
}

fn policy_for(reach: &conninfo::Reach) -> Result<SandboxPolicy> {
    let mut read: Vec<PathBuf> = Vec::new();
    if !reach.tcp_ports.is_empty() {
        read.extend(shipped_policy::existing(
            TLS_CONFIG.iter().map(PathBuf::from),
        ));
    }
    let named = reach
        .files
        .iter()
        .map(|f| std::path::absolute(f).unwrap_or_else(|_| f.clone()));
    for f in shipped_policy::existing(named) {
        if !read.contains(&f) {
            read.push(f);
        }
    }
    let grants = Grants {
        read,
        write: Vec::new(),
        connect_tcp: reach.tcp_ports.clone(),
        connect_unix: reach.unix_sockets.clone(),
    };
    let mut base = shipped_policy::parse(BASE_POLICY, BASE_POLICY_PATH)?;
    // nsswitch.conf makes getpwuid (which libpq calls to find ~/.pgpass)
    // dlopen libnss_systemd, a PROT_EXEC mapping the policy refuses once
    // loaded; without it glibc uses its built-in files and dns lookups.
    base.filesystem
        .read
        .retain(|p| p != std::path::Path::new("/etc/nsswitch.conf"));
    shipped_policy::with_grants(base, &grants, "postgres")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Whether `path` is one of the files the policy lets libpq read.
    fn reads(p: &SandboxPolicy, path: &Path) -> bool {
        p.filesystem.read.iter().any(|r| r == path)
    }

    #[test]
    fn the_policy_grants_what_the_string_names() {
        let p = policy_for(&conninfo::reach("host=/tmp port=5999 user=u").unwrap()).unwrap();
        assert_eq!(p.connect_unix, [PathBuf::from("/tmp/.s.PGSQL.5999")]);
        assert!(p.network.connect_tcp.is_empty());
        assert!(!reads(&p, Path::new("/etc/ssl/openssl.cnf")));
        let p = policy_for(&conninfo::reach("host=localhost port=6001 user=u").unwrap()).unwrap();
        assert_eq!(p.network.connect_tcp, [6001]);
        assert!(p.connect_unix.is_empty());
        let here = std::env::current_dir().unwrap().join("Cargo.toml");
        let p = policy_for(
            &conninfo::reach(&format!("host=h port=1 sslrootcert={}", here.display())).unwrap(),
        )
        .unwrap();
        assert!(reads(&p, &here));
        let p = policy_for(&conninfo::reach("host=h port=1 sslrootcert=/no/such/ca.pem").unwrap())
            .unwrap();
        assert!(!reads(&p, Path::new("/no/such/ca.pem")));
    }
}
