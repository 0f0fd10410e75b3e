#!/usr/bin/env bash
# Regenerates policy/src/syscall_table.rs from the kernel UAPI header.
set -euo pipefail
cd "$(dirname "$0")/.."
header=${1:-/usr/include/x86_64-linux-gnu/asm/unistd_64.h}
{
  echo '//! x86_64 system call names and numbers.'
  echo '//!'
  echo '//! Generated from the kernel UAPI header `asm/unistd_64.h`; regenerate with `scripts/gen-syscalls.sh`.'
  echo
  echo '/// Every x86_64 syscall as `(name, number)`, sorted by number.'
  echo 'pub const SYSCALLS: &[(&str, i64)] = &['
  grep -E '^#define __NR_[a-z0-9_]+ [0-9]+' "$header" | awk '{sub("__NR_","",$2); printf "    (\"%s\", %s),\n", $2, $3}'
  # Syscalls newer than the build image's header (Linux 6.2 to 6.17), so a policy can name them.
  last=$(grep -E '^#define __NR_[a-z0-9_]+ [0-9]+' "$header" | awk '{print $3}' | sort -n | tail -1)
  n=451
  for name in cachestat fchmodat2 map_shadow_stack futex_wake futex_wait futex_requeue statmount \
              listmount lsm_get_self_attr lsm_set_self_attr lsm_list_modules mseal setxattrat \
              getxattrat listxattrat removexattrat open_tree_attr file_getattr file_setattr; do
    [ "$n" -gt "$last" ] && printf '    ("%s", %s),\n' "$name" "$n"
    n=$((n + 1))
  done
  echo '];'
} > policy/src/syscall_table.rs
