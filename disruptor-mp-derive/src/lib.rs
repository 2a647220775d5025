//! `#[derive(RingEvent)]` for disruptor-mp.
//!
//! The derive proves at compile time that a struct can live in a shared-memory ring read by other
//! processes, and computes its layout (and so its fingerprint) from the compiler's own numbers:
//! `size_of`, `align_of` and `offset_of!`. Use it through the runtime crate (`use disruptor_mp::RingEvent;`),
//! which documents the contract.
//!
//! What the macro checks itself (syntax): the item is a non-generic struct with `#[repr(C)]` or
//! `#[repr(transparent)]` and without `packed`; the `#[ring_event(...)]` keys are known; no field is a
//! `bool`, `char`, `usize`, `isize`, reference, raw pointer or fn pointer (each with a message saying what
//! to use instead). What it makes the compiler check (the generated code): every field type implements
//! `RingEvent`, the struct is `Copy` and `Default`, it has no padding, neither implicit padding of its own nor
//! padding inside a field's type (unless the struct itself says `#[ring_event(allow_padding)]`), and the
//! fingerprint matches `#[ring_event(expect_fingerprint = ...)]`.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    parse_macro_input, Attribute, Data, DeriveInput, Fields, GenericParam, Ident, LitInt, LitStr,
    Member, Type,
};

