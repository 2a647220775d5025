//! `#[derive(RingEvent)]` for disruptor-mp.
use proc_macro::TokenStream;

/// Derives `disruptor_mp::RingEvent`.
#[proc_macro_derive(RingEvent, attributes(ring_event))]
pub fn derive_ring_event(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
