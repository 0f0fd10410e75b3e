//! The BPF backend: a [`SandboxPolicy`](crate::sandbox::SandboxPolicy)
//! compiled to one classic-BPF seccomp program
//! ([`SandboxPolicy::compile`](crate::sandbox::SandboxPolicy::compile)), and
//! the kernel's numbers that program is written in.
//!
//! The opcodes are the few classic-BPF instructions the program is made of
//! (seccompiler's segments and ffb's own prelude and jumps), named as in
//! `<linux/bpf_common.h>` so that the compiler, its tests and the
//! interpreter the tests run read alike. The kernel is the authority on what
//! a program does: the tests compare the interpreter with it.
//!
//! ```
//! use ffb_policy::bpf::{SECCOMP_RET_ACTION_FULL, SECCOMP_RET_ERRNO, SECCOMP_RET_DATA};
//! let word = SECCOMP_RET_ERRNO | 13;
//! assert_eq!((word & SECCOMP_RET_ACTION_FULL, word & SECCOMP_RET_DATA), (SECCOMP_RET_ERRNO, 13));
//! ```

mod compile;
#[cfg(test)]
pub(crate) mod interp;
#[cfg(test)]
mod kernel_oracle;

/// Instruction class: load into the accumulator.
pub const BPF_LD: u16 = 0x00;
/// Instruction class: arithmetic and logic on the accumulator.
pub const BPF_ALU: u16 = 0x04;
/// Instruction class: jumps.
pub const BPF_JMP: u16 = 0x05;
/// Instruction class: return an action word.
pub const BPF_RET: u16 = 0x06;
/// Load size: a 32-bit word (the only size seccomp allows).
pub const BPF_W: u16 = 0x00;
/// Load mode: from a fixed offset of `struct seccomp_data`.
pub const BPF_ABS: u16 = 0x20;
/// ALU operation: bitwise and.
pub const BPF_AND: u16 = 0x50;
/// Jump: always, by `k`.
pub const BPF_JA: u16 = 0x00;
/// Jump: when the accumulator equals the operand.
pub const BPF_JEQ: u16 = 0x10;
/// Jump: when the accumulator is greater than the operand (unsigned).
pub const BPF_JGT: u16 = 0x20;
/// Jump: when the accumulator is at least the operand (unsigned).
pub const BPF_JGE: u16 = 0x30;
/// Jump: when the accumulator and the operand share a set bit.
pub const BPF_JSET: u16 = 0x40;
/// Operand: the instruction's constant `k`.
pub const BPF_K: u16 = 0x00;

/// `BPF_LD | BPF_W | BPF_ABS`: load the word at offset `k` of `seccomp_data`.
pub const LD_W_ABS: u16 = BPF_LD | BPF_W | BPF_ABS;
/// `BPF_ALU | BPF_AND | BPF_K`: `A &= k`.
pub const ALU_AND_K: u16 = BPF_ALU | BPF_AND | BPF_K;
/// `BPF_JMP | BPF_JA`: skip `k` instructions.
pub const JMP_JA: u16 = BPF_JMP | BPF_JA;
/// `BPF_JMP | BPF_JEQ | BPF_K`: skip `jt` if `A == k`, else `jf`.
pub const JMP_JEQ_K: u16 = BPF_JMP | BPF_JEQ | BPF_K;
/// `BPF_JMP | BPF_JGT | BPF_K`: skip `jt` if `A > k`, else `jf`.
pub const JMP_JGT_K: u16 = BPF_JMP | BPF_JGT | BPF_K;
/// `BPF_JMP | BPF_JGE | BPF_K`: skip `jt` if `A >= k`, else `jf`.
pub const JMP_JGE_K: u16 = BPF_JMP | BPF_JGE | BPF_K;
/// `BPF_JMP | BPF_JSET | BPF_K`: skip `jt` if `A & k != 0`, else `jf`.
pub const JMP_JSET_K: u16 = BPF_JMP | BPF_JSET | BPF_K;
/// `BPF_RET | BPF_K`: return the action word `k`.
pub const RET_K: u16 = BPF_RET | BPF_K;

/// The most instructions the kernel accepts in one program (`BPF_MAXINSNS`).
pub const BPF_MAX_INSNS: usize = 4096;
/// `AUDIT_ARCH_X86_64`: `seccomp_data.arch` for a call through the 64-bit entry.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// Offset of `seccomp_data.nr`, the syscall number (32 bits).
pub const SECCOMP_DATA_NR: u32 = 0;
/// Offset of `seccomp_data.arch`.
pub const SECCOMP_DATA_ARCH: u32 = 4;
/// Offset of `seccomp_data.args[0]`; argument `i` is 8 bytes further each,
/// low half first (x86_64 is little-endian).
pub const SECCOMP_DATA_ARGS: u32 = 16;
/// The size of `struct seccomp_data`: no load may reach past it.
pub const SECCOMP_DATA_SIZE: u32 = 64;

/// Action word: kill the whole process.
pub const SECCOMP_RET_KILL_PROCESS: u32 = libc::SECCOMP_RET_KILL_PROCESS;
/// Action word: kill the calling thread.
pub const SECCOMP_RET_KILL_THREAD: u32 = libc::SECCOMP_RET_KILL_THREAD;
/// Action word: fail the call with the errno in [`SECCOMP_RET_DATA`].
pub const SECCOMP_RET_ERRNO: u32 = libc::SECCOMP_RET_ERRNO;
/// Action word: the syscall waits while the host's listener decides.
pub const SECCOMP_RET_USER_NOTIF: u32 = libc::SECCOMP_RET_USER_NOTIF;
/// Action word: send the thread `SIGSYS` (no policy asks for it).
pub const SECCOMP_RET_TRAP: u32 = libc::SECCOMP_RET_TRAP;
/// Action word: notify a ptrace tracer (ffb compiles it only as a placeholder).
pub const SECCOMP_RET_TRACE: u32 = libc::SECCOMP_RET_TRACE;
/// Action word: run the syscall and log it.
pub const SECCOMP_RET_LOG: u32 = libc::SECCOMP_RET_LOG;
/// Action word: run the syscall.
pub const SECCOMP_RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
/// The action part of an action word.
pub const SECCOMP_RET_ACTION_FULL: u32 = libc::SECCOMP_RET_ACTION_FULL;
/// The data part of an action word (the errno, for [`SECCOMP_RET_ERRNO`]).
pub const SECCOMP_RET_DATA: u32 = libc::SECCOMP_RET_DATA;
