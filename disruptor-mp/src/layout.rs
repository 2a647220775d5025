//! Event layouts: the compile-time description of an event type, its 64-bit fingerprint, the flattened
//! field descriptor stored in a segment header, and the comparison that names the first differing field.
//!
//! Every [`RingEvent`](crate::RingEvent) carries a [`TypeLayout`] as an associated constant. The layout is a
//! tree: primitives at the leaves, arrays over an element type, structs over named fields. Its
//! [`fingerprint`](TypeLayout::fingerprint) is a const FNV-1a-64 hash over a format tag, the stable type name,
//! size, alignment and, for structs, every field's name, offset and type fingerprint (recursively). Only
//! stable names enter the hash (never a module path or `type_name`), so the same definition compiled into
//! two different crates has the same fingerprint, while a reordered, renamed or retyped field, a changed
//! array length or a changed nested struct changes it.
//!
//! The hash is part of the segment format: changing anything here changes every fingerprint and must bump
//! [`FINGERPRINT_FORMAT`].
//!
//! A layout also records whether the type has padding bytes anywhere
//! ([`has_padding`](TypeLayout::has_padding)). That is not hashed: it follows from the offsets and sizes the
//! fingerprint already covers.

use std::fmt;

/// Tag hashed first into every fingerprint. Changing the fingerprint scheme means changing this tag.
pub const FINGERPRINT_FORMAT: &str = "disruptor-mp/layout/v1";

/// The compile-time layout of an event type (or of a field's type).
#[derive(Debug, Clone, Copy)]
pub struct TypeLayout {
    /// Stable name: the primitive's name (`"u64"`), the struct's ident or its `#[ring_event(name = "...")]`,
    /// or `"array"` for arrays (see [`TypeLayout::display_name`] for the readable form).
    pub name: &'static str,
    /// `size_of` the type, in bytes.
    pub size: usize,
    /// `align_of` the type, in bytes.
    pub align: usize,
    /// What kind of type this is, with its parts.
    pub kind: TypeKind,
    /// The layout fingerprint (see the module docs).
    pub fingerprint: u64,
    /// Whether some bytes of the type are padding, at any depth: a primitive has none; an array has some
    /// when its element type has some (and it has at least one element); a struct has some when there is a
    /// gap before, between or after its fields, or when a field's type has some. Padding bytes are not
    /// initialized, so copying a value copies whatever the writer's memory held there. Not part of the
    /// fingerprint.
    pub has_padding: bool,
}

/// The shape of a [`TypeLayout`].
#[derive(Debug, Clone, Copy)]
pub enum TypeKind {
    /// A fixed-width integer, float or `Option<NonZero*>`: a leaf.
    Primitive,
    /// `[element; len]`.
    Array {
        /// Layout of the element type.
        element: &'static TypeLayout,
        /// Number of elements.
        len: usize,
    },
    /// A `#[repr(C)]` or `#[repr(transparent)]` struct, fields in declaration order.
    Struct {
        /// The fields, in declaration (and, for `repr(C)`, offset) order.
        fields: &'static [FieldLayout],
    },
}

/// One field of a struct layout.
#[derive(Debug, Clone, Copy)]
pub struct FieldLayout {
    /// The field's name; tuple-struct fields are named `"0"`, `"1"`, ...
    pub name: &'static str,
    /// Byte offset of the field inside the struct.
    pub offset: usize,
    /// Layout of the field's type.
    pub ty: &'static TypeLayout,
}

/// Incremental, const-evaluable FNV-1a-64.
#[derive(Debug, Clone, Copy)]
pub struct Fnv64(u64);

