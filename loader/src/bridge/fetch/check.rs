//! A fetch program against the bridge's declarations
//! ([`Bridge::check_program`]), before it is sent.

use ffb_abi::signature::{ArgType, Pointee};

use super::{FetchProgram, Operand};
use crate::bridge::Bridge;
use crate::error::{err, ErrorKind, Result};

impl Bridge {
    /// Checks every call of `program` against this bridge's declarations:
    /// declared here, one operand per parameter, scratch (with room) for
    /// pointer parameters, registers or NULL for handles, and no close
    /// function (closing inside a fetch would leave its token live).
    pub(super) fn check_program(&self, program: &FetchProgram) -> Result<()> {
        for (f, args) in &program.calls {
            let Some(declared) = self
                .functions
                .get(f.index)
                .filter(|_| f.table == self.table)
            else {
                return err(
                    ErrorKind::BadArgument,
                    format!("{f:?} is not declared here"),
                );
            };
            let sig = &declared.sig;
            let bad = |why: String| {
                err(
                    ErrorKind::BadArgument,
                    format!("fetch program: {}: {why}", sig.name),
                )
            };
            if declared.handles.closes.is_some() {
                return bad("a close function cannot run inside a fetch".into());
            }
            if declared.handles.retained != 0 {
                return bad("a function with retained arguments cannot run inside a fetch".into());
            }
            if args.len() != sig.args.len() {
                return bad(format!(
                    "takes {} arguments, given {}",
                    sig.args.len(),
                    args.len()
                ));
            }
            for (i, (&ty, &a)) in sig.args.iter().zip(args).enumerate() {
                let room = match ty {
                    ArgType::Out(n) => n.max(1),
                    ArgType::Ptr(Pointee::Scalar(_) | Pointee::Handle) => 8,
                    ArgType::CStr | ArgType::Bytes => 1,
                    ArgType::Scalar(_) | ArgType::Handle => 0,
                };
                let ok = match (ty, a) {
                    (ArgType::Scalar(_), Operand::Const(_) | Operand::Reg(_)) => true,
                    (ArgType::Handle, Operand::Reg(_) | Operand::Const(0)) => true,
                    (_, Operand::Scratch(n)) if room > 0 => n
                        .checked_add(room)
                        .is_some_and(|end| end <= program.scratch),
                    _ => false,
                };
                if !ok {
                    return bad(format!(
                        "argument {} is {}: it takes {}",
                        i + 1,
                        sig.arg_text(i),
                        if room > 0 {
                            format!("Operand::Scratch with {room} bytes of room")
                        } else if ty == ArgType::Handle {
                            "a register (or Const(0))".into()
                        } else {
                            "a constant or a register".into()
                        }
                    ));
                }
            }
        }
        Ok(())
    }
}
