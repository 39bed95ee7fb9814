//! Async reading with tokio (feature `tokio`): the reader's readiness descriptor
//! ([`Reader::readiness_fd`]) registered with tokio's reactor, so that one runtime thread can read
//! any number of channels. No thread per reader and no busy loop: an io_uring futex wait (Linux
//! ≥ 6.7), or else the process's waker thread (`futex_waitv`), makes the descriptor readable when
//! a channel has news.

use crate::error::ReadError;
use crate::frame::Frame;
use crate::reader::{FrameView, Reader};
use rustix::fd::OwnedFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The reader's readiness descriptor, registered with the tokio runtime it was last awaited in
/// (a reader awaited in another runtime registers it there).
pub(crate) type AsyncReadiness = Arc<AsyncFd<OwnedFd>>;

fn io_err(r: &Reader, e: std::io::Error) -> ReadError {
    ReadError::Io {
        name: r.name().to_string(),
        op: "tokio AsyncFd",
        source: rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO),
    }
}

impl Reader {
    fn async_readiness(&mut self) -> Result<AsyncReadiness, ReadError> {
        // Outside a runtime this panics, as tokio's own I/O types do.
        let runtime = tokio::runtime::Handle::current().id();
        if let Some((id, a)) = &self.aio {
            if *id == runtime {
                return Ok(a.clone());
            }
        }
        // First use, or another runtime than before: register with this one (the old
        // registration, if its runtime still runs, would be driven by nobody here).
        self.aio = None;
        let fd = self
            .readiness_fd()?
            .try_clone_to_owned()
            .map_err(|e| io_err(self, e))?;
        // Readable only: an eventfd is always writable, and each emptying would be an event.
        // SAFETY: `fd` is an `OwnedFd` (a duplicate of the readiness eventfd, non-blocking) that
        // the `AsyncFd` owns and never replaces or closes while it is registered.
        #[allow(unsafe_code)]
        let a = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) };
        let a = Arc::new(a.map_err(|e| io_err(self, e.into()))?);
        self.aio = Some((runtime, a.clone()));
        Ok(a)
    }

    /// One step of an await: a look, and if it finds nothing, the descriptor's readiness.
    fn poll_look<T>(
        &mut self,
        fd: &AsyncReadiness,
        cx: &mut Context<'_>,
        look: &mut impl FnMut(&mut Self) -> Result<Option<T>, ReadError>,
    ) -> Poll<Result<T, ReadError>> {
        loop {
            // Readiness tokio still holds is older than the look below, which decides by itself
            // (and empties the descriptor if it finds nothing): clear it first, so that a frame
            // taken without emptying costs no second look. A wake-up after the look's load of
            // the wake word fires the descriptor again (arming compares), so none is lost.
            if let Poll::Ready(Ok(mut g)) = fd.poll_read_ready(cx) {
                g.clear_ready();
            }
            if let Some(v) = look(self)? {
                return Poll::Ready(Ok(v));
            }
            match fd.poll_read_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(io_err(self, e))),
            }
        }
    }

    async fn next_with<T>(
        &mut self,
        mut look: impl FnMut(&mut Self) -> Result<Option<T>, ReadError>,
    ) -> Result<T, ReadError> {
        let fd = self.async_readiness()?;
        std::future::poll_fn(|cx| self.poll_look(&fd, cx, &mut look)).await
    }

    /// Waits (asynchronously) for the next frame and returns a verified copy. Cancel-safe: a
    /// dropped future leaves nothing pinned. Errors as [`Reader::next`]; a timeout is
    /// `tokio::time::timeout` around it.
    pub async fn next_async(&mut self) -> Result<Frame, ReadError> {
        self.next_with(Reader::try_next).await
    }

    /// As [`Reader::next_async`], as a zero-copy view.
    pub async fn next_view_async(&mut self) -> Result<FrameView, ReadError> {
        self.next_with(Reader::try_next_view).await
    }

    /// The channel's frames as a `Stream` (verified copies), ending when the writer closes the
    /// channel; a dead writer is an error item ([`ReadError::WriterGone`]).
    pub fn frames(&mut self) -> Frames<'_> {
        Frames {
            reader: self,
            done: false,
        }
    }
}

/// A stream of frames; see [`Reader::frames`].
pub struct Frames<'r> {
    reader: &'r mut Reader,
    done: bool,
}

impl futures_core::Stream for Frames<'_> {
    type Item = Result<Frame, ReadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let fd = match this.reader.async_readiness() {
            Ok(fd) => fd,
            Err(e) => return Poll::Ready(Some(Err(e))),
        };
        match this.reader.poll_look(&fd, cx, &mut Reader::try_next) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(f)) => Poll::Ready(Some(Ok(f))),
            Poll::Ready(Err(ReadError::Closed { .. })) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
        }
    }
}

impl futures_core::stream::FusedStream for Frames<'_> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}
