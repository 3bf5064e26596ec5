//! The protobuf codec every `fog.v1` service and client uses: prost, with
//! smaller per-stream buffers than tonic's default.
//!
//! tonic gives every stream an 8 KiB encode buffer and an 8 KiB decode buffer
//! up front. A coordinator holds one long-lived stream per node, and almost
//! every message on it (heartbeats, acks, pings) is under 200 bytes, so at
//! 100,000 nodes those buffers were over a gigabyte of mostly empty memory.
//! Here they start at 256 bytes and grow as a message needs (a hello with
//! 10,000 attempts still decodes; an assignment grows its session's encode
//! buffer once); the yield threshold, which batches many small messages into
//! one write, stays at tonic's 32 KiB. At 1 KiB the two buffers were still
//! 2 KB of every idle session (heaptrack, 100,000 sessions); at 256 bytes
//! the coordinator's idle session costs about what a raw tonic stream does
//! (BENCHMARKS.md, *Memory per idle connected node*).

use std::marker::PhantomData;
use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstDecoder, ProstEncoder};

/// Initial buffer per stream direction.
pub const BUFFER: usize = 256;
/// Encoded bytes after which an encoder yields a chunk (tonic's default).
pub const YIELD_THRESHOLD: usize = 32 * 1024;

/// prost encoding with [`BUFFER`]-sized initial buffers.
#[derive(Debug, Clone, Copy)]
pub struct FogCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for FogCodec<T, U> {
    fn default() -> Self {
        FogCodec(PhantomData)
    }
}

impl<T, U> Codec for FogCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::new(BUFFER, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(BufferSettings::new(BUFFER, YIELD_THRESHOLD))
    }
}
