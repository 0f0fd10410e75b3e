//! Bridged SQL connections as the SQL tests open and read them: bridge mode
//! on, the freshly built shim, and the tests' hang timeout.

use ffb_loader::sql::{Config, Connection, Value};
use ffb_loader::BridgeMode;

use crate::bridge::HANG_TIMEOUT;
use crate::shim_bin;

/// `config` in bridge mode with the freshly built shim.
pub fn bridged(config: Config) -> Config {
    config
        .bridge_mode(BridgeMode::Enabled)
        .shim(shim_bin())
        .timeout(HANG_TIMEOUT)
}

/// Opens `config` bridged; a failure panics, naming the driver and target.
pub fn open(config: Config) -> Connection {
    let what = format!("{:?} {:?}", config.kind(), config.target());
    Connection::open(bridged(config)).unwrap_or_else(|e| panic!("opening {what}: {e}"))
}

/// Every row of `sql` with `params`; any failure panics, naming the SQL.
pub fn all(db: &mut Connection, sql: &str, params: &[Value]) -> Vec<Vec<Value>> {
    db.query(sql, params)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .map(|r| r.map(|r| r.into_values()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}
