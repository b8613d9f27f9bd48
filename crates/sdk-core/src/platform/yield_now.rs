//! Letting other tasks go first. A task that has just woken others (a change sent to
//! live queries) and still has slow work ahead (a store write) can step back, so that
//! what it woke runs before that work starts: on a single-threaded executor (the
//! browser's) the woken tasks would otherwise wait until this one next awaits.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Let the tasks woken so far run before this one goes on. Two turns through the
/// executor's queue (a FIFO in the browser): the wake may have reached this very task
/// first (live sync listens to the events it sends), which queues it ahead of the
/// tasks woken after it, so one turn would run it first again; the second turn
/// queues it behind them.
pub async fn let_woken_tasks_run() {
    YieldNow { yielded: false }.await;
    YieldNow { yielded: false }.await;
}

/// Goes to the back of the executor's queue once.
struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
