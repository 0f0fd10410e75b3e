//! Defence in depth: routes a policy cannot see past, from the attacker's side (issue 9).
