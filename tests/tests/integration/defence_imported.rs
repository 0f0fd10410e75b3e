//! Defence in depth under imported Docker/OCI and seccompiler profiles, from the attacker's side (issue 9).