impl Fnv64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// A hasher already fed with [`FINGERPRINT_FORMAT`] and the given kind tag.
    pub const fn tagged(tag: &str) -> Self {
        Fnv64(Self::OFFSET_BASIS).str(FINGERPRINT_FORMAT).str(tag)
    }

    /// Feeds raw bytes.
    pub const fn bytes(self, bytes: &[u8]) -> Self {
        let mut hash = self.0;
        let mut i = 0;
        while i < bytes.len() {
            hash ^= bytes[i] as u64;
            hash = hash.wrapping_mul(Self::PRIME);
            i += 1;
        }
        Fnv64(hash)
    }

    /// Feeds a `u64` as 8 little-endian bytes (the same on every platform).
    pub const fn u64(self, value: u64) -> Self {
        self.bytes(&value.to_le_bytes())
    }

    /// Feeds a string, length-prefixed so that `("ab", "c")` and `("a", "bc")` differ.
    pub const fn str(self, value: &str) -> Self {
        self.u64(value.len() as u64).bytes(value.as_bytes())
    }

    /// The hash so far.
    pub const fn finish(self) -> u64 {
        self.0
    }
}

impl TypeLayout {
    /// Layout of a primitive leaf type.
    pub const fn primitive(name: &'static str, size: usize, align: usize) -> TypeLayout {
        let fingerprint = Fnv64::tagged("primitive")
            .str(name)
            .u64(size as u64)
            .u64(align as u64)
            .finish();
        TypeLayout {
            name,
            size,
            align,
            kind: TypeKind::Primitive,
            fingerprint,
            has_padding: false,
        }
    }

    /// Layout of `[element; len]`, whose size and alignment the caller takes from the real array type.
    pub const fn array(
        element: &'static TypeLayout,
        len: usize,
        size: usize,
        align: usize,
    ) -> TypeLayout {
        let fingerprint = Fnv64::tagged("array")
            .u64(element.fingerprint)
            .u64(len as u64)
            .u64(size as u64)
            .u64(align as u64)
            .finish();
        TypeLayout {
            name: "array",
            size,
            align,
            kind: TypeKind::Array { element, len },
            fingerprint,
            // Elements follow each other without gaps (an element's size is a multiple of its alignment).
            has_padding: len > 0 && element.has_padding,
        }
    }

    /// Layout of a struct; `#[derive(RingEvent)]` calls this with the real size, alignment and offsets.
    pub const fn structure(
        name: &'static str,
        size: usize,
        align: usize,
        fields: &'static [FieldLayout],
    ) -> TypeLayout {
        let mut hash = Fnv64::tagged("struct")
            .str(name)
            .u64(size as u64)
            .u64(align as u64)
            .u64(fields.len() as u64);
        let mut has_padding = first_gap(size, fields).is_some();
        let mut i = 0;
        while i < fields.len() {
            hash = hash
                .str(fields[i].name)
                .u64(fields[i].offset as u64)
                .u64(fields[i].ty.fingerprint);
            has_padding |= fields[i].ty.has_padding;
            i += 1;
        }
        TypeLayout {
            name,
            size,
            align,
            kind: TypeKind::Struct { fields },
            fingerprint: hash.finish(),
            has_padding,
        }
    }

    /// The type as a reader would write it: `u64`, `Tick`, `[u8; 16]`, `[[f32; 4]; 4]`.
    pub fn display_name(&self) -> String {
        match self.kind {
            TypeKind::Array { element, len } => format!("[{}; {}]", element.display_name(), len),
            TypeKind::Primitive | TypeKind::Struct { .. } => self.name.to_string(),
        }
    }

    /// The flattened field descriptor: one entry per leaf, nested structs expanded into dotted paths
    /// (`quote.bid.price`), arrays kept whole (`levels: [Level; 8]`). A type that is not a struct (an event
    /// that is a bare `u64`, say) flattens to one entry with an empty path.
    pub fn flatten(&self) -> Vec<LeafField> {
        let mut leaves = Vec::new();
        self.flatten_into(String::new(), 0, &mut leaves);
        leaves
    }

    fn flatten_into(&self, path: String, base: usize, out: &mut Vec<LeafField>) {
        match self.kind {
            TypeKind::Struct { fields } if !fields.is_empty() => {
                for field in fields {
                    let child = if path.is_empty() {
                        field.name.to_string()
                    } else {
                        format!("{path}.{}", field.name)
                    };
                    field.ty.flatten_into(child, base + field.offset, out);
                }
            }
            _ => out.push(LeafField {
                path,
                offset: base,
                size: self.size,
                type_name: self.display_name(),
                fingerprint: self.fingerprint,
            }),
        }
    }
}

