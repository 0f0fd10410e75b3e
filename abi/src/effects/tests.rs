//! The effect model's laws and the parser's errors.

use super::*;

fn p(s: &str) -> EffectSet {
    s.parse()
        .unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn perr(s: &str) -> EffectParseError {
    match s.parse::<EffectSet>() {
        Ok(e) => panic!("{s:?} should not parse, got {e}"),
        Err(e) => e,
    }
}

/// Sorted, deduplicated lists with empty lists dropped: the form the
/// parser and `union` produce.
fn normalize(e: &EffectSet) -> EffectSet {
    e.union(&PURE)
}

fn mutates_options() -> Vec<Option<Mutates>> {
    vec![
        None,
        Some(Mutates::All),
        Some(Mutates::Args(vec![])),
        Some(Mutates::Args(vec![0])),
        Some(Mutates::Args(vec![2, 0, 2])),
        Some(Mutates::Args(vec![0, 1, 5, 63])),
    ]
}

fn throws_options() -> Vec<Option<Throws>> {
    let t = |v: &[&str]| Some(Throws::Types(v.iter().map(|s| s.to_string()).collect()));
    vec![
        None,
        Some(Throws::Any),
        t(&[]),
        t(&["ValueError"]),
        t(&["ValueError", "OSError", "ValueError"]),
        t(&["socket.timeout", "_Private", "a.b_C.D9"]),
    ]
}

fn all_sets() -> Vec<EffectSet> {
    let mut out = Vec::new();
    for bits in 0..8u8 {
        for m in mutates_options() {
            for t in throws_options() {
                out.push(EffectSet {
                    alloc: bits & 1 != 0,
                    io: bits & 2 != 0,
                    nondet: bits & 4 != 0,
                    mutates: m.clone(),
                    throws: t,
                });
            }
        }
    }
    out
}

#[test]
fn constants_print_exactly() {
    assert_eq!(PURE.to_string(), "pure");
    assert_eq!(
        WORST_CASE.to_string(),
        "io + nondet + mutates(all) + throws(any)"
    );
    assert_eq!(p("io + nondet + mutates(all) + throws(any)"), WORST_CASE);
    assert_eq!(p("pure"), PURE);
    assert_eq!(EffectSet::default(), PURE);
    assert!(PURE.is_pure() && !PURE.is_worst_case());
    assert!(WORST_CASE.is_worst_case() && !WORST_CASE.is_pure());
    assert!(WORST_CASE.union(&p("alloc")).is_worst_case());
}

#[test]
fn display_canonical_order() {
    let e = p("throws(types=[ValueError, OSError]) + mutates(args=[2,0]) + nondet + io + alloc");
    assert_eq!(
        e.to_string(),
        "alloc + io + nondet + mutates(args=[0, 2]) + throws(types=[OSError, ValueError])"
    );
    let raw = EffectSet {
        throws: Some(Throws::Types(vec!["ValueError".into(), "OSError".into()])),
        ..PURE
    };
    assert_eq!(raw.to_string(), "throws(types=[ValueError, OSError])");
}

#[test]
fn parse_is_whitespace_insensitive_and_merges_repeats() {
    let a = p("  mutates ( args = [ 2 , 0 ] )+io+ mutates(args=[1,2])\t+ io ");
    assert_eq!(a.mutates, Some(Mutates::Args(vec![0, 1, 2])));
    assert!(a.io);
    assert_eq!(
        p("mutates(args=[1]) + mutates(all)").mutates,
        Some(Mutates::All)
    );
    assert_eq!(
        p("throws(types=[B]) + throws(any)").throws,
        Some(Throws::Any)
    );
    assert_eq!(
        p("throws(types=[B, a.C]) + throws(types=[B])").throws,
        Some(Throws::Types(vec!["B".into(), "a.C".into()]))
    );
}

#[test]
fn empty_lists_mean_nothing() {
    let e = p("mutates(args=[]) + throws(types=[ ])");
    assert!(e.is_pure());
    assert_eq!(e, PURE);
    assert_eq!(e.to_string(), "pure");
    let raw = EffectSet {
        mutates: Some(Mutates::Args(vec![])),
        throws: Some(Throws::Types(vec![])),
        ..PURE
    };
    assert!(raw.is_pure() && raw.may_reorder());
    assert_eq!(raw.to_string(), "pure");
    assert!(PURE.covers(&raw) && raw.covers(&PURE));
}

#[test]
fn round_trip_over_enumeration() {
    for e in all_sets() {
        let text = e.to_string();
        let back = p(&text);
        assert_eq!(back, normalize(&e), "via {text:?}");
        assert_eq!(back.to_string(), normalize(&e).to_string());
        assert_eq!(p(&back.to_string()), back);
    }
}

#[test]
fn union_and_covers_laws() {
    let sets: Vec<EffectSet> = all_sets().iter().map(normalize).collect();
    for a in &sets {
        assert_eq!(a.union(a), *a);
        assert_eq!(a.union(&PURE), *a);
        assert!(a.covers(a));
        assert!(a.covers(&PURE));
        assert!(WORST_CASE.covers(a), "worst case must cover {a}");
        for b in &sets {
            let u = a.union(b);
            assert_eq!(u, b.union(a));
            assert!(u.covers(a) && u.covers(b), "{u} must cover {a} and {b}");
            if a.covers(b) && b.covers(a) && a.alloc == b.alloc {
                assert_eq!(a, b);
            }
        }
    }
    for a in sets.iter().step_by(7) {
        for b in sets.iter().step_by(5) {
            for c in sets.iter().step_by(11) {
                assert_eq!(a.union(b).union(c), a.union(&b.union(c)));
            }
        }
    }
}

#[test]
fn covers_specifics() {
    assert!(p("mutates(all)").covers(&p("mutates(args=[3])")));
    assert!(!p("mutates(args=[3])").covers(&p("mutates(all)")));
    assert!(!p("mutates(args=[0])").covers(&p("mutates(args=[0, 1])")));
    assert!(p("throws(types=[A, B])").covers(&p("throws(types=[B])")));
    assert!(!p("throws(types=[A])").covers(&p("throws(any)")));
    assert!(p("io").covers(&p("alloc")));
    assert!(!p("alloc").covers(&p("io")));
    assert!(!p("io").covers(&p("nondet")));
}

#[test]
fn optimisation_permissions() {
    for (s, ok) in [
        ("pure", true),
        ("alloc", true),
        ("io", false),
        ("nondet", false),
        ("mutates(args=[0])", false),
        ("throws(types=[E])", false),
        ("alloc + throws(any)", false),
    ] {
        let e = p(s);
        assert_eq!(e.may_reorder(), ok, "{s}");
        assert_eq!(e.may_cache(), ok, "{s}");
        assert_eq!(e.may_eliminate(), ok, "{s}");
    }
    assert!(!WORST_CASE.may_reorder());
}

#[test]
fn serde_uses_the_display_string() {
    let e = p("alloc + throws(types=[E])");
    let json = serde_json::to_string(&e).unwrap();
    assert_eq!(json, "\"alloc + throws(types=[E])\"");
    let back: EffectSet = serde_json::from_str(&json).unwrap();
    assert_eq!(back, e);
    let bad = serde_json::from_str::<EffectSet>("\"pure + io\"").unwrap_err();
    assert!(bad.to_string().contains("column 1"), "{bad}");
    assert!(serde_json::from_str::<EffectSet>("3").is_err());
}

#[test]
fn errors_with_columns() {
    // (input, column, a word the message must contain)
    let cases: &[(&str, usize, &str)] = &[
        ("", 1, "empty"),
        ("   ", 1, "empty"),
        ("pure + io", 1, "stand alone"),
        ("io + pure", 6, "stand alone"),
        ("pure + pure", 1, "stand alone"),
        ("mutates", 1, "mutates(all)"),
        ("io + mutates + nondet", 6, "mutates(all)"),
        ("throws", 1, "throws(any)"),
        ("frobs", 1, "unknown effect 'frobs'"),
        ("io + IO", 6, "throws(types=[...])"),
        ("io +", 5, "after '+'"),
        ("+ io", 1, "expected an effect"),
        ("io + + nondet", 6, "after '+'"),
        ("io nondet", 4, "expected '+'"),
        ("io, nondet", 3, "expected '+'"),
        ("alloc()", 6, "takes no arguments"),
        ("pure (x)", 6, "takes no arguments"),
        ("mutates()", 9, "'all' or 'args=[...]'"),
        ("mutates(some)", 9, "found 'some'"),
        ("mutates(all", 12, "expected ')'"),
        ("mutates(all]", 12, "expected ')'"),
        ("mutates(args)", 13, "expected '='"),
        ("mutates(args=0)", 14, "expected '['"),
        ("mutates(args=[a])", 15, "non-negative"),
        ("mutates(args=[-1])", 15, "non-negative"),
        ("mutates(args=[0,])", 17, "non-negative"),
        ("mutates(args=[0 1])", 17, "expected ']'"),
        (
            "mutates(args=[0, 99999999999999999999999])",
            18,
            "too large",
        ),
        ("mutates(args=[0]", 17, "expected ')'"),
        ("throws()", 8, "'any' or 'types=[...]'"),
        ("throws(all)", 8, "found 'all'"),
        ("throws(types=[1E])", 15, "exception type name"),
        (
            "throws(types=[a..b])",
            15,
            "invalid exception type name 'a..b'",
        ),
        ("throws(types=[a.])", 15, "invalid exception type name"),
        ("throws(types=[A,])", 17, "exception type name"),
        ("throws(types=[A B])", 17, "expected ']'"),
        ("throws(any) x", 13, "expected '+'"),
        ("io\n+ é", 6, "'é'"),
    ];
    for &(input, column, needle) in cases {
        let e = perr(input);
        assert_eq!(e.column, column, "{input:?}: {e}");
        assert!(e.message.contains(needle), "{input:?}: {e}");
        assert!(!e.message.contains('\n'), "{input:?}: {e}");
        assert_eq!(e.to_string(), format!("column {column}: {}", e.message));
    }
}

#[test]
fn unknown_lists_valid_terms() {
    let m = perr("bogus").message;
    for t in [
        "pure",
        "alloc",
        "io",
        "nondet",
        "mutates(all)",
        "throws(any)",
    ] {
        assert!(m.contains(t), "{m}");
    }
}
