//! Where a PostgreSQL server listens, as its clients (libpq, and psqlODBC
//! through it) work it out: a unix socket `DIR/.s.PGSQL.PORT`, and the
//! port when none is given. The libpq and ODBC drivers both grant it.

use std::path::{Path, PathBuf};

/// The port a client uses when none is given.
pub(super) const DEFAULT_PORT: u16 = 5432;

/// The unix socket of the server on `port` whose socket directory is `dir`.
pub(super) fn socket_path(dir: impl AsRef<Path>, port: u16) -> PathBuf {
    dir.as_ref().join(format!(".s.PGSQL.{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_is_named_after_its_port() {
        assert_eq!(
            socket_path("/run/pg", DEFAULT_PORT),
            PathBuf::from("/run/pg/.s.PGSQL.5432")
        );
    }
}
