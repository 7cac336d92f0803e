//! Traffic workers: OS threads that each run a single-threaded tokio runtime and
//! accept and serve connections on their own, as nginx's worker processes do.
//!
//! Every worker accepts from the same listening socket, so a connection, its
//! requests and the upstream connections they open stay on one thread: no task is
//! handed between threads on the request path. Providers, certificates and the
//! rest of wharf keep running on the main runtime.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::num::NonZeroUsize;
use std::thread;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The environment variable that sets the number of workers (tokio's own name for
/// it, so that it also sizes the main runtime).
pub const WORKERS_ENV: &str = "TOKIO_WORKER_THREADS";

thread_local! {
    /// The index of the worker running on this thread, if it is one.
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The index of the traffic worker running on this thread; `None` elsewhere.
pub fn current() -> Option<usize> {
    CURRENT.with(Cell::get)
}

/// Running traffic workers; they stop when this is dropped.
pub struct Workers {
    handles: Vec<Handle>,
    stop: CancellationToken,
}

impl Workers {
    /// The number of workers: `TOKIO_WORKER_THREADS` when it is a positive number,
    /// else one per available core.
    pub fn default_count() -> usize {
        std::env::var(WORKERS_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<NonZeroUsize>().ok())
            .or_else(|| thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get)
    }

    /// Starts `count` workers (at least one), named `wharf-worker-N`.
    pub fn start(count: usize) -> io::Result<Self> {
        let stop = CancellationToken::new();
        let mut handles = Vec::new();
        for index in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            let stop = stop.clone();
            thread::Builder::new()
                .name(format!("wharf-worker-{index}"))
                .spawn(move || {
                    CURRENT.with(|c| c.set(Some(index)));
                    runtime.block_on(stop.cancelled())
                })?;
        }
        Ok(Self { handles, stop })
    }

    /// How many workers run.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether no worker runs (never true for started workers).
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Runs the future `make(i)` builds on each worker `i`.
    pub fn spawn_each<F, Fut>(&self, mut make: F) -> Vec<JoinHandle<Fut::Output>>
    where
        F: FnMut(usize) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        self.handles
            .iter()
            .enumerate()
            .map(|(i, h)| h.spawn(make(i)))
            .collect()
    }
}

impl Drop for Workers {
    /// Ends every worker's runtime; tasks still running there are dropped.
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_worker_runs_its_future_on_its_own_thread() {
        let workers = Workers::start(2).unwrap();
        assert_eq!(workers.len(), 2);
        assert_eq!(current(), None, "the test's own thread is no worker");
        let names = workers.spawn_each(|i| async move {
            (i, thread::current().name().map(str::to_string), current())
        });
        let mut seen = Vec::new();
        for h in names {
            seen.push(h.await.unwrap());
        }
        assert_eq!(
            seen,
            vec![
                (0, Some("wharf-worker-0".to_string()), Some(0)),
                (1, Some("wharf-worker-1".to_string()), Some(1))
            ]
        );
    }

    #[tokio::test]
    async fn dropping_the_workers_stops_their_tasks() {
        let workers = Workers::start(1).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut tx = Some(tx);
        let task = workers.spawn_each(move |_| {
            let tx = tx.take();
            async move {
                let _tx = tx;
                std::future::pending::<()>().await
            }
        });
        drop(workers);
        // The task is dropped with its runtime, which drops the sender.
        assert!(rx.await.is_err());
        assert!(task.into_iter().next().unwrap().await.is_err());
    }
}
