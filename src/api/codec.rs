//! The codec of every `riverlog.v1` service (build.rs selects it for the
//! generated servers): prost's encoding, but a request message that does
//! not decode is refused as the caller's fault, INVALID_ARGUMENT with
//! reason `MALFORMED_REQUEST`, instead of tonic-prost's bare INTERNAL,
//! which tells clients to retry what can never succeed.
//!
//! Only servers use it: a client that cannot decode a response has met a
//! broken server, and INTERNAL is the right word for that (build.rs keeps
//! the generated clients on tonic-prost's codec).

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstEncoder};

use crate::service::failure::Failure;

/// A [`Codec`] encoding responses of type `T` and decoding requests of
/// type `U` with prost. Decoding errors are `MALFORMED_REQUEST`.
#[derive(Debug, Clone)]
pub struct RequestCodec<T, U> {
    prost: ProstCodec<T, U>,
}

impl<T, U> Default for RequestCodec<T, U> {
    fn default() -> Self {
        Self {
            prost: ProstCodec::default(),
        }
    }
}

impl<T, U> Codec for RequestCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = RequestDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.prost.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder {
            buffer_settings: BufferSettings::default(),
            _message: std::marker::PhantomData,
        }
    }
}

/// Decodes one request message; see [`RequestCodec`].
#[derive(Debug, Clone)]
pub struct RequestDecoder<U> {
    buffer_settings: BufferSettings,
    _message: std::marker::PhantomData<U>,
}

impl<U: Message + Default> Decoder for RequestDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf)
            .map(Some)
            .map_err(|e| Failure::malformed_request(&e).into())
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.buffer_settings
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;
    use tonic_types::StatusExt;

    use super::*;

    #[test]
    fn undecodable_bytes_are_the_callers_fault() {
        // Field 1, wire type 2 (length-delimited), claiming 100 bytes of
        // which none follow.
        let err = crate::proto::v1::PublishRequest::decode(&[0x0a, 100][..])
            .expect_err("truncated message");
        let status = Status::from(Failure::malformed_request(&err));
        assert_eq!(status.code(), Code::InvalidArgument);
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "MALFORMED_REQUEST");
    }
}
