//! `InferStream`: each item of the request stream is one inference, answered by
//! id in completion order, at most [`STREAM_CONCURRENCY`] at a time per stream.
//!
//! An item keeps its concurrency slot and its response's memory until its answer
//! is handed over, with one answer buffered, so a client that stops reading holds
//! at most [`STREAM_CONCURRENCY`] + 1 answers and stops its stream's work.
//!
//! Each item is admitted on its own: it takes a permit from the server's
//! [`Admission`](probserve_reliability::Admission) (the stream's own permit ends
//! when its response headers go out), and an item refused there or by the CPU
//! pool's queue limit is answered with an `ItemStatus` of RESOURCE_EXHAUSTED. All
//! work of a stream is tied to the response stream's lifetime: when the client
//! goes away (the body is dropped), the driver task is aborted, which drops every
//! in-flight and queued item, whose cancel tokens stop their runs on the pool.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use probserve_proto::v1::*;
use tokio_stream::StreamExt as _;
use tonic::{Request, Status, Streaming};

use super::{Inference, Stream, grpc_timeout};
use crate::services::status::invalid_argument;

/// Items of one InferStream processed concurrently.
pub(super) const STREAM_CONCURRENCY: usize = 8;

/// A response stream that aborts its driver task when dropped.
struct AbortOnDrop<S> {
    inner: S,
    task: tokio::task::AbortHandle,
}

impl<S: tokio_stream::Stream + Unpin> tokio_stream::Stream for AbortOnDrop<S> {
    type Item = S::Item;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl<S> Drop for AbortOnDrop<S> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the stream's driver and returns the response stream.
pub(super) fn infer_stream(
    this: Inference,
    req: Request<Streaming<InferStreamRequest>>,
) -> Stream<InferStreamResponse> {
    let timeout = grpc_timeout(&req);
    let mut incoming = req.into_inner();
    // One answer buffered: an item whose answer waits for a slow reader keeps its
    // response memory held (`ResponseHold`) and its concurrency slot until it is
    // handed over, so a client that stops reading stops its stream's work.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<InferStreamResponse, Status>>(1);
    let task = tokio::spawn(async move {
        let limit = Arc::new(tokio::sync::Semaphore::new(STREAM_CONCURRENCY));
        // Dropped with this task: aborting it aborts every item.
        let mut tasks = tokio::task::JoinSet::new();
        while let Some(item) = incoming.next().await {
            while tasks.try_join_next().is_some() {}
            let item = match item {
                Ok(i) => i,
                Err(status) => {
                    let _ = tx.send(Err(status)).await;
                    break;
                }
            };
            let Ok(local) = Arc::clone(&limit).acquire_owned().await else {
                break;
            };
            let admitted = match &this.admission {
                Some(a) => a.try_acquire_item().map(Some),
                None => Ok(None),
            };
            let id = item.request_id;
            let permit = match admitted {
                Ok(p) => p,
                Err(s) => {
                    let _ = tx.send(Ok(answer(id, Err(s)))).await;
                    continue;
                }
            };
            let (this, tx) = (this.clone(), tx.clone());
            tasks.spawn(async move {
                let resp = match item.request {
                    Some(r) => this.infer_one(r, timeout).await,
                    None => Err(invalid_argument(
                        "request is required",
                        vec![("request".into(), "must be set".into())],
                    )),
                };
                drop(permit);
                let (resp, hold) = match resp {
                    Ok((r, hold)) => (Ok(r), Some(hold)),
                    Err(s) => (Err(s), None),
                };
                let _ = tx.send(Ok(answer(id, resp))).await;
                drop(hold);
                drop(local);
            });
        }
        while tasks.join_next().await.is_some() {}
    });
    Box::pin(AbortOnDrop {
        inner: tokio_stream::wrappers::ReceiverStream::new(rx),
        task: task.abort_handle(),
    })
}

fn answer(request_id: String, resp: Result<InferResponse, Status>) -> InferStreamResponse {
    match resp {
        Ok(r) => InferStreamResponse {
            request_id,
            response: Some(r),
            status: Some(ItemStatus::default()),
        },
        Err(s) => InferStreamResponse {
            request_id,
            response: None,
            status: Some(item_status(&s)),
        },
    }
}

fn item_status(s: &Status) -> ItemStatus {
    use tonic_types::StatusExt as _;
    let field_violations = s
        .get_error_details()
        .bad_request()
        .map(|b| {
            b.field_violations
                .iter()
                .map(|f| FieldViolation {
                    field: f.field.clone(),
                    description: f.description.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    ItemStatus {
        code: s.code() as i32,
        message: s.message().to_owned(),
        field_violations,
    }
}
