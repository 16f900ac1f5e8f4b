//! [`DirectStream::batches`]: the stream as a `futures` `Stream` of batches.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::batch::Batch;
use crate::error::Result;
use crate::stream::DirectStream;

type Next<'a> = Pin<Box<dyn Future<Output = (&'a mut DirectStream, Result<Batch>)> + Send + 'a>>;

/// The batches of a [`DirectStream`], one per interval, as a `futures` `Stream`
/// (`while let Some(batch) = batches.next().await` with `StreamExt`). Each item is
/// what [`DirectStream::next_batch`] returns, and taking the next one completes the
/// previous batch. The stream never ends by itself.
pub struct Batches<'a> {
    idle: Option<&'a mut DirectStream>,
    next: Option<Next<'a>>,
}

impl std::fmt::Debug for Batches<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batches").field("waiting", &self.next.is_some()).finish()
    }
}

impl<'a> Batches<'a> {
    pub(crate) fn new(stream: &'a mut DirectStream) -> Self {
        Batches { idle: Some(stream), next: None }
    }
}

impl futures_core::Stream for Batches<'_> {
    type Item = Result<Batch>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Batch>>> {
        let this = self.get_mut();
        if this.next.is_none() {
            let Some(stream) = this.idle.take() else { return Poll::Ready(None) };
            this.next = Some(Box::pin(async move {
                let batch = stream.next_batch().await;
                (stream, batch)
            }));
        }
        let Some(next) = this.next.as_mut() else { return Poll::Ready(None) };
        match next.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready((stream, batch)) => {
                this.next = None;
                this.idle = Some(stream);
                Poll::Ready(Some(batch))
            }
        }
    }
}
