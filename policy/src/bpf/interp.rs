//! A classic-BPF interpreter for seccomp programs, for tests only: it runs a
//! compiled filter on one syscall as the kernel would, so that a test can say
//! what a policy does to a call without installing it in a process.
//!
//! It knows the instructions ffb's programs are made of (see [`super`]) and
//! nothing else: any other opcode, a load outside `struct seccomp_data`, a
//! jump past the end or a program that runs off its end is an
//! [`InterpError`], never a guess. The kernel refuses such programs when they
//! are installed; `kernel_oracle` checks that the two agree on the rest.

use std::fmt;

use super::{
    ALU_AND_K, AUDIT_ARCH_X86_64, JMP_JA, JMP_JEQ_K, JMP_JGE_K, JMP_JGT_K, JMP_JSET_K, LD_W_ABS,
    RET_K, SECCOMP_DATA_SIZE,
};
use crate::sandbox::CompiledFilter;

/// Why the interpreter could not run a program to a return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InterpError {
    /// An opcode the interpreter does not know.
    UnknownOpcode {
        /// The instruction's index.
        pc: usize,
        /// Its opcode.
        code: u16,
    },
    /// A load from outside `struct seccomp_data`, or not of a whole aligned word.
    LoadOutOfRange {
        /// The instruction's index.
        pc: usize,
        /// The byte offset it loads from.
        offset: u32,
    },
    /// A jump (either branch, for a conditional one) past the last instruction.
    JumpOutOfRange {
        /// The instruction's index.
        pc: usize,
        /// The index it would jump to.
        target: usize,
    },
    /// The program ended without returning.
    FellOffTheEnd,
}

impl fmt::Display for InterpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterpError::UnknownOpcode { pc, code } => {
                write!(f, "unknown BPF opcode {code:#x} at {pc}")
            }
            InterpError::LoadOutOfRange { pc, offset } => {
                write!(f, "load from offset {offset} of seccomp_data at {pc}")
            }
            InterpError::JumpOutOfRange { pc, target } => {
                write!(f, "jump from {pc} to {target}, past the program's end")
            }
            InterpError::FellOffTheEnd => f.write_str("the BPF program fell off its end"),
        }
    }
}

impl std::error::Error for InterpError {}

/// Runs `filter` on syscall `nr` with `args`, made through the x86_64 entry
/// (instruction pointer 0), and returns the action word it returns.
pub(crate) fn evaluate(
    filter: &CompiledFilter,
    nr: i64,
    args: &[u64; 6],
) -> Result<u32, InterpError> {
    // struct seccomp_data as 32-bit words: nr, arch, instruction_pointer
    // (two words), then each argument low half first.
    let mut data = [0u32; SECCOMP_DATA_SIZE as usize / 4];
    data[0] = nr as u32;
    data[1] = AUDIT_ARCH_X86_64;
    for (i, a) in args.iter().enumerate() {
        data[4 + 2 * i] = *a as u32;
        data[5 + 2 * i] = (*a >> 32) as u32;
    }
    let prog = filter.to_sock_filters();
    let jump = |pc: usize, by: usize| {
        let target = pc + 1 + by;
        if target < prog.len() {
            Ok(target)
        } else {
            Err(InterpError::JumpOutOfRange { pc, target })
        }
    };
    let (mut acc, mut pc) = (0u32, 0usize);
    while let Some(insn) = prog.get(pc) {
        let k = insn.k;
        pc = match insn.code {
            LD_W_ABS => {
                if k % 4 != 0 || k >= SECCOMP_DATA_SIZE {
                    return Err(InterpError::LoadOutOfRange { pc, offset: k });
                }
                acc = data[(k / 4) as usize];
                pc + 1
            }
            ALU_AND_K => {
                acc &= k;
                pc + 1
            }
            RET_K => return Ok(k),
            JMP_JA => jump(pc, k as usize)?,
            JMP_JEQ_K | JMP_JGT_K | JMP_JGE_K | JMP_JSET_K => {
                let (taken, not_taken) = (jump(pc, insn.jt.into())?, jump(pc, insn.jf.into())?);
                let holds = match insn.code {
                    JMP_JEQ_K => acc == k,
                    JMP_JGT_K => acc > k,
                    JMP_JGE_K => acc >= k,
                    _ => acc & k != 0,
                };
                if holds {
                    taken
                } else {
                    not_taken
                }
            }
            code => return Err(InterpError::UnknownOpcode { pc, code }),
        };
    }
    Err(InterpError::FellOffTheEnd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::{SECCOMP_DATA_ARGS, SECCOMP_DATA_NR, SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO};

    /// An instruction as `(code, jt, jf, k)`.
    type Insn = (u16, u8, u8, u32);

    fn program(insns: &[Insn]) -> CompiledFilter {
        CompiledFilter {
            instructions: insns
                .iter()
                .map(|&(code, jt, jf, k)| {
                    u64::from(code) | u64::from(jt) << 16 | u64::from(jf) << 24 | u64::from(k) << 32
                })
                .collect(),
        }
    }

    #[test]
    fn runs_loads_masks_and_jumps() {
        // Allow nr 39 when arg1's high half has bit 0 set; otherwise EPERM.
        let f = program(&[
            (LD_W_ABS, 0, 0, SECCOMP_DATA_NR),
            (JMP_JEQ_K, 0, 3, 39),
            (LD_W_ABS, 0, 0, SECCOMP_DATA_ARGS + 8 + 4),
            (ALU_AND_K, 0, 0, 1),
            (JMP_JGE_K, 1, 0, 1),
            (RET_K, 0, 0, SECCOMP_RET_ERRNO | 1),
            (RET_K, 0, 0, SECCOMP_RET_ALLOW),
        ]);
        let args = |a1: u64| [0, a1, 0, 0, 0, 0];
        assert_eq!(evaluate(&f, 39, &args(1 << 32)), Ok(SECCOMP_RET_ALLOW));
        assert_eq!(evaluate(&f, 39, &args(1)), Ok(SECCOMP_RET_ERRNO | 1));
        assert_eq!(evaluate(&f, 40, &args(1 << 32)), Ok(SECCOMP_RET_ERRNO | 1));
    }

    #[test]
    fn refuses_what_the_kernel_would_refuse() {
        let cases: &[(&[Insn], InterpError)] = &[
            (
                &[(0x07, 0, 0, 0)],
                InterpError::UnknownOpcode { pc: 0, code: 0x07 },
            ),
            (
                &[(LD_W_ABS, 0, 0, SECCOMP_DATA_SIZE), (RET_K, 0, 0, 0)],
                InterpError::LoadOutOfRange {
                    pc: 0,
                    offset: SECCOMP_DATA_SIZE,
                },
            ),
            (
                &[(LD_W_ABS, 0, 0, 2), (RET_K, 0, 0, 0)],
                InterpError::LoadOutOfRange { pc: 0, offset: 2 },
            ),
            (
                &[(JMP_JA, 0, 0, 1), (RET_K, 0, 0, 0)],
                InterpError::JumpOutOfRange { pc: 0, target: 2 },
            ),
            (
                &[(JMP_JEQ_K, 0, 5, 0), (RET_K, 0, 0, 0)],
                InterpError::JumpOutOfRange { pc: 0, target: 6 },
            ),
            (&[(ALU_AND_K, 0, 0, 1)], InterpError::FellOffTheEnd),
            (&[], InterpError::FellOffTheEnd),
        ];
        for (insns, expected) in cases {
            assert_eq!(
                evaluate(&program(insns), 0, &[0; 6]),
                Err(*expected),
                "{insns:?}"
            );
        }
    }
}
