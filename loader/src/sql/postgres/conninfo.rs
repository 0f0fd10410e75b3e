//! What a libpq connection string reaches, read on the host so that the
//! helper's policy grants exactly that: the unix sockets and TCP ports of its
//! hosts, and the files it names.
//!
//! Both of libpq's forms are read: `key=value` pairs (values optionally in
//! single quotes, with `\'` and `\\`), and URIs
//! (`postgresql://user:pw@host:port,host2/db?key=value`, percent-decoded,
//! `[v6]` hosts). The helper runs with an empty environment, so libpq's
//! defaults are its compiled-in ones: the socket directory
//! [`DEFAULT_SOCKET_DIR`] and port [`DEFAULT_PORT`].

use std::path::PathBuf;

use crate::sql::pg_socket::{socket_path, DEFAULT_PORT};

/// Debian's libpq looks for the server's socket here when no host is given.
pub(super) const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// Keywords whose values are files libpq reads.
const FILE_KEYWORDS: &[&str] = &[
    "passfile",
    "sslcert",
    "sslkey",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
];

/// Where a connection string leads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Reach {
    /// Unix socket paths (`DIR/.s.PGSQL.PORT`).
    pub unix_sockets: Vec<PathBuf>,
    /// TCP ports.
    pub tcp_ports: Vec<u16>,
    /// Whether a host is a name rather than an address (so the resolver's
    /// files are needed).
    pub names: bool,
    /// Files the string names (certificates, keys, a password file).
    pub files: Vec<PathBuf>,
}

/// The `key=value` pairs of `conninfo`, in order. A message on a malformed
/// string.
pub(super) fn parse(conninfo: &str) -> Result<Vec<(String, String)>, String> {
    let s = conninfo.trim_start();
    if is_uri(s) {
        parse_uri(s)
    } else {
        parse_pairs(s)
    }
}

/// Whether `conninfo` is written as a URI rather than `key=value` pairs.
pub(super) fn is_uri(conninfo: &str) -> bool {
    let s = conninfo.trim_start();
    s.starts_with("postgresql://") || s.starts_with("postgres://")
}

fn parse_pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!(
                "missing \"=\" after \"{key}\" in connection string"
            ));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("unterminated quoted string in connection string".into()),
                    Some('\'') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => {
                            return Err("unterminated quoted string in connection string".into())
                        }
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("invalid percent-encoded token in URI: \"{s}\""))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("URI component is not UTF-8: \"{s}\""))
}

fn parse_uri(s: &str) -> Result<Vec<(String, String)>, String> {
    let rest = s.split_once("://").map(|(_, r)| r).unwrap_or(s);
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (authority, db) = match main.split_once('/') {
        Some((a, d)) => (a, Some(d)),
        None => (main, None),
    };
    let mut out = Vec::new();
    let hostlist = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let (user, pw) = match userinfo.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                out.push(("user".into(), percent_decode(user)?));
            }
            if let Some(pw) = pw {
                out.push(("password".into(), percent_decode(pw)?));
            }
            hosts
        }
        None => authority,
    };
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    if !hostlist.is_empty() {
        for spec in hostlist.split(',') {
            let (host, port) = if let Some(v6) = spec.strip_prefix('[') {
                let (h, after) = v6
                    .split_once(']')
                    .ok_or_else(|| format!("unterminated IPv6 host in URI: \"{spec}\""))?;
                (
                    h.to_string(),
                    after.strip_prefix(':').unwrap_or("").to_string(),
                )
            } else {
                match spec.split_once(':') {
                    Some((h, p)) => (percent_decode(h)?, p.to_string()),
                    None => (percent_decode(spec)?, String::new()),
                }
            };
            hosts.push(host);
            ports.push(port);
        }
        out.push(("host".into(), hosts.join(",")));
        if ports.iter().any(|p| !p.is_empty()) {
            out.push(("port".into(), ports.join(",")));
        }
    }
    if let Some(db) = db.filter(|d| !d.is_empty()) {
        out.push(("dbname".into(), percent_decode(db)?));
    }
    for pair in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            format!("missing key/value separator \"=\" in URI query parameter: \"{pair}\"")
        })?;
        out.push((percent_decode(k)?, percent_decode(v)?));
    }
    Ok(out)
}