/// Implicit padding between or after the fields of a struct: bytes that no field covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gap {
    /// Offset of the first padding byte.
    pub(crate) start: usize,
    /// Number of padding bytes.
    pub(crate) len: usize,
    /// Index of the field that ends where the gap starts (`None`: the gap is at offset 0).
    pub(crate) after: Option<usize>,
    /// Index of the field that starts where the gap ends (`None`: trailing padding).
    pub(crate) before: Option<usize>,
}

/// The first implicit gap in a struct of `size` bytes with these `fields`, taken in declaration order (which
/// is offset order for `repr(C)`; the extra fields of a `repr(transparent)` struct are zero-sized).
pub(crate) const fn first_gap(size: usize, fields: &[FieldLayout]) -> Option<Gap> {
    // `end`: the first byte not covered by any field so far; `last`: the field that ends there.
    let mut end = 0;
    let mut last = None;
    let mut i = 0;
    while i < fields.len() {
        let field = &fields[i];
        if field.offset > end {
            return Some(Gap {
                start: end,
                len: field.offset - end,
                after: last,
                before: Some(i),
            });
        }
        let field_end = field.offset + field.ty.size;
        if field_end >= end {
            end = field_end;
            last = Some(i);
        }
        i += 1;
    }
    if size > end {
        return Some(Gap {
            start: end,
            len: size - end,
            after: last,
            before: None,
        });
    }
    None
}

/// One leaf of a flattened field descriptor (see [`TypeLayout::flatten`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafField {
    /// Dotted path from the event root, e.g. `quote.bid.price`; empty for a non-struct event.
    pub path: String,
    /// Byte offset from the start of the event.
    pub offset: usize,
    /// Size of the leaf in bytes.
    pub size: usize,
    /// Readable type name, e.g. `u64` or `[u8; 16]`.
    pub type_name: String,
    /// Fingerprint of the leaf's type.
    pub fingerprint: u64,
}

impl fmt::Display for LeafField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "<event>"
        } else {
            &self.path
        };
        write!(f, "`{path}`: offset {}, {}", self.offset, self.type_name)
    }
}

/// The first place where two flattened descriptors disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDifference {
    /// Index of the first differing leaf.
    pub index: usize,
    /// That leaf in this process's type (`None`: this process's type has fewer leaves).
    pub here: Option<LeafField>,
    /// That leaf in the segment's type (`None`: the segment's type has fewer leaves).
    pub segment: Option<LeafField>,
}

impl FieldDifference {
    /// Compares two descriptors leaf by leaf (path, offset, size and type) and returns the first
    /// difference, or `None` when they agree on every leaf.
    pub fn first(here: &[LeafField], segment: &[LeafField]) -> Option<FieldDifference> {
        let len = here.len().max(segment.len());
        (0..len).find_map(|index| {
            let (a, b) = (here.get(index), segment.get(index));
            (a != b).then(|| FieldDifference {
                index,
                here: a.cloned(),
                segment: b.cloned(),
            })
        })
    }
}

