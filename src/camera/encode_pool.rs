//! More than one core for a camera whose raw frames take longer to encode than they take
//! to arrive.
//!
//! The capture thread offers each raw frame to a few encoder threads; a frame goes only to
//! a thread that is free, so none queues and none is encoded that nobody would see in
//! time (a frame offered while every thread is busy is skipped, and the next, newer one is
//! taken instead). Encoders finish in any order; one publisher thread takes their JPEGs in
//! the order they finish and publishes a JPEG only if it is newer than the last one
//! published. Viewers thus see frames in capture order, never an older one after a newer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::frame::FramePublisher;

/// One raw frame to encode, numbered in capture order.
pub struct Job {
    /// Its place in capture order, counting from 1.
    pub index: u64,
    /// When the device captured it.
    pub captured_at: SystemTime,
    /// The raw frame.
    pub data: Vec<u8>,
}

/// What the pool has done, for the camera's status.
#[derive(Debug, Default)]
pub struct PoolCounters {
    /// Frames encoded and published.
    pub encoded: AtomicU64,
    /// CPU time the encoders spent, in nanoseconds.
    pub encode_nanos: AtomicU64,
    /// Frames encoded too late: a newer one had been published first.
    pub late: AtomicU64,
    /// Frames that failed to encode.
    pub failed: AtomicU64,
}

/// How a pool turns a raw frame into a JPEG.
pub type EncodeFn = dyn Fn(&[u8]) -> Result<Bytes, String> + Send + Sync;

/// A camera's encoder threads and their publisher.
pub struct EncodePool {
    jobs: Option<Sender<Job>>,
    next_index: u64,
    threads: Vec<JoinHandle<()>>,
    /// What the pool has done.
    pub counters: Arc<PoolCounters>,
}

struct Done {
    index: u64,
    captured_at: SystemTime,
    jpeg: Result<Bytes, String>,
    cpu: Duration,
}

impl EncodePool {
    /// Starts `workers` encoder threads, which encode with `encode` and publish to `slot`.
    #[must_use]
    pub fn new(workers: usize, slot: FramePublisher, encode: &Arc<EncodeFn>) -> EncodePool {
        // Capacity 0: a frame is handed over only to an encoder waiting for one.
        let (jobs, job_rx) = crossbeam_channel::bounded::<Job>(0);
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<Done>();
        let counters = Arc::new(PoolCounters::default());
        let mut threads: Vec<JoinHandle<()>> = (0..workers.max(1))
            .map(|_| {
                let (job_rx, done_tx, encode) =
                    (job_rx.clone(), done_tx.clone(), Arc::clone(encode));
                std::thread::spawn(move || encoder(&job_rx, &done_tx, &*encode))
            })
            .collect();
        drop(done_tx);
        let published = Arc::clone(&counters);
        threads.push(std::thread::spawn(move || {
            publisher(&done_rx, &slot, &published);
        }));
        EncodePool {
            jobs: Some(jobs),
            next_index: 0,
            threads,
            counters,
        }
    }

    /// How many encoder threads it runs.
    #[must_use]
    pub fn encoders(&self) -> usize {
        // Every thread but the publisher.
        self.threads.len().saturating_sub(1)
    }

