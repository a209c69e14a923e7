//! A helper thread with its own single-threaded tokio runtime, running one
//! future until it is told to stop: the live-metrics server and writer, the
//! `--watch` scraper.

use std::future::Future;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

/// The running thread; [`Background::stop`] ends it.
pub struct Background {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Starts thread `name` running `task(stop)`; the task should end soon
    /// after `stop` completes.
    pub fn spawn<F, Fut>(name: &str, task: F) -> std::io::Result<Background>
    where
        F: FnOnce(oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let (stop_tx, stop_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(task(stop_rx));
                }
            })?;
        Ok(Background {
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Tells the task to stop and waits for the thread to end.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
