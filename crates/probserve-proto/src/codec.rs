//! The codec of the generated servers: tonic's prost codec, except that a request
//! that does not decode (bad wire format, a string that is not UTF-8, a truncated
//! message) is the client's mistake and answers INVALID_ARGUMENT with a
//! `google.rpc.BadRequest` detail naming the field, instead of tonic's INTERNAL.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::{Code, Status};
use tonic_prost::ProstEncoder;
use tonic_types::{ErrorDetails, FieldViolation, StatusExt as _};

/// A [`Codec`] for `application/grpc+proto` on the server side; see the module docs.
#[derive(Debug, Clone)]
pub struct ServerCodec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for ServerCodec<T, U> {
    fn default() -> Self {
        Self { _pd: PhantomData }
    }
}

impl<T, U> Codec for ServerCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = RequestDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder { _pd: PhantomData }
    }
}

/// Decodes one request message; a failure is INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct RequestDecoder<U> {
    _pd: PhantomData<U>,
}

impl<U: prost::Message + Default> Decoder for RequestDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|e| undecodable(&e))
    }
}

/// INVALID_ARGUMENT for a request that is not a valid protobuf encoding of its type.
pub fn undecodable(error: &prost::DecodeError) -> Status {
    undecodable_text(&error.to_string())
}

/// INVALID_ARGUMENT for prost's decode error text (`failed to decode Protobuf
/// message: ...`), e.g. as tonic's own codec reports it for services (health,
/// reflection) that do not use [`RequestDecoder`].
pub fn undecodable_text(text: &str) -> Status {
    let (field, description) = split_decode_error(text);
    let message = format!("the request is not a valid protobuf message: {field}: {description}");
    let details = ErrorDetails::with_bad_request(vec![FieldViolation::new(field, description)]);
    Status::with_error_details(Code::InvalidArgument, message, details)
}

/// Splits prost's `failed to decode Protobuf message: Inner.f: Outer.g: what` into
/// the field path, outermost first (`g.f`; `request` when prost names none), and
/// what is wrong.
fn split_decode_error(text: &str) -> (String, String) {
    let mut rest = text
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(text);
    let mut fields = Vec::new();
    while let Some((head, tail)) = rest.split_once(": ") {
        let is_frame = head.split_once('.').is_some_and(|(m, f)| {
            let ident =
                |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            ident(m) && ident(f)
        });
        if !is_frame {
            break;
        }
        if let Some((_, f)) = head.split_once('.') {
            fields.push(f.to_owned());
        }
        rest = tail;
    }
    fields.reverse();
    let field = if fields.is_empty() {
        "request".to_owned()
    } else {
        fields.join(".")
    };
    (field, rest.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::InferRequest;
    use prost::Message as _;

    #[test]
    fn bad_utf8_names_the_field() {
        // Field 1 (`model`, a string) holding one byte that is not UTF-8.
        let err = InferRequest::decode(&[0x0a, 0x01, 0xff][..]).unwrap_err();
        let s = undecodable(&err);
        assert_eq!(s.code(), Code::InvalidArgument);
        let details = s.get_error_details();
        let v = &details.bad_request().expect("BadRequest").field_violations[0];
        assert_eq!(v.field, "model");
        assert!(v.description.contains("UTF-8"), "{}", v.description);
    }

    #[test]
    fn truncated_message_names_the_request() {
        let (field, what) =
            split_decode_error("failed to decode Protobuf message: buffer underflow");
        assert_eq!(
            (field.as_str(), what.as_str()),
            ("request", "buffer underflow")
        );
        let (field, _) = split_decode_error(
            "failed to decode Protobuf message: Value.kind: InferRequest.inputs: invalid wire type: Varint (expected LengthDelimited)",
        );
        assert_eq!(field, "inputs.kind");
    }
}
