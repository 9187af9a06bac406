//! Raw-bytes gRPC calls for the wire-level tests: a tonic codec whose messages are
//! byte vectors, so a test can send any bytes (undecodable, mutated, oversized) to
//! any method path of the real server and read the status it answers.

use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Status, codegen::http::uri::PathAndQuery};

/// A codec of raw message bytes.
#[derive(Debug, Clone, Default)]
pub struct BytesCodec;

/// Encodes raw bytes as the message.
#[derive(Debug, Clone, Default)]
pub struct BytesEncoder;

/// Decodes the message as raw bytes.
#[derive(Debug, Clone, Default)]
pub struct BytesDecoder;

impl Codec for BytesCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = BytesEncoder;
    type Decoder = BytesDecoder;
    fn encoder(&mut self) -> BytesEncoder {
        BytesEncoder
    }
    fn decoder(&mut self) -> BytesDecoder {
        BytesDecoder
    }
}

impl Encoder for BytesEncoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        use prost::bytes::BufMut as _;
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for BytesDecoder {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        use prost::bytes::Buf as _;
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// One unary call of `path` (`/pkg.Service/Method`) with `body` as the request
/// message; the response's bytes or the status.
pub async fn unary(
    ch: &Channel,
    path: &str,
    body: Vec<u8>,
    timeout: std::time::Duration,
) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(ch.clone())
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut req = tonic::Request::new(body);
    req.set_timeout(timeout);
    let path = PathAndQuery::try_from(path).map_err(|e| Status::internal(e.to_string()))?;
    grpc.unary(req, path, BytesCodec)
        .await
        .map(tonic::Response::into_inner)
}

/// One call of a streaming method with the given request messages; the first
/// response message (or the end of the stream, `None`) or the status.
pub async fn streaming(
    ch: &Channel,
    path: &str,
    bodies: Vec<Vec<u8>>,
    timeout: std::time::Duration,
) -> Result<Vec<Vec<u8>>, Status> {
    let mut grpc = tonic::client::Grpc::new(ch.clone())
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut req = tonic::Request::new(tokio_stream::iter(bodies));
    req.set_timeout(timeout);
    let path = PathAndQuery::try_from(path).map_err(|e| Status::internal(e.to_string()))?;
    let mut stream = grpc.streaming(req, path, BytesCodec).await?.into_inner();
    let mut out = Vec::new();
    // A server stream (WatchRollout) may never end: read a few messages at most.
    while out.len() < 4 {
        match stream.message().await? {
            Some(m) => out.push(m),
            None => break,
        }
    }
    Ok(out)
}
