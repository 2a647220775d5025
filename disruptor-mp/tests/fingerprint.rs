//! Layout fingerprints of derived events: golden values, stability across modules, sensitivity to every
//! layout change, and the flattened field descriptor.
//!
//! The golden values are part of the segment format: a process built from an older release must compute the
//! same fingerprint for the same definition. If one of them changes, the fingerprint scheme (or the derive's
//! input to it) changed, and `FINGERPRINT_FORMAT` must be bumped, not the literal here.

use disruptor_mp::layout::{FieldLayout, Fnv64, TypeKind, TypeLayout};
use disruptor_mp::RingEvent;
use std::mem::{align_of, offset_of, size_of};

/// The same definition of `Tick` in two modules (and the same `Level`/`Quote` in two more).
mod a {
    use disruptor_mp::RingEvent;

    #[derive(RingEvent, Clone, Copy, Default)]
    #[repr(C)]
    #[ring_event(expect_fingerprint = 0x0c05_427c_c02d_ec77)]
    pub struct Tick {
        pub price: u64,
        pub qty: u64,
    }
}

mod b {
    use disruptor_mp::RingEvent;

    #[derive(RingEvent, Clone, Copy, Default)]
    #[repr(C)]
    pub struct Tick {
        pub price: u64,
        pub qty: u64,
    }
}

/// Variants of `Tick`, all under the stable name "Tick", each differing from `a::Tick` in one way.
mod variants {
    use disruptor_mp::RingEvent;

    #[derive(RingEvent, Clone, Copy, Default)]
    #[repr(C)]
    #[ring_event(name = "Tick")]
    pub struct Reordered {
        pub qty: u64,
        pub price: u64,
    }

    #[derive(RingEvent, Clone, Copy, Default)]
    #[repr(C)]
    #[ring_event(name = "Tick")]
    pub struct FloatPrice {
        pub price: f64,
        pub qty: u64,
    }

    #[derive(RingEvent, Clone, Copy, Default)]
    #[repr(C)]
    #[ring_event(name = "Tick")]
    pub struct SignedPrice {
        pub price: i64,
        pub qty: u64,
    }

    #[derive(RingEvent, Clone, Copy, Default)]
    #[repr(C)]
    #[ring_event(name = "Tick")]
    pub struct RenamedField {
        pub px: u64,
        pub qty: u64,
    }

    #[derive(RingEvent, Clone, Copy, Default)]
    #[repr(C)]
    #[ring_event(name = "Trade")]
    pub struct OtherName {
        pub price: u64,
        pub qty: u64,
    }

    #[derive(RingEvent, Clone, Copy, Default)]
    #[repr(C, align(16))]
    #[ring_event(name = "Tick")]
    pub struct Aligned {
        pub price: u64,
        pub qty: u64,
    }
}

macro_rules! book_module {
    ($module:ident, $qty:ident, $symbol_len:literal) => {
        mod $module {
            use disruptor_mp::RingEvent;

            #[derive(RingEvent, Clone, Copy, Default)]
            #[repr(C)]
            pub struct Level {
                pub price: i64,
                pub $qty: u64,
            }

            #[derive(RingEvent, Clone, Copy, Default)]
            #[repr(C)]
            pub struct Quote {
                pub bid: Level,
                pub ask: Level,
            }

            #[derive(RingEvent, Clone, Copy, Default)]
            #[repr(C)]
            pub struct Update {
                pub seq: u64,
                pub quote: Quote,
                pub symbol: [u8; $symbol_len],
                pub depth: [Level; 2],
            }
        }
    };
}

book_module!(book, qty, 16);
book_module!(book_copy, qty, 16);
book_module!(book_renamed_level_field, size, 16);
book_module!(book_longer_symbol, qty, 24);

/// A tuple struct: fields are named "0" and "1".
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
struct Pair(u32, f32);

/// A transparent newtype.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(transparent)]
struct Price(i64);

#[test]
fn golden_fingerprints() {
    assert_eq!(a::Tick::LAYOUT.fingerprint, 0x0c05_427c_c02d_ec77);
    assert_eq!(book::Level::LAYOUT.fingerprint, 0x0696_9113_ed01_bc06);
    assert_eq!(book::Quote::LAYOUT.fingerprint, 0xa7c2_1aa4_e72f_0c36);
    assert_eq!(book::Update::LAYOUT.fingerprint, 0x5c0f_bdf3_5c7c_9167);
    assert_eq!(Pair::LAYOUT.fingerprint, 0x24ba_81f6_c105_ae01);
    assert_eq!(Price::LAYOUT.fingerprint, 0x87a4_b75b_9aa2_e94a);
}

/// Recomputes `Tick`'s fingerprint from the documented scheme with literal inputs, so that the derive is
/// shown to feed exactly (name, size, align, field count, then name, offset, type fingerprint per field).
#[test]
fn tick_fingerprint_follows_the_documented_scheme() {
    let u64_fingerprint = Fnv64::tagged("primitive").str("u64").u64(8).u64(8).finish();
    let expected = Fnv64::tagged("struct")
        .str("Tick")
        .u64(16)
        .u64(8)
        .u64(2)
        .str("price")
        .u64(0)
        .u64(u64_fingerprint)
        .str("qty")
        .u64(8)
        .u64(u64_fingerprint)
        .finish();
    assert_eq!(a::Tick::LAYOUT.fingerprint, expected);
}

