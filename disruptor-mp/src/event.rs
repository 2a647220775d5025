//! The event contract: [`RingEvent`] and its implementations for the primitive types.
//!
//! An event is a plain-data struct that `#[derive(RingEvent)]` has checked: `#[repr(C)]` (or
//! `#[repr(transparent)]`, with any `align(N)`), not packed, `Copy` and `Default`, no generics, every field
//! itself an event, and no padding bytes, neither implicit padding of its own nor padding inside a field's
//! type, unless the struct itself says `#[ring_event(allow_padding)]`. The derive also computes the
//! struct's [`TypeLayout`] from `size_of`, `align_of` and `offset_of!`, and with it the fingerprint that two
//! processes compare before sharing a ring.
//!
//! ```
//! use disruptor_mp::RingEvent;
//!
//! #[derive(RingEvent, Clone, Copy, Default, Debug)]
//! #[repr(C)]
//! pub struct Tick {
//!     pub price: i64,
//!     pub qty: u32,
//!     pub side: u8,            // 0 = buy, 1 = sell: `bool` is refused, `u8` is not
//!     pub _pad: [u8; 3],       // explicit padding: implicit padding is refused
//!     pub symbol: [u8; 8],
//! }
//!
//! // A nested event, renamed for the fingerprint and frozen: this fails to compile if the layout drifts.
//! #[derive(RingEvent, Clone, Copy, Default)]
//! #[repr(C, align(8))]
//! #[ring_event(name = "Trade", expect_fingerprint = 0x32ec_122f_19b2_3d41)]
//! pub struct TradeV2 {
//!     pub tick: Tick,
//!     pub venue: Option<std::num::NonZeroU32>,
//!     pub flags: u32,
//! }
//!
//! assert_eq!(Tick::LAYOUT.size, 24);
//! assert_eq!(TradeV2::LAYOUT.name, "Trade");
//! let paths: Vec<String> = TradeV2::LAYOUT.flatten().into_iter().map(|leaf| leaf.path).collect();
//! assert_eq!(paths[..3], ["tick.price", "tick.qty", "tick.side"]);
//! ```
//!
//! Everything that could make another process misread the bytes is a compile error with an explanation,
//! for example a `bool` field:
//!
//! ```compile_fail
//! use disruptor_mp::RingEvent;
//!
//! #[derive(RingEvent, Clone, Copy, Default)]
//! #[repr(C)]
//! pub struct Flags {
//!     pub active: bool, // error: `bool` cannot be an event field [...]; use `u8` [...] instead
//! }
//! ```

use crate::layout::TypeLayout;
use std::num::{
    NonZeroI128, NonZeroI16, NonZeroI32, NonZeroI64, NonZeroI8, NonZeroU128, NonZeroU16,
    NonZeroU32, NonZeroU64, NonZeroU8,
};

/// A plain-data type that can live in a shared-memory ring and be read by another process.
///
/// Implement it with `#[derive(RingEvent)]`, which proves the requirements at compile time and computes
/// the layout; the runtime implements it for the fixed-width integers, `f32`, `f64`, arrays `[T; N]` of any
/// event type, and `Option<NonZero*>`.
///
/// # Safety
///
/// An implementation promises that:
/// - every bit pattern of `size_of::<Self>()` bytes is a valid `Self` (another process writes the bytes,
///   so `bool`, `char`, enums, references and pointers are excluded);
/// - [`RingEvent::LAYOUT`] describes the real type: its size, alignment, every field's offset and type,
///   and in [`has_padding`](TypeLayout::has_padding) whether any of its bytes, at any depth, are padding
///   (the derive relies on it to refuse padding that a struct did not opt in to).
///
/// Padding bytes are uninitialized: they are copied into shared memory, where every process mapping the
/// ring can read them, but never read as data. The derive therefore refuses padding, a struct's own or
/// inside a field's type, unless the struct itself says `#[ring_event(allow_padding)]`: an array carries
/// its element's padding, and a struct that contains a padded type must opt in too.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be used as a shared-memory event or event field",
    label = "`{Self}` does not implement `RingEvent`",
    note = "an event field must be a fixed-width integer, f32, f64, an array of events, Option<NonZero*>, or a struct with #[derive(RingEvent)]",
    note = "bool, char, usize/isize, enums, references and raw pointers are refused: another process may write any bit pattern, and pointer widths or addresses mean nothing there"
)]
pub unsafe trait RingEvent: Copy + Send + Sync + 'static {
    /// The layout of the type: name, size, alignment, fields and fingerprint.
    const LAYOUT: TypeLayout;
}

macro_rules! primitive_events {
    ($($ty:ty => $name:literal),* $(,)?) => {$(
        // SAFETY: every bit pattern of this fixed-width integer or float (or the all-zero pattern for
        // `None` of an `Option<NonZero*>`, plus every non-zero pattern for `Some`) is a valid value, and
        // the type has no padding.
        unsafe impl RingEvent for $ty {
            const LAYOUT: TypeLayout = TypeLayout::primitive(
                $name,
                core::mem::size_of::<$ty>(),
                core::mem::align_of::<$ty>(),
            );
        }
    )*};
}

primitive_events! {
    u8 => "u8", u16 => "u16", u32 => "u32", u64 => "u64", u128 => "u128",
    i8 => "i8", i16 => "i16", i32 => "i32", i64 => "i64", i128 => "i128",
    f32 => "f32", f64 => "f64",
    Option<NonZeroU8> => "Option<NonZeroU8>",
    Option<NonZeroU16> => "Option<NonZeroU16>",
    Option<NonZeroU32> => "Option<NonZeroU32>",
    Option<NonZeroU64> => "Option<NonZeroU64>",
    Option<NonZeroU128> => "Option<NonZeroU128>",
    Option<NonZeroI8> => "Option<NonZeroI8>",
    Option<NonZeroI16> => "Option<NonZeroI16>",
    Option<NonZeroI32> => "Option<NonZeroI32>",
    Option<NonZeroI64> => "Option<NonZeroI64>",
    Option<NonZeroI128> => "Option<NonZeroI128>",
}

// SAFETY: an array of events has no padding between elements (the element size is a multiple of its
// alignment), so its only padding is its elements', which `TypeLayout::array` reports; every bit pattern
// is valid because every element's is.
unsafe impl<T: RingEvent, const N: usize> RingEvent for [T; N] {
    const LAYOUT: TypeLayout = TypeLayout::array(
        &T::LAYOUT,
        N,
        core::mem::size_of::<[T; N]>(),
        core::mem::align_of::<[T; N]>(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_nonzero_is_the_size_of_its_integer() {
        assert_eq!(<Option<NonZeroU32>>::LAYOUT.size, 4);
        assert_eq!(
            <Option<NonZeroU32>>::LAYOUT.display_name(),
            "Option<NonZeroU32>"
        );
    }

    #[test]
    fn arrays_of_any_length_are_events() {
        assert_eq!(<[u8; 0]>::LAYOUT.size, 0);
        assert_eq!(<[u64; 1000]>::LAYOUT.size, 8000);
        assert_eq!(<[u64; 1000]>::LAYOUT.align, 8);
    }
}
