//! The `camfleet` command: parses arguments, sets up logging and calls into the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use camfleet::config::{Config, SourceConfig};

/// Supervises a fleet of USB cameras and serves them live over one WebSocket.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the fleet (the default when no command is given).
    Serve {
        /// The fleet's configuration file.
        #[arg(long, default_value = "cameras.yaml")]
        config: PathBuf,
        /// Address to listen on; overrides the file's `server.listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Validate a configuration file and summarize each camera.
    Check {
        /// The fleet's configuration file.
        #[arg(long, default_value = "cameras.yaml")]
        config: PathBuf,
    },
    /// List the V4L2 capture devices attached, with formats and controls.
    Devices {
        /// Print a `cameras:` section for cameras.yaml instead.
        #[arg(long)]
        yaml: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let command = Cli::parse().command.unwrap_or(Cmd::Serve {
        config: PathBuf::from("cameras.yaml"),
        listen: None,
    });
    match command {
        Cmd::Serve { config, listen } => serve(&config, listen),
        Cmd::Check { config } => check(&config),
        Cmd::Devices { yaml } => {
            if yaml {
                print!("{}", camfleet::devices::yaml());
            } else {
                print!("{}", camfleet::devices::report());
            }
            ExitCode::SUCCESS
        }
    }
}

fn load(path: &std::path::Path) -> Option<Config> {
    match Config::load(path) {
        Ok(config) => Some(config),
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "{} problem(s) in {}; camfleet did not start",
                errors.0.len(),
                path.display()
            );
            None
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    let Some(config) = load(path) else {
        return ExitCode::FAILURE;
    };
    println!(
        "{}: {} camera(s), listening on {}",
        path.display(),
        config.cameras.len(),
        config.server.listen
    );
    for cam in &config.cameras {
        let source = match &cam.source {
            SourceConfig::Synthetic(s) => {
                format!(
                    "synthetic {}x{} @ {} fps, pattern {}",
                    s.width,
                    s.height,
                    s.fps,
                    s.pattern.name()
                )
            }
            SourceConfig::V4l2(v) => {
                let size = v.size.map(|(w, h)| format!(" {w}x{h}")).unwrap_or_default();
                let fps = v.fps.map(|f| format!(" @ {f} fps")).unwrap_or_default();
                let format = v
                    .pixel_format
                    .map(|f| format!(" {}", String::from_utf8_lossy(&f)))
                    .unwrap_or_default();
                format!("v4l2 {:?}{format}{size}{fps}", v.device)
            }
        };
        let state = if cam.enabled { "" } else { " (disabled)" };
        println!(
            "  {:<16} {:<24} {source}, {} desired control(s){state}",
            cam.id.as_str(),
            format!("\"{}\"", cam.name),
            cam.controls.len()
        );
    }
    ExitCode::SUCCESS
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM.
async fn stop_requested() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn serve(path: &std::path::Path, listen: Option<SocketAddr>) -> ExitCode {
    let Some(mut config) = load(path) else {
        return ExitCode::FAILURE;
    };
    if let Some(addr) = listen {
        config.server.listen = addr;
    }
    let result = actix_web::rt::System::new().block_on(async move {
        let listener = std::net::TcpListener::bind(config.server.listen).map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {}: {e}; pass another address with --listen",
                config.server.listen
            )
        })?;
        let server = camfleet::server::start(config, listener)?;
        tracing::info!("camfleet serving on http://{}/", server.local_addr);
        let handle = server.http.handle();
        let shutdown = server.shutdown.clone();
        actix_web::rt::spawn(async move {
            stop_requested().await;
            tracing::info!("stopping");
            shutdown.trigger();
            handle.stop(true).await;
        });
        server.http.await?;
        anyhow::Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("camfleet: {e}");
            ExitCode::FAILURE
        }
    }
}