#[test]
fn same_definition_in_two_modules_has_the_same_fingerprint() {
    assert_eq!(a::Tick::LAYOUT.fingerprint, b::Tick::LAYOUT.fingerprint);
    assert_eq!(
        book::Update::LAYOUT.fingerprint,
        book_copy::Update::LAYOUT.fingerprint
    );
    assert_eq!(a::Tick::LAYOUT.name, "Tick");
    assert_eq!(book_copy::Update::LAYOUT.name, "Update");
}

#[test]
fn every_layout_change_changes_the_fingerprint() {
    let base = a::Tick::LAYOUT.fingerprint;
    let changed = [
        ("reordered fields", variants::Reordered::LAYOUT),
        ("u64 -> f64", variants::FloatPrice::LAYOUT),
        ("u64 -> i64", variants::SignedPrice::LAYOUT),
        ("renamed field", variants::RenamedField::LAYOUT),
        ("changed name", variants::OtherName::LAYOUT),
        ("changed alignment", variants::Aligned::LAYOUT),
    ];
    for (what, layout) in changed {
        assert_ne!(layout.fingerprint, base, "{what}");
    }
    // All variants but `OtherName` keep the stable name, and all but `Aligned` keep size and alignment:
    // only the named change distinguishes them.
    assert_eq!(variants::FloatPrice::LAYOUT.name, "Tick");
    assert_eq!(variants::FloatPrice::LAYOUT.size, a::Tick::LAYOUT.size);
    // The variants also differ from each other.
    for (i, (what_a, x)) in changed.iter().enumerate() {
        for (what_b, y) in &changed[i + 1..] {
            assert_ne!(x.fingerprint, y.fingerprint, "{what_a} vs {what_b}");
        }
    }
}

#[test]
fn nested_and_array_changes_change_the_fingerprint() {
    let base = book::Update::LAYOUT.fingerprint;
    // `Level.qty` renamed to `Level.size`: the nested change reaches `Quote` and `Update`.
    assert_ne!(
        book_renamed_level_field::Level::LAYOUT.fingerprint,
        book::Level::LAYOUT.fingerprint
    );
    assert_ne!(
        book_renamed_level_field::Quote::LAYOUT.fingerprint,
        book::Quote::LAYOUT.fingerprint
    );
    assert_ne!(book_renamed_level_field::Update::LAYOUT.fingerprint, base);
    // `symbol: [u8; 16]` -> `[u8; 24]`; `Level` and `Quote` are unchanged.
    assert_eq!(
        book_longer_symbol::Quote::LAYOUT.fingerprint,
        book::Quote::LAYOUT.fingerprint
    );
    assert_ne!(book_longer_symbol::Update::LAYOUT.fingerprint, base);
}

#[test]
fn flatten_expands_nested_structs_into_dotted_paths() {
    let leaves: Vec<(String, usize, usize, String)> = book::Update::LAYOUT
        .flatten()
        .into_iter()
        .map(|leaf| (leaf.path, leaf.offset, leaf.size, leaf.type_name))
        .collect();
    let expected = [
        ("seq", 0, 8, "u64"),
        ("quote.bid.price", 8, 8, "i64"),
        ("quote.bid.qty", 16, 8, "u64"),
        ("quote.ask.price", 24, 8, "i64"),
        ("quote.ask.qty", 32, 8, "u64"),
        ("symbol", 40, 16, "[u8; 16]"),
        ("depth", 56, 32, "[Level; 2]"),
    ];
    let expected: Vec<(String, usize, usize, String)> = expected
        .into_iter()
        .map(|(p, o, s, t)| (p.to_string(), o, s, t.to_string()))
        .collect();
    assert_eq!(leaves, expected);
    assert_eq!(book::Update::LAYOUT.size, 88);

    let pair: Vec<_> = Pair::LAYOUT
        .flatten()
        .into_iter()
        .map(|l| (l.path, l.offset, l.type_name))
        .collect();
    assert_eq!(
        pair,
        [
            ("0".to_string(), 0, "u32".to_string()),
            ("1".to_string(), 4, "f32".to_string())
        ]
    );
}

fn struct_fields(layout: &TypeLayout) -> &'static [FieldLayout] {
    match layout.kind {
        TypeKind::Struct { fields } => fields,
        other => panic!("{} is not a struct: {other:?}", layout.name),
    }
}

#[test]
fn layout_numbers_are_the_compilers() {
    let update = book::Update::LAYOUT;
    assert_eq!(update.size, size_of::<book::Update>());
    assert_eq!(update.align, align_of::<book::Update>());
    let offsets: Vec<_> = struct_fields(&update).iter().map(|f| f.offset).collect();
    assert_eq!(
        offsets,
        [
            offset_of!(book::Update, seq),
            offset_of!(book::Update, quote),
            offset_of!(book::Update, symbol),
            offset_of!(book::Update, depth),
        ]
    );
    let names: Vec<_> = struct_fields(&update).iter().map(|f| f.name).collect();
    assert_eq!(names, ["seq", "quote", "symbol", "depth"]);
    // Each field's type layout is that type's own layout.
    assert_eq!(
        struct_fields(&update)[1].ty.fingerprint,
        book::Quote::LAYOUT.fingerprint
    );

    let aligned = variants::Aligned::LAYOUT;
    assert_eq!(aligned.align, 16);
    assert_eq!(aligned.size, size_of::<variants::Aligned>());
    assert_eq!(
        struct_fields(&aligned)[1].offset,
        offset_of!(variants::Aligned, qty)
    );

    assert_eq!(Pair::LAYOUT.size, size_of::<Pair>());
    assert_eq!(struct_fields(&Pair::LAYOUT)[1].offset, offset_of!(Pair, 1));
    assert_eq!(Price::LAYOUT.size, size_of::<Price>());
    assert_eq!(Price::LAYOUT.align, align_of::<Price>());
}
