//! Fan-out benchmark: camfleet against a plain single-threaded epoll server in C
//! (`epoll_server.c`, built with the system's C compiler) sending the same frames.
//!
//! `cargo bench --bench fanout` runs, in one go (the encoder has its own benchmark,
//! `benches/encoder`):
//! - 1, 10, 100 and 300 MJPEG clients, then 100 and 300 WebSocket clients, of one synthetic 1280x720
//!   30 fps camera, against camfleet and against the baseline, all on loopback; the two
//!   servers take turns for five rounds per case, and the median round of each is shown;
//! - a fleet of 32 synthetic 640x480 30 fps cameras with one WebSocket client taking
//!   every camera's frames.
//!
//! `cargo bench --bench fanout -- WORD` runs only the cases whose name contains WORD
//! (`mjpeg`, `websocket`, `300`, `fleet`).
//!
//! Servers run as separate processes, so their CPU time and memory are their own; the
//! clients run on one thread of this process. Timings on a shared machine are noisy:
//! compare the ratios measured in one run.

mod clients;
mod servers;

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::rc::Rc;
use std::time::{Duration, Instant};

use camfleet::camera::source::synthetic::SyntheticOpener;
use camfleet::camera::source::{FrameData, Opener};
use camfleet::config::{Pattern, SyntheticConfig};

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;
const FPS: u32 = 30;
const WARMUP: Duration = Duration::from_secs(2);
const MEASURE: Duration = Duration::from_secs(5);
/// Rounds of each fan-out case per server.
const ROUNDS: usize = 5;

use clients::{percentile, run_case, ws_client, CaseResult, Via};
use servers::{num_cores, Server};

fn synthetic(width: u32, height: u32) -> SyntheticConfig {
    SyntheticConfig {
        width,
        height,
        fps: FPS,
        pattern: Pattern::Noise,
        prerender: FPS,
        test_controls: false,
        output: camfleet::config::SyntheticOutput::Jpeg,
    }
}

fn main() {
    println!("camfleet fan-out benchmark ({} cores)", num_cores());
    // `cargo bench --bench fanout -- WORD` runs only the cases whose name has WORD in it
    // (`mjpeg`, `websocket`, `300`, `fleet`).
    let only = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map(|a| a.to_lowercase());
    let wanted = |name: &str| {
        only.as_ref()
            .is_none_or(|w| name.to_lowercase().contains(w))
    };
    fanout(&wanted);
    if wanted("fleet") {
        fleet();
    }
}

fn fanout(wanted: &dyn Fn(&str) -> bool) {
    let yaml = format!(
        "server:\n  listen: 127.0.0.1:PORT\n  max_streams: 1000\n  max_streams_per_camera: 1000\n  max_streams_per_client: 1000\n  max_sessions: 1000\ncameras:\n  - id: bench\n    source: {{kind: synthetic, width: {WIDTH}, height: {HEIGHT}, fps: {FPS}, pattern: noise, prerender: {FPS}}}\n"
    );
    let camfleet = Server::camfleet(&yaml);
    let idle_rss = camfleet.rss_mib();
    let frame_kb = {
        let mut opener = SyntheticOpener::new(synthetic(WIDTH, HEIGHT), "bench");
        let mut d = opener.open().unwrap();
        loop {
            if let Some(f) = d.next_frame(Duration::from_millis(100)).unwrap() {
                if let FrameData::Jpeg(b) = f.data {
                    break b.len() / 1000;
                }
            }
        }
    };
    let baseline = Server::baseline();
    println!(
        "\n## Fan-out of one {WIDTH}x{HEIGHT} {FPS} fps camera (frames of about {frame_kb} KB)\n"
    );
    println!(
        "camfleet idle RSS: {idle_rss:.1} MiB; warm-up {} s, measured {} s per case\n",
        WARMUP.as_secs(),
        MEASURE.as_secs()
    );
    println!("| case | server | fps/client min | fps/client median | GB delivered | CPU s per GB | p50 ms | p99 ms | RSS MiB |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for (via, clients) in [
        (Via::Mjpeg, 1),
        (Via::Mjpeg, 10),
        (Via::Mjpeg, 100),
        (Via::Mjpeg, 300),
        (Via::WebSocket, 100),
        (Via::WebSocket, 300),
    ] {
        let name = match via {
            Via::Mjpeg => format!("{clients} MJPEG"),
            Via::WebSocket => format!("{clients} WebSocket"),
        };
        if !wanted(&name) {
            continue;
        }
        // The two servers take turns, five rounds in alternating order, so a slower
        // stretch of the machine falls on both; each row is the server's round with its
        // median CPU per GB.
        let mut rounds: [Vec<CaseResult>; 2] = [Vec::new(), Vec::new()];
        for round in 0..ROUNDS {
            let ours_first = round % 2 == 0;
            for ours in [ours_first, !ours_first] {
                if ours {
                    rounds[0].push(run_case(&camfleet, via, clients));
                } else {
                    // The baseline speaks plain MJPEG; it is the reference for both kinds of
                    // client.
                    rounds[1].push(run_case(&baseline, Via::Mjpeg, clients));
                }
            }
        }
        let per_round: Vec<String> = rounds[0]
            .iter()
            .zip(&rounds[1])
            .map(|(o, b)| format!("{:.2}", o.cpu_per_gb / b.cpu_per_gb))
            .collect();
        let [ours, base] = rounds.map(median_round);
        print_row(&name, "camfleet", &ours);
        print_row(&name, "baseline", &base);
        std::io::stdout().flush().unwrap();
        ratios.push((
            name,
            ours.gbytes / base.gbytes,
            ours.cpu_per_gb / base.cpu_per_gb,
            per_round.join(", "),
            ours.rss_mib,
        ));
    }
    println!("\n| case | camfleet / C throughput | camfleet / C CPU per GB (medians) | each round | camfleet RSS growth per client |");
    println!("|---|---|---|---|---|");
    for (name, ratio, cpu, each, rss) in &ratios {
        let clients: f64 = name.split(' ').next().unwrap().parse().unwrap();
        println!(
            "| {name} | {ratio:.2} | {cpu:.2} | {each} | {:.3} MiB |",
            (rss - idle_rss) / clients
        );
    }
}

