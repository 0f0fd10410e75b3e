//! Defence in depth: the helper's process identity and the host's reports, from the attacker's side (issue 9).