/// Derives `disruptor_mp::RingEvent` for a `#[repr(C)]` or `#[repr(transparent)]` struct.
///
/// Attributes, all optional, under `#[ring_event(...)]` on the struct:
/// - `name = "..."`: the stable name hashed into the fingerprint (default: the struct's identifier);
/// - `allow_padding`: accept padding bytes, the struct's own implicit padding and padding inside its fields'
///   types, instead of refusing them (padding is uninitialized memory of the writing process, copied into
///   shared memory); a struct that contains such a type must say `allow_padding` too;
/// - `expect_fingerprint = 0x...`: fail to compile when the layout fingerprint is different.
#[proc_macro_derive(RingEvent, attributes(ring_event))]
pub fn derive_ring_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// Collects every error found, so that the user sees all of them in one build.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, err: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(err),
            None => self.0 = Some(err),
        }
    }

    fn add(&mut self, span: Span, message: impl std::fmt::Display) {
        self.push(syn::Error::new(span, message));
    }

    /// An error spanning all of `tokens` (on stable, a single `Span` covers only one token).
    fn add_spanned(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// The options given in `#[ring_event(...)]`.
#[derive(Default)]
struct Options {
    name: Option<LitStr>,
    allow_padding: bool,
    expect_fingerprint: Option<LitInt>,
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let mut errors = Errors::default();
    let ident = &input.ident;

    // Enums and unions are refused outright; their other attributes do not matter.
    let fields = match &input.data {
        Data::Struct(data) => &data.fields,
        Data::Enum(data) => {
            return Err(syn::Error::new(
                data.enum_token.span,
                format_args!(
                    "`#[derive(RingEvent)]` cannot be used on enum `{ident}`: another process may write any \
                     bit pattern into an event, and most bit patterns are not a valid enum discriminant; \
                     use a struct with an integer tag field (e.g. `kind: u8`) and constants for its values"
                ),
            ));
        }
        Data::Union(data) => {
            return Err(syn::Error::new(
                data.union_token.span,
                format_args!(
                    "`#[derive(RingEvent)]` cannot be used on union `{ident}`: nothing in a union records \
                     which of its fields another process wrote, so a reader could not tell how to interpret \
                     the bytes; use a struct with a tag field and a `[u8; N]` payload"
                ),
            ));
        }
    };

    check_generics(input, &mut errors);
    check_repr(input, &mut errors);
    let options = parse_options(&input.attrs, &mut errors);
    for field in fields {
        for attr in &field.attrs {
            if attr.path().is_ident("ring_event") {
                errors.add_spanned(
                    attr,
                    "`#[ring_event(...)]` is an attribute of the struct, not of its fields",
                );
            }
        }
        check_field_type(&field.ty, &mut errors);
    }
    errors.finish()?;
    Ok(generate(ident, fields, &options))
}

fn check_generics(input: &DeriveInput, errors: &mut Errors) {
    let ident = &input.ident;
    for param in &input.generics.params {
        let message = match param {
            GenericParam::Lifetime(_) => format!(
                "`#[derive(RingEvent)]` does not accept lifetime parameters on `{ident}`: an event is \
                 plain data copied into shared memory, so it cannot borrow anything from the writing process"
            ),
            GenericParam::Type(param) => format!(
                "`#[derive(RingEvent)]` does not accept type parameters on `{ident}`: an event's name \
                 stands for one layout in every process that shares the ring, but each choice of `{}` \
                 would give `{ident}` another layout under the same name; define a struct without \
                 parameters for each type you need",
                param.ident
            ),
            GenericParam::Const(param) => format!(
                "`#[derive(RingEvent)]` does not accept const parameters on `{ident}`: an event's name \
                 stands for one layout in every process that shares the ring, but each value of `{}` \
                 would give `{ident}` another size under the same name; define a struct without \
                 parameters for each size you need (array fields with a literal length, such as \
                 `[u8; 64]`, are fine)",
                param.ident
            ),
        };
        errors.add_spanned(param, message);
    }
    if input.generics.params.is_empty() {
        if let Some(where_clause) = &input.generics.where_clause {
            errors.add_spanned(
                where_clause,
                "`#[derive(RingEvent)]` does not accept a where clause: event types are not generic",
            );
        }
    }
}

/// Requires `repr(C)` or `repr(transparent)` (with any `align(N)`), in one or several `#[repr]` attributes,
/// and refuses `packed` in any form.
fn check_repr(input: &DeriveInput, errors: &mut Errors) {
    let ident = &input.ident;
    let mut has_c = false;
    let mut has_transparent = false;
    let mut other: Option<(Span, String)> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("repr")) {
        let parsed = attr.parse_nested_meta(|meta| {
            let path = &meta.path;
            if path.is_ident("C") {
                has_c = true;
            } else if path.is_ident("transparent") {
                has_transparent = true;
            } else if path.is_ident("align") {
                // `align(N)`: only raises the alignment; any padding it causes is found by the padding check.
                let content;
                syn::parenthesized!(content in meta.input);
                let value = content.parse::<TokenStream2>()?;
                other.get_or_insert((path.span(), format!("align({value})")));
            } else if path.is_ident("packed") {
                errors.add(
                    path.span(),
                    format_args!(
                        "`#[derive(RingEvent)]` refuses `#[repr(packed)]` on `{ident}`: the fields of a packed \
                         struct may be misaligned, so taking a reference to one (which reading an event in \
                         place does) is undefined behavior; order the fields by decreasing alignment and add \
                         explicit `_pad: [u8; N]` fields instead"
                    ),
                );
                if meta.input.peek(syn::token::Paren) {
                    let content;
                    syn::parenthesized!(content in meta.input);
                    content.parse::<TokenStream2>()?;
                }
            } else {
                let name = path.to_token_stream().to_string();
                other.get_or_insert((path.span(), name));
            }
            Ok(())
        });
        if let Err(err) = parsed {
            errors.push(err);
        }
    }
    if !has_c && !has_transparent {
        let why = "the default Rust layout may reorder fields and can differ between compiler versions and \
                   builds, so two processes could disagree on where each field lives";
        match other {
            Some((span, name)) => errors.add(
                span,
                format_args!(
                    "`#[derive(RingEvent)]` requires `#[repr(C)]` or `#[repr(transparent)]` on `{ident}`; \
                     `repr({name})` alone does not fix the layout: {why}"
                ),
            ),
            None => errors.add(
                ident.span(),
                format_args!(
                    "`#[derive(RingEvent)]` requires `#[repr(C)]` (or `#[repr(transparent)]`) on `{ident}`: \
                     {why}; add `#[repr(C)]` to the struct"
                ),
            ),
        }
    }
}

