//! The derive's output in a strict user crate: no warnings under `missing_docs`, clippy's default and
//! pedantic groups (this file is linted by `cargo clippy --all-targets -- -D warnings`), no dependence on
//! names in scope at the use site, and usable from function bodies.
#![deny(missing_docs, warnings, clippy::all, clippy::pedantic)]

/// Shadows names the generated code must not pick up from the use site.
#[allow(dead_code)]
mod shadowing {
    /// Not `core`.
    pub mod core {}
    /// Not `disruptor_mp`.
    pub mod disruptor_mp {}
    /// Not the trait.
    pub trait RingEvent {}
    /// Not `FieldLayout`.
    pub struct FieldLayout;
    /// Not `TypeLayout`.
    pub struct TypeLayout;
    /// Not `Option`.
    pub struct Option;

    /// Derived with all of the above in scope.
    #[derive(::disruptor_mp::RingEvent, Clone, Copy, Default)]
    #[repr(C)]
    pub struct Shadowed {
        /// A field.
        pub value: u64,
        /// Another.
        pub other: [u32; 2],
    }
}

use disruptor_mp::RingEvent;

/// A public, documented event.
#[derive(RingEvent, Clone, Copy, Default, Debug, PartialEq, Eq)]
#[repr(C)]
#[ring_event(name = "Documented", expect_fingerprint = 0x308a_b681_c274_6aa4)]
pub struct Documented {
    /// A field.
    pub value: u64,
}

#[test]
fn derived_in_scope_with_shadowing_names() {
    assert_eq!(shadowing::Shadowed::LAYOUT.size, 16);
    assert_eq!(shadowing::Shadowed::LAYOUT.flatten().len(), 2);
}

#[test]
fn derived_inside_a_function_body() {
    #[derive(RingEvent, Clone, Copy, Default)]
    #[repr(C)]
    struct Local {
        a: u32,
        b: u32,
    }
    let local = Local { a: 1, b: 2 };
    assert_eq!(local.a + local.b, 3);
    assert_eq!(Local::LAYOUT.name, "Local");
    assert_eq!(Local::LAYOUT.size, 8);
}

#[test]
fn expect_fingerprint_pins_the_value() {
    assert_eq!(Documented::LAYOUT.fingerprint, 0x308a_b681_c274_6aa4);
    assert_eq!(Documented::default(), Documented { value: 0 });
}
