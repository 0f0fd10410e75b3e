//! One module per subcommand: `ffb call`, `ffb session` and `ffb policy ...`.

pub mod call;
pub mod describe;
pub mod policy;
pub mod py;
pub mod session;
pub mod sql;