fn parse_options(attrs: &[Attribute], errors: &mut Errors) -> Options {
    let mut options = Options::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("ring_event")) {
        let parsed = attr.parse_nested_meta(|meta| {
            let path = &meta.path;
            let key = path.to_token_stream().to_string().replace(' ', "");
            let duplicate = || meta.error(format_args!("duplicate `ring_event` key `{key}`"));
            if path.is_ident("name") {
                let lit: LitStr = meta.value()?.parse()?;
                if lit.value().is_empty() {
                    return Err(syn::Error::new(
                        lit.span(),
                        "`#[ring_event(name = ...)]` must not be empty: it is the stable name hashed into the \
                         layout fingerprint",
                    ));
                }
                if options.name.replace(lit).is_some() {
                    return Err(duplicate());
                }
            } else if path.is_ident("allow_padding") {
                if options.allow_padding {
                    return Err(duplicate());
                }
                options.allow_padding = true;
            } else if path.is_ident("expect_fingerprint") {
                let lit: LitInt = meta.value()?.parse()?;
                if !matches!(lit.suffix(), "" | "u64") {
                    return Err(syn::Error::new(
                        lit.span(),
                        "`expect_fingerprint` is a u64: write it as `0x...` without a suffix, or with `u64`",
                    ));
                }
                lit.base10_parse::<u64>()?;
                if options.expect_fingerprint.replace(lit).is_some() {
                    return Err(duplicate());
                }
            } else {
                return Err(meta.error(format_args!(
                    "unknown `ring_event` attribute `{key}`; the known keys are `name = \"...\"`, \
                     `allow_padding` and `expect_fingerprint = 0x...`"
                )));
            }
            Ok(())
        });
        if let Err(err) = parsed {
            errors.push(err);
        }
    }
    options
}

/// Refuses, by syntax, the field types that are certainly not events, with a message per kind. Other
/// non-event types (enums, `String`, ...) are caught by the `RingEvent` bound in the generated code.
fn check_field_type(ty: &Type, errors: &mut Errors) {
    match ty {
        Type::Array(array) => check_field_type(&array.elem, errors),
        Type::Group(group) => check_field_type(&group.elem, errors),
        Type::Paren(paren) => check_field_type(&paren.elem, errors),
        Type::Reference(reference) => {
            let is_str = matches!(&*reference.elem, Type::Path(p) if p.qself.is_none() && p.path.is_ident("str"));
            let message = if is_str {
                "`&str` cannot be an event field, not even `&'static str`: the string lives in the memory \
                 of the process that wrote the event, and its address means nothing in another process; \
                 store the text inline as a `[u8; N]` field plus a length field"
            } else {
                "references cannot be event fields: the address points into the memory of the process \
                 that wrote the event and means nothing in another process; store the data inline, or an \
                 index or offset (`u32`/`u64`) into data both processes share"
            };
            errors.add_spanned(ty, message);
        }
        Type::Ptr(_) => errors.add_spanned(
            ty,
            "raw pointers cannot be event fields: an address is only meaningful in the process that made \
             it, and pointer widths differ between targets; store an index or offset as `u64` (or `u32`) \
             instead",
        ),
        Type::BareFn(_) => errors.add_spanned(
            ty,
            "function pointers cannot be event fields: code addresses differ between processes and \
             binaries, and calling a function pointer written by another process is undefined behavior; \
             store a numeric id (e.g. `u32`) and dispatch on it in each process",
        ),
        Type::Path(path) if path.qself.is_none() => {
            let Some(primitive) = primitive_name(&path.path) else {
                return;
            };
            let message = match primitive.as_str() {
                "bool" => {
                    "`bool` cannot be an event field: only the bytes 0 and 1 are valid `bool`s, and another \
                     process may write any byte; use `u8` (0 for false, anything else for true) instead"
                }
                "char" => {
                    "`char` cannot be an event field: surrogates (0xD800..=0xDFFF) and values above \
                     0x10FFFF are invalid `char`s, and another process may write any bit pattern; use `u32` \
                     (and `char::from_u32` when reading) instead"
                }
                "usize" => {
                    "`usize` cannot be an event field: its width depends on the target, so processes built \
                     for different targets would disagree on the layout; use `u64` (or `u32`) instead"
                }
                "isize" => {
                    "`isize` cannot be an event field: its width depends on the target, so processes built \
                     for different targets would disagree on the layout; use `i64` (or `i32`) instead"
                }
                _ => return,
            };
            errors.add_spanned(ty, message);
        }
        _ => {}
    }
}

