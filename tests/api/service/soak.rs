//! A soak: mixed load on the real binary for `CAMFLEET_SOAK_SECONDS` (120 unless set).
//! MJPEG and WebSocket viewers come and go, snapshots are taken, controls change ten times
//! a second, the configuration is reloaded every [`RELOAD_EVERY`] and a camera is unplugged
//! every [`UNPLUG_EVERY`]. Resident memory, open file descriptors and each camera's
//! delivered frames are sampled; the test checks that every camera keeps delivering, that
//! no change is lost, and that memory and descriptors come back. With
//! `CAMFLEET_SOAK_REPORT=FILE` it writes the figures as Markdown (docs/RELIABILITY.md).

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::rc::Rc;

use tokio::sync::watch;

use super::*;
use crate::mjpeg_client::MjpegClient;

/// The cameras every client watches; `spare` comes and goes with each reload.
const CAMERAS: [&str; 3] = ["front", "bench", "door"];
const FPS: u32 = 15;
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
const RELOAD_EVERY: Duration = Duration::from_secs(20);
const UNPLUG_EVERY: Duration = Duration::from_secs(60);
/// How long an unplugged camera stays away.
const UNPLUGGED_FOR: Duration = Duration::from_secs(3);
const CONTROL_EVERY: Duration = Duration::from_millis(100);
/// Clients of each kind that connect, watch a while and leave, over and over.
const CHURNING_VIEWERS: usize = 4;
const CHURNING_SESSIONS: usize = 2;
/// The longest a watched camera may go without a frame: an unplug, the longest retry
/// wait of the camera's backoff, and a margin.
const LONGEST_GAP: Duration = Duration::from_secs(3 + 5 + 3);
/// How much resident memory may grow from the end of the warm-up to the end of the load.
const RSS_DRIFT_KIB: u64 = 16 * 1024;

fn config(spare: bool) -> String {
    let mut yaml = String::from("cameras:\n");
    for (i, id) in CAMERAS.iter().enumerate() {
        let size = [(640, 480), (320, 240), (640, 360)][i];
        writeln!(
            yaml,
            "  - id: {id}\n    source: {{kind: synthetic, width: {}, height: {}, fps: {FPS}, \
             prerender: 30, test_controls: true}}",
            size.0, size.1
        )
        .unwrap();
    }
    if spare {
        yaml.push_str(&synthetic("spare", 5));
    }
    yaml
}

/// What the steady viewer of one camera has seen.
#[derive(Default)]
struct Watched {
    frames: Cell<u64>,
    longest_gap: Cell<Duration>,
    /// Times the server ended the stream, which it never should.
    dropped: Cell<u64>,
}

