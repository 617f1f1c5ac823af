//! One writer per camera and worker thread for the viewers that take every frame.
//!
//! A viewer's stream is otherwise its own task, woken for every frame of its camera. A
//! viewer with no rate cap on a plain connection joins its camera's fan-out on its worker
//! thread instead: one task that, for each frame, offers the frame's shared bytes to every
//! joined viewer's socket in turn, the way an epoll server writes one buffer to all its
//! connections. Per viewer and frame that is one `send`, and no task runs for the viewer.
//!
//! A socket that does not take a whole frame keeps the rest queued in its
//! [`DirectWriter`]; the viewer's own stream writes it as the socket allows
//! ([`Subscription::run`]), then catches up with the newest frame. Until then the fan-out
//! passes that viewer by, and the frames it misses are counted as skipped, as its own task
//! would count them.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::rc::Rc;
use std::task::{Poll, Waker};

use bytes::Bytes;

use super::direct::DirectWriter;
use super::feed::FrameFeed;
use crate::camera::{CameraId, Frame, FrameWatch};

/// The bytes a viewer sends for a frame, shared with every viewer of the same kind.
pub type Shape = fn(&CameraId, &Frame) -> Bytes;

struct Subscriber {
    feed: FrameFeed,
    writer: DirectWriter,
    shape: Shape,
    /// The viewer's stream, waiting for the fan-out to end.
    waiting: Option<Waker>,
}

impl Subscriber {
    /// Sends what this viewer has not sent up to `newest`, while its socket takes whole
    /// frames (an H.264 viewer may be several frames of the GOP behind).
    fn deliver(&mut self, newest: &Frame) -> io::Result<()> {
        while self.writer.is_clear()? {
            let Some(frame) = self.feed.take(newest) else {
                break;
            };
            let bytes = (self.shape)(&self.feed.viewer().camera, &frame);
            self.writer.send(&bytes)?;
            self.feed.sent(&frame, bytes.len());
        }
        Ok(())
    }

    fn wake(&mut self) {
        if let Some(waker) = self.waiting.take() {
            waker.wake();
        }
    }
}

/// The viewers of one camera on one worker thread that take every frame.
struct Fanout {
    /// The camera's frames, as the fan-out's task sees them.
    watch: FrameWatch,
    subscribers: RefCell<HashMap<u64, Subscriber>>,
    next_id: Cell<u64>,
    /// Set when the task has ended: the camera is gone, or its last viewer left.
    ended: Cell<bool>,
}

thread_local! {
    /// This worker thread's fan-outs.
    static FANOUTS: RefCell<Vec<Rc<Fanout>>> = RefCell::default();
}

/// A viewer's place in its camera's fan-out; dropping it leaves.
pub struct Subscription {
    fanout: Rc<Fanout>,
    id: u64,
    writer: DirectWriter,
}

/// Joins the fan-out of `feed`'s camera on this thread, starting it if there is none, and
/// sends the camera's newest frame at once, so a new viewer sees a picture without waiting
/// for the next. `feed` must have no rate cap; `writer` is the viewer's connection.
pub fn join(feed: FrameFeed, writer: DirectWriter, shape: Shape) -> Subscription {
    let fanout = FANOUTS.with(|all| {
        let mut all = all.borrow_mut();
        all.retain(|f| !f.ended.get());
        let existing = all
            .iter()
            .find(|f| f.watch.same_channel(&feed.viewer().watch));
        if let Some(fanout) = existing {
            return Rc::clone(fanout);
        }
        let mut watch = feed.viewer().watch.clone();
        // What the camera holds now is sent by each viewer as it joins.
        watch.borrow_and_update();
        let fanout = Rc::new(Fanout {
            watch: watch.clone(),
            subscribers: RefCell::default(),
            next_id: Cell::new(0),
            ended: Cell::new(false),
        });
        actix_web::rt::spawn(run(Rc::clone(&fanout), watch));
        all.push(Rc::clone(&fanout));
        fanout
    });
    let id = fanout.next_id.get();
    fanout.next_id.set(id + 1);
    fanout.subscribers.borrow_mut().insert(
        id,
        Subscriber {
            feed,
            writer: writer.clone(),
            shape,
            waiting: None,
        },
    );
    let subscription = Subscription { fanout, id, writer };
    subscription.catch_up();
    subscription
}

/// The fan-out's task: each new frame is offered to every viewer in turn.
async fn run(fanout: Rc<Fanout>, mut watch: FrameWatch) {
    while watch.changed().await.is_ok() {
        let newest = watch.borrow_and_update().clone();
        let mut subscribers = fanout.subscribers.borrow_mut();
        if let Some(frame) = newest {
            // A viewer whose connection failed leaves; its stream learns it from its writer.
            subscribers.retain(|_, s| s.deliver(&frame).is_ok());
        }
        if subscribers.is_empty() {
            break;
        }
    }
    fanout.ended.set(true);
    let left = std::mem::take(&mut *fanout.subscribers.borrow_mut());
    for mut subscriber in left.into_values() {
        subscriber.wake();
    }
}

impl Subscription {
    /// Sends the camera's newest frame now, if this viewer has not sent it and its socket
    /// has nothing queued.
    pub fn catch_up(&self) {
        let mut subscribers = self.fanout.subscribers.borrow_mut();
        let Some(subscriber) = subscribers.get_mut(&self.id) else {
            return;
        };
        let Some(newest) = subscriber.feed.newest() else {
            return;
        };
        if subscriber.deliver(&newest).is_err() {
            subscribers.remove(&self.id);
        }
    }

    /// Whether this viewer no longer gets frames: the camera is gone for good, or the
    /// connection failed.
    pub fn ended(&self) -> bool {
        self.fanout.ended.get() || !self.fanout.subscribers.borrow().contains_key(&self.id)
    }

    /// Writes what the fan-out left queued on the viewer's socket, as the socket takes it,
    /// catching up with the newest frame each time the queue is empty again; returns when
    /// the viewer no longer gets frames.
    pub async fn run(&self) {
        loop {
            let ended = std::future::poll_fn(|cx| {
                if self.ended() {
                    return Poll::Ready(true);
                }
                if self.writer.poll_queued(cx).is_ready() {
                    return Poll::Ready(false);
                }
                if let Some(s) = self.fanout.subscribers.borrow_mut().get_mut(&self.id) {
                    s.waiting = Some(cx.waker().clone());
                }
                Poll::Pending
            })
            .await;
            if ended || self.writer.flushed().await.is_err() {
                return;
            }
            self.catch_up();
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let left = self.fanout.subscribers.borrow_mut().remove(&self.id);
        // The viewer is unregistered once the fan-out no longer holds it.
        drop(left);
    }
}