    /// Hands `data`, captured at `captured_at`, to a free encoder; false (and the frame is
    /// skipped) when every encoder is busy.
    pub fn offer(&mut self, captured_at: SystemTime, data: &[u8]) -> bool {
        let Some(jobs) = &self.jobs else { return false };
        self.next_index += 1;
        let job = Job {
            index: self.next_index,
            captured_at,
            data: data.to_vec(),
        };
        match jobs.try_send(job) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}

impl Drop for EncodePool {
    /// Ends the threads once their frames in hand are done; the publisher publishes those.
    fn drop(&mut self) {
        self.jobs = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn encoder(jobs: &Receiver<Job>, done: &Sender<Done>, encode: &EncodeFn) {
    while let Ok(job) = jobs.recv() {
        let started = crate::stats::thread_cpu_time();
        let jpeg = encode(&job.data);
        let cpu = crate::stats::thread_cpu_time().saturating_sub(started);
        let finished = Done {
            index: job.index,
            captured_at: job.captured_at,
            jpeg,
            cpu,
        };
        if done.send(finished).is_err() {
            return;
        }
    }
}

fn publisher(done: &Receiver<Done>, slot: &FramePublisher, counters: &PoolCounters) {
    let mut newest = 0;
    for d in done {
        let nanos = u64::try_from(d.cpu.as_nanos()).unwrap_or(u64::MAX);
        counters.encode_nanos.fetch_add(nanos, Ordering::Relaxed);
        match d.jpeg {
            Err(_) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) if d.index < newest => {
                counters.late.fetch_add(1, Ordering::Relaxed);
            }
            Ok(jpeg) => {
                newest = d.index;
                slot.publish(d.captured_at, jpeg);
                counters.encoded.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::frame::frame_slot;

    /// The capture time standing for frame `i`.
    fn at(i: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(i)
    }

    #[test]
    fn frames_are_published_in_capture_order_and_a_late_one_is_dropped() {
        let (slot, mut watch) = frame_slot();
        // Frame 1 finishes only once frame 2 or a newer one is published: it comes back
        // late.
        let published = watch.clone();
        let encode: Arc<EncodeFn> = Arc::new(move |data: &[u8]| {
            if data[0] == 1 {
                while published.borrow().as_ref().is_none_or(|f| f.jpeg[0] < 2) {
                    std::thread::yield_now();
                }
            }
            Ok(Bytes::copy_from_slice(data))
        });
        let mut pool = EncodePool::new(2, slot, &encode);
        assert_eq!(pool.encoders(), 2);
        let mut offered = Vec::new();
        for i in 1..=2u8 {
            // Each is taken by an encoder that is free; retry until one is.
            while !pool.offer(at(u64::from(i)), &[i]) {
                std::thread::yield_now();
            }
            offered.push(i);
        }
        for i in 3..=20u8 {
            if pool.offer(at(u64::from(i)), &[i]) {
                offered.push(i);
            }
        }
        let counters = Arc::clone(&pool.counters);
        drop(pool);
        // Every frame the pool took was published or found late; the published ones came
        // in capture order, which is what the slot's newest frame shows at the end.
        let encoded = counters.encoded.load(Ordering::Relaxed);
        let late = counters.late.load(Ordering::Relaxed);
        assert_eq!(late, 1, "frame 1 came back after frame 2");
        assert_eq!(encoded + late, offered.len() as u64);
        let newest = watch.borrow_and_update().clone().expect("a frame");
        assert_eq!(newest.jpeg[0], *offered.last().unwrap());
        assert_eq!(
            newest.seq, encoded,
            "one sequence number per published frame"
        );
    }

    #[test]
    fn viewers_see_capture_times_only_grow() {
        let (slot, mut watch) = frame_slot();
        // Encodes of very different lengths, so encoders finish out of order.
        let encode: Arc<EncodeFn> = Arc::new(|data: &[u8]| {
            let mut x = 0u64;
            for i in 0..u64::from(data[0] % 4) * 200_000 {
                x = x.wrapping_add(std::hint::black_box(i));
            }
            std::hint::black_box(x);
            Ok(Bytes::copy_from_slice(data))
        });
        let seen = std::thread::spawn(move || {
            let mut times = Vec::new();
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(async {
                while watch.changed().await.is_ok() {
                    if let Some(f) = watch.borrow_and_update().clone() {
                        times.push(f.captured_at);
                    }
                }
            });
            times
        });
        let mut pool = EncodePool::new(3, slot, &encode);
        let mut taken = 0;
        let mut i = 0u64;
        while taken < 60 {
            i += 1;
            if pool.offer(at(i), &[(i % 251) as u8]) {
                taken += 1;
            } else {
                std::thread::yield_now();
            }
        }
        drop(pool);
        let times = seen.join().unwrap();
        assert!(!times.is_empty());
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    }
}