/// Counts of what the churning clients did.
#[derive(Default)]
struct Load {
    viewers: Cell<u64>,
    sessions: Cell<u64>,
    snapshots: Cell<u64>,
    changes: Cell<u64>,
    /// Changes refused because the camera was unplugged at the time.
    while_unplugged: Cell<u64>,
    /// Changes refused for any other reason.
    refused: RefCell<Vec<String>>,
    reloads: Cell<u64>,
    unplugs: Cell<u64>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

/// Watches `camera` over MJPEG from start to finish, counting real (not NO SIGNAL) frames.
async fn keep_watching(
    addr: SocketAddr,
    camera: &'static str,
    seen: Rc<Watched>,
    stop: watch::Receiver<bool>,
) {
    let mut last = Instant::now();
    while !*stop.borrow() {
        let mut viewer =
            MjpegClient::get(addr, &format!("/cameras/{camera}/stream.mjpg"), None).await;
        assert_eq!(viewer.status, 200);
        let mut stop = stop.clone();
        loop {
            let part = tokio::select! {
                part = viewer.next_part() => part,
                _ = stop.changed() => return,
            };
            let Some(part) = part else { break };
            if part.no_signal.is_none() {
                bump(&seen.frames);
                seen.longest_gap
                    .set(seen.longest_gap.get().max(last.elapsed()));
                last = Instant::now();
            }
        }
        bump(&seen.dropped);
    }
}

/// MJPEG viewers that watch a few frames, some at a lower rate, and hang up; now and then
/// a snapshot.
async fn churn_viewers(
    addr: SocketAddr,
    first: usize,
    load: Rc<Load>,
    stop: watch::Receiver<bool>,
) {
    let http = awc::Client::new();
    let mut i = first;
    while !*stop.borrow() {
        i += 1;
        let camera = CAMERAS[i % CAMERAS.len()];
        let path = if i % 3 == 0 {
            format!("/cameras/{camera}/stream.mjpg?fps=5")
        } else {
            format!("/cameras/{camera}/stream.mjpg")
        };
        let mut viewer = MjpegClient::get(addr, &path, None).await;
        assert_eq!(viewer.status, 200, "{path}");
        bump(&load.viewers);
        let parts = 1 + i * 7 % 40;
        let _ = tokio::time::timeout(MARGIN, async {
            for _ in 0..parts {
                viewer.next_part().await;
            }
        })
        .await;
        drop(viewer);
        if i % 5 == 0 {
            let r = http
                .get(format!("http://{addr}/cameras/{camera}/snapshot.jpg"))
                .send()
                .await
                .unwrap();
            // A camera that is unplugged answers with its NO SIGNAL picture.
            assert!([200, 503].contains(&r.status().as_u16()), "{}", r.status());
            bump(&load.snapshots);
        }
    }
}

/// Dashboard-like sessions: subscribe to a camera's frames, take some, leave.
async fn churn_sessions(
    addr: SocketAddr,
    first: usize,
    load: Rc<Load>,
    stop: watch::Receiver<bool>,
) {
    let mut i = first;
    while !*stop.borrow() {
        i += 1;
        let mut client = Client::connect_to(addr).await;
        client.watch(&[CAMERAS[i % CAMERAS.len()]], 0).await;
        bump(&load.sessions);
        let frames = 1 + i * 11 % 45;
        let _ = tokio::time::timeout(MARGIN, async {
            let mut got = 0;
            while got < frames {
                match client.next().await {
                    Some(Ok(S::Frame(_))) => got += 1,
                    Some(Ok(_)) => {}
                    _ => break,
                }
            }
        })
        .await;
    }
}

/// Changes brightness on each camera in turn; returns the last value each one accepted.
async fn change_controls(
    addr: SocketAddr,
    load: Rc<Load>,
    stop: watch::Receiver<bool>,
) -> Vec<(String, i64)> {
    let mut client = Client::connect_to(addr).await;
    let mut accepted: Vec<(String, i64)> = Vec::new();
    let mut i = 0i64;
    while !*stop.borrow() {
        i += 1;
        let camera = CAMERAS[i as usize % CAMERAS.len()];
        let value = i * 13 % 256;
        let r = client.set_control(camera, "brightness", value).await;
        if r.ok {
            accepted.retain(|(c, _)| c != camera);
            accepted.push((camera.to_string(), value));
            bump(&load.changes);
        } else if code(r.code) == proto::ErrorCode::CameraNotRunning {
            bump(&load.while_unplugged);
        } else {
            load.refused
                .borrow_mut()
                .push(format!("{camera}: {}", r.error));
        }
        actix_rt::time::sleep(CONTROL_EVERY).await;
    }
    accepted
}

/// Unplugs `camera` for [`UNPLUGGED_FOR`] and waits until it streams again.
async fn unplug(addr: SocketAddr, camera: &str) {
    let mut client = Client::connect_to(addr).await;
    client.subscribe(&[camera]).await;
    let ms = i64::try_from(UNPLUGGED_FOR.as_millis()).unwrap();
    assert!(
        client
            .set_control(camera, "reconnect_delay_ms", ms)
            .await
            .ok
    );
    assert!(client.set_control(camera, "disconnect", 1).await.ok);
    client
        .status_where(camera, |s| state(s) == CameraState::Reconnecting)
        .await;
    client
        .status_where(camera, |s| state(s) == CameraState::Streaming)
        .await;
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

struct Sample {
    at: Duration,
    rss_kib: u64,
    fds: usize,
    /// Frames each camera's steady viewer received so far.
    frames: Vec<u64>,
    /// Frames each camera captured so far, from `/metrics`.
    captured: Vec<u64>,
}

/// Each camera's `camfleet_camera_frames_captured_total`.
async fn captured(addr: SocketAddr) -> Vec<u64> {
    let text = metrics_text(addr).await;
    CAMERAS
        .iter()
        .map(|camera| {
            let name = format!("camfleet_camera_frames_captured_total{{camera=\"{camera}\"}} ");
            let line = text.lines().find_map(|l| l.strip_prefix(&name));
            line.and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name}"))
        })
        .collect()
}

#[actix_rt::test]
async fn soak_mixed_load_leaks_nothing_and_every_camera_keeps_delivering() {
    let duration = Duration::from_secs(
        std::env::var("CAMFLEET_SOAK_SECONDS")
            .map_or(120, |s| s.parse().expect("a number of seconds")),
    );
    let warm_up = (duration / 6).min(Duration::from_secs(60));
    let dir = scratch_dir("soak");
    write_config(&dir, &config(false));
    let process = Process::start(&dir, None);
    let (addr, pid) = (process.addr, process.child.id());
    let mut client = Client::connect_to(addr).await;
    client.subscribe(&CAMERAS).await;
    for camera in CAMERAS {
        client.streaming(camera).await;
    }
    drop(client);
    let idle_fds = settled_fds(pid, None).await;

    let (stop_tx, stop) = watch::channel(false);
    let load = Rc::new(Load::default());
    let watched: Vec<Rc<Watched>> = CAMERAS.iter().map(|_| Rc::default()).collect();
    let mut tasks = Vec::new();
    for (camera, seen) in CAMERAS.iter().zip(&watched) {
        tasks.push(actix_rt::spawn(keep_watching(
            addr,
            camera,
            seen.clone(),
            stop.clone(),
        )));
    }
    for i in 0..CHURNING_VIEWERS {
        tasks.push(actix_rt::spawn(churn_viewers(
            addr,
            i,
            load.clone(),
            stop.clone(),
        )));
    }
    for i in 0..CHURNING_SESSIONS {
        tasks.push(actix_rt::spawn(churn_sessions(
            addr,
            i,
            load.clone(),
            stop.clone(),
        )));
    }
    let controls = actix_rt::spawn(change_controls(addr, load.clone(), stop.clone()));

    let start = Instant::now();
    let mut samples = Vec::new();
    let (mut next_reload, mut next_unplug) = (RELOAD_EVERY, UNPLUG_EVERY / 2);
    let mut spare = false;
    while start.elapsed() < duration {
        let at = start.elapsed();
        if at >= next_unplug {
            let camera = CAMERAS[load.unplugs.get() as usize % CAMERAS.len()];
            unplug(addr, camera).await;
            bump(&load.unplugs);
            next_unplug += UNPLUG_EVERY;
        }
        if at >= next_reload {
            spare = !spare;
            write_config(&dir, &config(spare));
            process.log_line("configuration reloaded");
            bump(&load.reloads);
            next_reload += RELOAD_EVERY;
        }
        samples.push(Sample {
            at: start.elapsed(),
            captured: captured(addr).await,
            rss_kib: rss_kib(pid),
            fds: open_fds(pid),
            frames: watched.iter().map(|w| w.frames.get()).collect(),
        });
        actix_rt::time::sleep(SAMPLE_EVERY).await;
    }
    stop_tx.send(true).unwrap();
    for task in tasks {
        task.await.expect("a client task failed");
    }
    let accepted = controls.await.expect("the control task failed");
    let end_fds = settled_fds(pid, Some(idle_fds)).await;
    let end_rss = rss_kib(pid);

    // Every accepted change is on the camera and in the state file.
    let mut client = Client::connect_to(addr).await;
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state/controls.json")).unwrap())
            .unwrap();
    for (camera, value) in &accepted {
        let on_camera = client
            .controls(camera)
            .await
            .into_iter()
            .find(|c| c.name == "brightness")
            .and_then(|c| c.value);
        assert_eq!(on_camera, Some(*value), "{camera}'s brightness");
        assert_eq!(
            file[camera]["brightness"].as_i64(),
            Some(*value),
            "{camera} in controls.json"
        );
    }
    let health = awc::Client::new()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    let warm = samples
        .iter()
        .find(|s| s.at >= warm_up)
        .expect("a sample after the warm-up");
    let last = samples.last().unwrap();
    let report = report(
        duration, &load, &watched, &samples, warm, idle_fds, end_fds, end_rss,
    );
    eprintln!("{report}");
    if let Ok(path) = std::env::var("CAMFLEET_SOAK_REPORT") {
        std::fs::write(path, &report).unwrap();
    }
    for (camera, seen) in CAMERAS.iter().zip(&watched) {
        assert_eq!(
            seen.dropped.get(),
            0,
            "{camera}'s stream was ended by the server"
        );
        assert!(
            seen.longest_gap.get() <= LONGEST_GAP,
            "{camera} went {:?} without a frame",
            seen.longest_gap.get()
        );
    }
    assert!(
        load.refused.borrow().is_empty(),
        "refused changes: {:?}",
        load.refused.borrow()
    );
    assert!(
        last.rss_kib <= warm.rss_kib + RSS_DRIFT_KIB,
        "resident memory grew from {} KiB to {} KiB",
        warm.rss_kib,
        last.rss_kib
    );
    assert!(
        end_fds <= idle_fds,
        "{idle_fds} descriptors open before the load, {end_fds} after"
    );
}

/// The process's open descriptors once every client has gone: polled until it is no more
/// than `target` (the server closes a session as it notices the hang-up), or for `WAIT`.
async fn settled_fds(pid: u32, target: Option<usize>) -> usize {
    let deadline = Instant::now() + WAIT;
    let mut fds = open_fds(pid);
    while target.is_some_and(|t| fds > t) && Instant::now() < deadline {
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        fds = open_fds(pid);
    }
    fds
}

/// Frames per second of `counts` between two samples, for each camera.
fn rates(from: &Sample, to: &Sample, counts: fn(&Sample) -> &[u64]) -> Vec<f64> {
    let seconds = to.at.saturating_sub(from.at).as_secs_f64().max(1e-3);
    (0..CAMERAS.len())
        .map(|i| (counts(to)[i] - counts(from)[i]) as f64 / seconds)
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn report(
    duration: Duration,
    load: &Load,
    watched: &[Rc<Watched>],
    samples: &[Sample],
    warm: &Sample,
    idle_fds: usize,
    end_fds: usize,
    end_rss: u64,
) -> String {
    let mut out = String::new();
    writeln!(
        out,
        "Soak of {:.0} s: {} MJPEG viewers and {} WebSocket sessions came and went, {} \
         snapshots, {} control changes ({} refused while their camera was unplugged), {} \
         reloads, {} unplugs.\n",
        duration.as_secs_f64(),
        load.viewers.get(),
        load.sessions.get(),
        load.snapshots.get(),
        load.changes.get(),
        load.while_unplugged.get(),
        load.reloads.get(),
        load.unplugs.get()
    )
    .unwrap();
    let mib = |kib: u64| kib as f64 / 1024.0;
    let (first, last) = (&samples[0], samples.last().unwrap());
    writeln!(
        out,
        "| | after warm-up ({:.0} s) | end of load ({:.0} s) | clients gone |\n|---|---|---|---|",
        warm.at.as_secs_f64(),
        last.at.as_secs_f64()
    )
    .unwrap();
    writeln!(
        out,
        "| resident memory | {:.1} MiB | {:.1} MiB | {:.1} MiB |",
        mib(warm.rss_kib),
        mib(last.rss_kib),
        mib(end_rss)
    )
    .unwrap();
    writeln!(
        out,
        "| open descriptors | {} | {} | {end_fds} (before the load: {idle_fds}) |\n",
        warm.fds, last.fds
    )
    .unwrap();
    writeln!(
        out,
        "| camera | captured fps | delivered fps (steady viewer) | longest gap between frames |\n|---|---|---|---|"
    )
    .unwrap();
    let captured = rates(first, last, |s| &s.captured);
    let delivered = rates(first, last, |s| &s.frames);
    for (i, (camera, seen)) in CAMERAS.iter().zip(watched).enumerate() {
        writeln!(
            out,
            "| {camera} | {:.2} of {FPS} | {:.2} | {:.1} s |",
            captured[i],
            delivered[i],
            seen.longest_gap.get().as_secs_f64()
        )
        .unwrap();
    }
    let every = if duration >= Duration::from_secs(600) {
        60
    } else {
        10
    };
    writeln!(
        out,
        "\nDelivered / captured fps per camera, since the row before:\n\n| time | RSS MiB | fds | {} |\n|---|---|---|{}",
        CAMERAS.join(" | "),
        "---|".repeat(CAMERAS.len())
    )
    .unwrap();
    let mut prev: Option<&Sample> = None;
    for s in samples {
        if prev.is_some_and(|p| s.at.saturating_sub(p.at).as_secs() < every) {
            continue;
        }
        let cells: Vec<String> = match prev {
            Some(p) => rates(p, s, |s| &s.frames)
                .iter()
                .zip(rates(p, s, |s| &s.captured))
                .map(|(d, c)| format!("{d:.1} / {c:.1}"))
                .collect(),
            None => vec!["-".into(); CAMERAS.len()],
        };
        writeln!(
            out,
            "| {:.0} s | {:.1} | {} | {} |",
            s.at.as_secs_f64(),
            mib(s.rss_kib),
            s.fds,
            cells.join(" | ")
        )
        .unwrap();
        prev = Some(s);
    }
    out
}
