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
        /// The fleet's configuration file; reloaded on SIGHUP and when it changes.
        #[arg(long, default_value = "cameras.yaml")]
        config: PathBuf,
        /// Address to listen on; overrides the file's `server.listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Where control changes are kept across restarts [default: systemd's state directory,
        /// else ~/.local/state/camfleet].
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Validate a configuration file and summarize each camera.
    Check {
        /// The fleet's configuration file, as `camfleet check FILE` [default: cameras.yaml].
        file: Option<PathBuf>,
        /// The same, as `serve` takes it.
        #[arg(long, conflicts_with = "file")]
        config: Option<PathBuf>,
    },
    /// Hash a password for an account in cameras.yaml: reads it from the terminal without
    /// echo (or one line from standard input) and prints the hash alone.
    HashPassword,
    /// Make API tokens for scripts and other programs.
    Token {
        #[command(subcommand)]
        command: TokenCmd,
    },
    /// Show every camera of a running server: state, fps, viewers and skipped frames,
    /// redrawn in place as status arrives.
    Status {
        #[command(flatten)]
        server: ServerArgs,
        /// Print the table once and exit.
        #[arg(long)]
        once: bool,
    },
    /// List a camera's controls with their values and what they take.
    Controls {
        #[command(flatten)]
        server: ServerArgs,
        /// The camera's id.
        camera: String,
    },
    /// Set a camera's control: a number, true or false, or a menu item's name.
    Set {
        #[command(flatten)]
        server: ServerArgs,
        /// The camera's id.
        camera: String,
        /// The control's name, as `camfleet controls CAMERA` lists it.
        control: String,
        /// The value.
        value: String,
    },
    /// Print the JSON Schema of cameras.yaml, for editors (also served at
    /// /schema/cameras.json).
    Schema,
    /// List the V4L2 capture devices attached, with formats and controls.
    Devices {
        /// Print a `cameras:` section for cameras.yaml instead.
        #[arg(long)]
        yaml: bool,
    },
}

/// Which running server, and as whom.
#[derive(clap::Args)]
struct ServerArgs {
    /// The server, as a browser reaches it; `user:password@` signs in with an account.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "CAMFLEET_URL")]
    url: String,
    /// An API token (`camfleet token new`).
    #[arg(long, env = "CAMFLEET_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl ServerArgs {
    fn target(self) -> camfleet::client::Target {
        camfleet::client::Target {
            url: self.url,
            token: self.token,
        }
    }
}

/// Runs a command against a running server, printing its error on failure.
fn with_server<F>(server: ServerArgs, run: F) -> ExitCode
where
    F: AsyncFnOnce(&mut camfleet::client::Connection) -> anyhow::Result<()>,
{
    let target = server.target();
    let outcome = actix_rt::System::new().block_on(async move {
        let mut conn = camfleet::client::Connection::open(&target).await?;
        run(&mut conn).await
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("camfleet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Print a new token once, and the `tokens:` entry to paste into cameras.yaml.
    New {
        /// What the token is for, as logs will name it.
        name: String,
        /// What it may do: viewer, operator or admin.
        #[arg(long, value_parser = ["viewer", "operator", "admin"])]
        role: String,
        /// The cameras it may see, separated by commas [default: all].
        #[arg(long, value_delimiter = ',')]
        cameras: Vec<String>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let command = Cli::parse().command.unwrap_or(Cmd::Serve {
        config: PathBuf::from("cameras.yaml"),
        listen: None,
        state_dir: None,
    });
    match command {
        Cmd::Serve {
            config,
            listen,
            state_dir,
        } => serve(&config, listen, state_dir),
        Cmd::Check { file, config } => check(
            &file
                .or(config)
                .unwrap_or_else(|| PathBuf::from("cameras.yaml")),
        ),
        Cmd::HashPassword => hash_password(),
        Cmd::Token {
            command:
                TokenCmd::New {
                    name,
                    role,
                    cameras,
                },
        } => {
            let (token, hash) = camfleet::auth::new_token();
            eprintln!("The token (shown once; give it to the program that connects):");
            println!("{token}");
            eprintln!("\nAdd this under `auth: tokens:` in cameras.yaml:");
            let cameras = if cameras.is_empty() {
                String::new()
            } else {
                format!(", cameras: [{}]", cameras.join(", "))
            };
            println!("    - {{name: {name}, role: {role}, token_hash: \"{hash}\"{cameras}}}");
            ExitCode::SUCCESS
        }
        Cmd::Status { server, once } => with_server(server, async |conn| {
            conn.status(once, &mut std::io::stdout()).await
        }),
        Cmd::Controls { server, camera } => with_server(server, async |conn| {
            print!(
                "{}",
                camfleet::client::controls_table(&conn.controls(&camera).await?)
            );
            Ok(())
        }),
        Cmd::Set {
            server,
            camera,
            control,
            value,
        } => with_server(server, async |conn| {
            let now = conn.set(&camera, &control, &value).await?;
            print!("{}", camfleet::client::controls_table(&[now]));
            Ok(())
        }),
        Cmd::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&camfleet::config::schema())
                    .expect("a JSON value always serializes")
            );
            ExitCode::SUCCESS
        }
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

fn hash_password() -> ExitCode {
    use std::io::IsTerminal as _;
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Password: ")
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    };
    let password = match password {
        Ok(p) => p.trim_end_matches(['\r', '\n']).to_string(),
        Err(e) => {
            eprintln!("camfleet: cannot read the password: {e}");
            return ExitCode::FAILURE;
        }
    };
    if password.is_empty() {
        eprintln!("camfleet: the password is empty; type one, or pipe one line to standard input");
        return ExitCode::FAILURE;
    }
    println!("{}", camfleet::auth::hash_password(&password));
    ExitCode::SUCCESS
}

/// Refuses a configuration that would put the cameras on the network with no accounts.
fn exposed(config: &Config) -> bool {
    if let Some(problem) = camfleet::config::exposure_problem(&config.auth, config.server.listen) {
        eprintln!("camfleet: {problem}");
        return true;
    }
    false
}

fn check(path: &std::path::Path) -> ExitCode {
    let Some(config) = load(path) else {
        return ExitCode::FAILURE;
    };
    if exposed(&config) {
        return ExitCode::FAILURE;
    }
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

fn serve(
    path: &std::path::Path,
    listen: Option<SocketAddr>,
    state_dir: Option<PathBuf>,
) -> ExitCode {
    let Some(mut config) = load(path) else {
        return ExitCode::FAILURE;
    };
    if let Some(addr) = listen {
        config.server.listen = addr;
    }
    if exposed(&config) {
        return ExitCode::FAILURE;
    }
    let state_dir = state_dir.or_else(camfleet::daemon::default_state_dir);
    match camfleet::daemon::run(path, config, listen, state_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("camfleet: {e}");
            ExitCode::FAILURE
        }
    }
}