/// `bool`, `std::primitive::bool`, `::core::primitive::char`, ... → the primitive's name.
fn primitive_name(path: &syn::Path) -> Option<String> {
    let segments: Vec<_> = path.segments.iter().collect();
    let last = segments.last()?;
    if !last.arguments.is_none() {
        return None;
    }
    let via_primitive_module = match segments.as_slice() {
        [_] => path.leading_colon.is_none(),
        [krate, module, _] => {
            (krate.ident == "std" || krate.ident == "core") && module.ident == "primitive"
        }
        _ => false,
    };
    via_primitive_module.then(|| last.ident.to_string())
}

fn generate(ident: &Ident, fields: &Fields, options: &Options) -> TokenStream2 {
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| LitStr::new(&ident.unraw().to_string(), ident.span()));

    let field_layouts = fields.iter().enumerate().map(|(index, field)| {
        let (member, field_name) = match &field.ident {
            Some(field_ident) => (
                Member::Named(field_ident.clone()),
                field_ident.unraw().to_string(),
            ),
            None => (
                Member::Unnamed(syn::Index {
                    index: index as u32,
                    span: field.ty.span(),
                }),
                index.to_string(),
            ),
        };
        let ty = &field.ty;
        // Spanned at the field's type: a type that is not an event is reported there, with the
        // `on_unimplemented` message of `RingEvent`.
        let ty_layout = quote_spanned! {ty.span()=>
            &<#ty as ::disruptor_mp::RingEvent>::LAYOUT
        };
        quote! {
            ::disruptor_mp::layout::FieldLayout {
                name: #field_name,
                offset: ::core::mem::offset_of!(Self, #member),
                ty: #ty_layout,
            }
        }
    });

    let span = ident.span();
    let bounds = quote_spanned! {span=>
        const _: () = {
            ::disruptor_mp::__private::assert_copy::<#ident>();
            ::disruptor_mp::__private::assert_default::<#ident>();
        };
    };
    let padding = (!options.allow_padding).then(|| {
        quote_spanned! {span=>
            const _: () = ::disruptor_mp::__private::assert_no_padding(
                &<#ident as ::disruptor_mp::RingEvent>::LAYOUT,
            );
        }
    });
    // The user's literal is passed through unchanged (it was checked to be a `u64`), so that lints about
    // its spelling are about what the user wrote.
    let fingerprint = options.expect_fingerprint.as_ref().map(|expected| {
        quote_spanned! {expected.span()=>
            const _: () = ::disruptor_mp::__private::expect_fingerprint(
                &<#ident as ::disruptor_mp::RingEvent>::LAYOUT,
                #expected,
            );
        }
    });

    quote! {
        // SAFETY: the derive checked that the struct is `repr(C)` or `repr(transparent)` and not packed,
        // that every field type is a `RingEvent` (so every bit pattern of every field is valid), and the
        // `const` items below prove `Copy`, `Default` and the absence of padding, its own and its fields'
        // (unless opted out with `allow_padding`); the layout is taken from `size_of`, `align_of` and
        // `offset_of!`, and `TypeLayout::structure` derives `has_padding` from it.
        #[automatically_derived]
        unsafe impl ::disruptor_mp::RingEvent for #ident {
            const LAYOUT: ::disruptor_mp::layout::TypeLayout =
                ::disruptor_mp::layout::TypeLayout::structure(
                    #name,
                    ::core::mem::size_of::<Self>(),
                    ::core::mem::align_of::<Self>(),
                    &[#(#field_layouts),*],
                );
        }
        #bounds
        #padding
        #fingerprint
    }
}