/// The last value given for `key` (libpq takes the last one).
pub(super) fn value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Where `conninfo` leads, as libpq would connect with an empty
/// environment.
pub(super) fn reach(conninfo: &str) -> Result<Reach, String> {
    let pairs = parse(conninfo)?;
    if value(&pairs, "service").is_some() {
        return Err(
            "service= is not supported: name the host and port in the connection string, so the driver's policy can grant them"
                .into(),
        );
    }
    let split = |key: &str| -> Vec<String> {
        value(&pairs, key)
            .filter(|v| !v.is_empty())
            .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default()
    };
    let hosts = split("host");
    let addrs = split("hostaddr");
    let ports = split("port");
    let count = hosts.len().max(addrs.len()).max(1);
    if ports.len() > 1 && ports.len() != count {
        return Err(format!(
            "could not match {} port numbers to {count} hosts",
            ports.len()
        ));
    }
    let mut reach = Reach::default();
    for i in 0..count {
        let port_text = match ports.len() {
            0 => "",
            1 => ports[0].as_str(),
            _ => ports.get(i).map(String::as_str).ok_or_else(|| {
                format!(
                    "could not match {} port numbers to {count} hosts",
                    ports.len()
                )
            })?,
        };
        let port = if port_text.is_empty() {
            DEFAULT_PORT
        } else {
            port_text
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("invalid port number: \"{port_text}\""))?
        };
        let host = hosts.get(i).map(String::as_str).unwrap_or("");
        let addr = addrs.get(i).map(String::as_str).unwrap_or("");
        if !addr.is_empty() {
            push(&mut reach.tcp_ports, port);
        } else if host.is_empty() || host.starts_with('/') {
            let dir = if host.is_empty() {
                DEFAULT_SOCKET_DIR
            } else {
                host
            };
            push(&mut reach.unix_sockets, socket_path(dir, port));
        } else if host.starts_with('@') {
            return Err(format!(
                "abstract unix sockets are not supported: \"{host}\""
            ));
        } else {
            push(&mut reach.tcp_ports, port);
            if host.parse::<std::net::IpAddr>().is_err() {
                reach.names = true;
            }
        }
    }
    for key in FILE_KEYWORDS {
        if let Some(v) = value(&pairs, key).filter(|v| !v.is_empty()) {
            push(&mut reach.files, PathBuf::from(v));
        }
    }
    Ok(reach)
}

fn push<T: PartialEq>(list: &mut Vec<T>, v: T) {
    if !list.contains(&v) {
        list.push(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_with_quotes_and_escapes() {
        let p = parse(" host=/tmp/s port = 5433 password='it\\'s a \\\\ pw' dbname=x\\ y").unwrap();
        assert_eq!(
            p,
            [
                ("host".to_string(), "/tmp/s".to_string()),
                ("port".into(), "5433".into()),
                ("password".into(), "it's a \\ pw".into()),
                ("dbname".into(), "x y".into()),
            ]
        );
        assert!(parse("host").is_err());
        assert!(parse("password='open").is_err());
    }

    #[test]
    fn uris() {
        let p = parse("postgresql://u%40x:p%3Aw@[::1]:5544,db.example:6000/my%20db?sslmode=disable&host=/sock").unwrap();
        assert_eq!(value(&p, "user"), Some("u@x"));
        assert_eq!(value(&p, "password"), Some("p:w"));
        assert_eq!(value(&p, "dbname"), Some("my db"));
        assert_eq!(value(&p, "port"), Some("5544,6000"));
        // The query's host comes last, so it wins, as in libpq.
        assert_eq!(value(&p, "host"), Some("/sock"));
        assert!(parse("postgres://h/db?novalue").is_err());
    }

    #[test]
    fn what_a_string_reaches() {
        let r = reach("host=/run/pg port=6000 user=u").unwrap();
        assert_eq!(r.unix_sockets, [PathBuf::from("/run/pg/.s.PGSQL.6000")]);
        assert!(r.tcp_ports.is_empty());

        let r = reach("user=u").unwrap();
        assert_eq!(
            r.unix_sockets,
            [PathBuf::from("/var/run/postgresql/.s.PGSQL.5432")]
        );

        let r = reach("host=127.0.0.1,localhost,/s port=1,2,3 sslrootcert=/etc/ca.pem").unwrap();
        assert_eq!(r.tcp_ports, [1, 2]);
        assert_eq!(r.unix_sockets, [PathBuf::from("/s/.s.PGSQL.3")]);
        assert!(r.names);
        assert_eq!(r.files, [PathBuf::from("/etc/ca.pem")]);

        let r = reach("postgresql://localhost:5999/db").unwrap();
        assert_eq!(r.tcp_ports, [5999]);
        let r = reach("hostaddr=10.0.0.1 host=db port=7").unwrap();
        assert_eq!((r.tcp_ports, r.names), (vec![7], false));

        assert!(reach("host=a,b port=1,2,3").is_err());
        assert!(reach("port=0").is_err());
        assert!(reach("port=x").is_err());
        assert!(reach("service=prod").is_err());
    }
}