impl fmt::Display for FieldDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.here, &self.segment) {
            (Some(a), Some(b)) if a.path == b.path => write!(
                f,
                "first difference at field `{}`: offset {}, {} (here) vs offset {}, {} (segment)",
                a.path, a.offset, a.type_name, b.offset, b.type_name
            ),
            (Some(a), Some(b)) => write!(
                f,
                "first difference at field #{}: {a} (here) vs {b} (segment)",
                self.index
            ),
            (Some(a), None) => write!(
                f,
                "first difference at field {a} (here), which the segment's type does not have"
            ),
            (None, Some(b)) => write!(
                f,
                "first difference at field {b} (segment), which this process's type does not have"
            ),
            (None, None) => write!(f, "no field difference"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RingEvent;

    #[test]
    fn primitive_fingerprints_differ_by_name_at_equal_size() {
        assert_ne!(u64::LAYOUT.fingerprint, i64::LAYOUT.fingerprint);
        assert_ne!(u64::LAYOUT.fingerprint, f64::LAYOUT.fingerprint);
        assert_ne!(u32::LAYOUT.fingerprint, f32::LAYOUT.fingerprint);
    }

    #[test]
    fn array_fingerprint_depends_on_length_and_element() {
        assert_ne!(<[u8; 4]>::LAYOUT.fingerprint, <[u8; 5]>::LAYOUT.fingerprint);
        assert_ne!(
            <[u32; 2]>::LAYOUT.fingerprint,
            <[f32; 2]>::LAYOUT.fingerprint
        );
        assert_eq!(<[[f32; 4]; 2]>::LAYOUT.display_name(), "[[f32; 4]; 2]");
    }

    #[test]
    fn string_hashing_is_length_prefixed() {
        let a = Fnv64::tagged("t").str("ab").str("c").finish();
        let b = Fnv64::tagged("t").str("a").str("bc").finish();
        assert_ne!(a, b);
    }

    #[test]
    fn primitive_event_flattens_to_one_unnamed_leaf() {
        let leaves = u32::LAYOUT.flatten();
        assert_eq!(leaves.len(), 1);
        assert_eq!(leaves[0].path, "");
        assert_eq!(leaves[0].type_name, "u32");
    }

    /// `side: u32` at 0, `price: u64` at 8: four bytes of padding in between.
    const GAPPED_FIELDS: &[FieldLayout] = &[
        FieldLayout {
            name: "side",
            offset: 0,
            ty: &u32::LAYOUT,
        },
        FieldLayout {
            name: "price",
            offset: 8,
            ty: &u64::LAYOUT,
        },
    ];
    const GAPPED: TypeLayout = TypeLayout::structure("Gapped", 16, 8, GAPPED_FIELDS);
    const HOLDER_FIELDS: &[FieldLayout] = &[FieldLayout {
        name: "inner",
        offset: 0,
        ty: &GAPPED,
    }];

    #[test]
    fn padding_is_found_in_gaps_and_propagates_through_fields_and_arrays() {
        let cases = [
            (u64::LAYOUT, false, "a primitive"),
            (<[u16; 3]>::LAYOUT, false, "an array of primitives"),
            (GAPPED, true, "a gap between fields"),
            (
                TypeLayout::structure("Leading", 16, 8, &GAPPED_FIELDS[1..]),
                true,
                "a gap before the first field",
            ),
            (
                TypeLayout::structure("Trailing", 8, 8, &GAPPED_FIELDS[..1]),
                true,
                "a gap after the last field",
            ),
            (
                TypeLayout::structure("Dense", 4, 4, &GAPPED_FIELDS[..1]),
                false,
                "a dense struct",
            ),
            (
                TypeLayout::structure("Holder", 16, 8, HOLDER_FIELDS),
                true,
                "no gap of its own, but a padded field",
            ),
            (
                TypeLayout::array(&GAPPED, 2, 32, 8),
                true,
                "an array of padded structs",
            ),
            (
                TypeLayout::array(&GAPPED, 0, 0, 8),
                false,
                "an empty array, which has no bytes at all",
            ),
        ];
        for (layout, expected, what) in cases {
            assert_eq!(layout.has_padding, expected, "{what}");
        }
    }

    #[test]
    fn first_gap_names_the_fields_around_it() {
        assert_eq!(
            first_gap(16, GAPPED_FIELDS),
            Some(Gap {
                start: 4,
                len: 4,
                after: Some(0),
                before: Some(1),
            })
        );
        assert_eq!(
            first_gap(16, &GAPPED_FIELDS[1..]),
            Some(Gap {
                start: 0,
                len: 8,
                after: None,
                before: Some(0),
            })
        );
        assert_eq!(
            first_gap(8, &GAPPED_FIELDS[..1]),
            Some(Gap {
                start: 4,
                len: 4,
                after: Some(0),
                before: None,
            })
        );
        assert_eq!(first_gap(4, &GAPPED_FIELDS[..1]), None);
        assert_eq!(first_gap(0, &[]), None);
    }

    #[test]
    fn first_difference_reports_missing_leaves() {
        let a = u64::LAYOUT.flatten();
        let diff = FieldDifference::first(&a, &[]).expect("differs");
        assert_eq!(diff.index, 0);
        assert!(diff.segment.is_none());
        assert!(FieldDifference::first(&a, &a).is_none());
    }
}