/// The round with the median CPU per delivered GB.
fn median_round(mut rounds: Vec<CaseResult>) -> CaseResult {
    rounds.sort_by(|a, b| a.cpu_per_gb.total_cmp(&b.cpu_per_gb));
    rounds.swap_remove(rounds.len() / 2)
}

fn print_row(case: &str, server: &str, r: &CaseResult) {
    println!(
        "| {case} | {server} | {:.1} | {:.1} | {:.2} | {:.2} | {:.1} | {:.1} | {:.1} |",
        r.fps_min, r.fps_median, r.gbytes, r.cpu_per_gb, r.p50_ms, r.p99_ms, r.rss_mib
    );
}

fn fleet() {
    let cameras: u32 = 32;
    let mut yaml = String::from("server:\n  listen: 127.0.0.1:PORT\ncameras:\n");
    for i in 0..cameras {
        let _ = write!(yaml, "  - id: cam{i:02}\n    source: {{kind: synthetic, width: 640, height: 480, fps: {FPS}, pattern: noise, prerender: {FPS}}}\n");
    }
    let server = Server::camfleet(&yaml);
    // Every camera draws its ring when it opens: the "no viewer" figure starts after that.
    server.wait_all_streaming(cameras as usize);
    let idle0 = server.cpu_seconds();
    std::thread::sleep(MEASURE);
    let idle_cpu = (server.cpu_seconds() - idle0) / MEASURE.as_secs_f64();

    let addr = server.addr;
    let start = Instant::now() + WARMUP;
    let window = (start, start + MEASURE);
    let per_camera = Rc::new(RefCell::new(std::collections::HashMap::new()));
    let map = per_camera.clone();
    let cpu = actix_rt::System::new().block_on(async move {
        let task = actix_rt::spawn(ws_client(addr, map, window));
        actix_rt::time::sleep_until(window.0.into()).await;
        let c0 = server.cpu_seconds();
        actix_rt::time::sleep_until(window.1.into()).await;
        let c1 = server.cpu_seconds();
        let _ = task.await;
        c1 - c0
    });
    let secs = MEASURE.as_secs_f64();
    let map = per_camera.borrow();
    let mut fps: Vec<f64> = (0..cameras)
        .map(|i| {
            map.get(&format!("cam{i:02}"))
                .map_or(0.0, |s| s.frames as f64 / secs)
        })
        .collect();
    fps.sort_by(f64::total_cmp);
    let delivered: f64 = fps.iter().sum::<f64>() / (f64::from(FPS) * f64::from(cameras));
    let mut lat: Vec<f64> = map.values().flat_map(|s| s.latencies_ms.clone()).collect();
    lat.sort_by(f64::total_cmp);
    let cpu_share = cpu / secs;
    println!("\n## Fleet: {cameras} synthetic 640x480 {FPS} fps cameras, one WebSocket client taking all frames\n");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| delivered fps per camera, min / median | {:.1} / {:.1} |",
        fps[0],
        percentile(&fps, 0.5)
    );
    println!("| frames delivered | {:.1} % |", delivered * 100.0);
    println!(
        "| server CPU, all cameras, no viewer | {:.1} % of one core |",
        idle_cpu * 100.0
    );
    println!(
        "| server CPU, all cameras, one client | {:.1} % of one core ({:.2} % per camera) |",
        cpu_share * 100.0,
        cpu_share * 100.0 / f64::from(cameras)
    );
    println!(
        "| capture-to-receive p50 / p99 | {:.1} / {:.1} ms |",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
}
