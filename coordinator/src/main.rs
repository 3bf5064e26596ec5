//! `fog-coordinator`: parse and validate the configuration, start, serve
//! until SIGINT/SIGTERM, shut down gracefully.

use clap::Parser;
use fog_coordinator::config::{Config, EXIT_CONFIG, Flags};
use tracing_subscriber::EnvFilter;

/// mimalloc, not glibc's malloc: see ARCHITECTURE.md (*Allocator*).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `fog-coordinator admin …`: offline administration of the store.
#[derive(Parser, Debug)]
#[command(name = "fog-coordinator admin", about = "Offline administration (the coordinator must be stopped)")]
struct AdminCli {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(clap::Subcommand, Debug)]
enum AdminCommand {
    /// Create a user directly in the store — how the first admin comes to exist.
    /// There is no default account or password.
    Create {
        /// Directory of the embedded store.
        #[arg(long, env = "FOG_DATA_DIR", default_value = "./fog-data")]
        data_dir: std::path::PathBuf,
        /// The user's name.
        #[arg(long)]
        username: String,
        /// The role: admin, operator or viewer.
        #[arg(long, default_value = "admin")]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long, conflicts_with = "password_file")]
        password_stdin: bool,
        /// Read the password from the first line of this file.
        #[arg(long)]
        password_file: Option<std::path::PathBuf>,
        /// The store the coordinator uses: `redb` (in --data-dir) or `etcd`.
        #[arg(long, env = "FOG_STORE", default_value = "redb", value_parser = ["redb", "etcd"])]
        store: String,
        /// etcd client URLs (with `--store etcd`).
        #[arg(long, env = "FOG_ETCD_ENDPOINTS", value_delimiter = ',')]
        etcd_endpoints: Vec<String>,
        /// Key prefix of the cluster's records in etcd.
        #[arg(long, env = "FOG_ETCD_PREFIX", default_value = "/fogplane/")]
        etcd_prefix: String,
        /// PEM file of the CA that signed etcd's certificates (with https:// endpoints).
        #[arg(long, env = "FOG_ETCD_CA")]
        etcd_ca: Option<std::path::PathBuf>,
        /// Client certificate (PEM) for an etcd that requires one; with --etcd-key.
        #[arg(long, env = "FOG_ETCD_CERT")]
        etcd_cert: Option<std::path::PathBuf>,
        /// The client certificate's private key (PEM).
        #[arg(long, env = "FOG_ETCD_KEY")]
        etcd_key: Option<std::path::PathBuf>,
    },
}

fn admin(args: Vec<String>) -> i32 {
    let cli = match AdminCli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let _ = e.print();
            return EXIT_CONFIG;
        }
    };
    let AdminCommand::Create {
        data_dir,
        username,
        role,
        password_stdin,
        password_file,
        store,
        etcd_endpoints,
        etcd_prefix,
        etcd_ca,
        etcd_cert,
        etcd_key,
    } = cli.command;
    let etcd = if store == "etcd" {
        let settings = fog_coordinator::config::etcd_settings(
            &etcd_endpoints,
            &etcd_prefix,
            etcd_ca.as_deref(),
            etcd_cert.as_deref(),
            etcd_key.as_deref(),
        );
        match settings {
            Ok(fog_coordinator::config::StoreChoice::Etcd { tls, .. }) => tls,
            Ok(_) => None,
            Err(e) => {
                eprintln!("fog-coordinator admin create: {}", e.0);
                return EXIT_CONFIG;
            }
        }
    } else {
        None
    };
    let Some(role) = fog_coordinator::auth::Role::parse(&role) else {
        eprintln!("fog-coordinator admin create: --role must be admin, operator or viewer");
        return EXIT_CONFIG;
    };
    let password = if let Some(path) = password_file {
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    } else if password_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line).map_err(|e| format!("reading stdin: {e}"))
    } else {
        Err("give the password with --password-stdin or --password-file".to_string())
    };
    let password = match password {
        Ok(p) => p.lines().next().unwrap_or_default().to_string(),
        Err(e) => {
            eprintln!("fog-coordinator admin create: {e}");
            return EXIT_CONFIG;
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let created = rt.block_on(async {
        use fog_coordinator::auth::bootstrap;
        if store == "etcd" {
            let s = fog_coordinator::store::EtcdStore::connect(&etcd_endpoints, &etcd_prefix, etcd.as_ref()).await?;
            bootstrap::create_user_in(&s, &username, &password, role).await
        } else {
            bootstrap::create_user(&data_dir, &username, &password, role).await
        }
    });
    let place = if store == "etcd" { format!("etcd {etcd_prefix}") } else { data_dir.display().to_string() };
    match created {
        Ok(()) => {
            eprintln!("created {} user {username:?} in {place}", role.name());
            0
        }
        Err(e) => {
            eprintln!("fog-coordinator admin create: {e:#}");
            1
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "admin") {
        std::process::exit(admin(args[1..].to_vec()));
    }
    let flags = match Flags::try_parse() {
        Ok(f) => f,
        // --help and --version are not errors.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let _ = e.print();
            std::process::exit(EXIT_CONFIG);
        }
    };
    let cfg = match Config::from_flags(flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fog-coordinator: {e}");
            std::process::exit(EXIT_CONFIG);
        }
    };
    let filter = EnvFilter::try_from_env("FOG_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if cfg.log_json {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let code = rt.block_on(async move {
        let traces = match fog_telemetry::trace::init("fog-coordinator", cfg.otlp_endpoint.as_deref()) {
            Ok(guard) => guard,
            Err(e) => {
                eprintln!("fog-coordinator: --otlp-endpoint: {e}");
                return EXIT_CONFIG;
            }
        };
        if cfg.ha {
            let code = fog_coordinator::ha::run(cfg, wait_for_signal()).await;
            traces.shutdown().await;
            return code;
        }
        let running = match fog_coordinator::server::start(cfg).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "could not start");
                return 1;
            }
        };
        let code = tokio::select! {
            _ = wait_for_signal() => {
                tracing::info!("shutting down");
                0
            }
            _ = running.store_failed() => {
                tracing::error!(
                    "the store accepts no more writes; stopping, so that the supervisor restarts the coordinator \
                     (which succeeds once the disk is fixed)"
                );
                fog_coordinator::server::EXIT_STORE_FAILED
            }
        };
        running.stop().await;
        traces.shutdown().await;
        code
    });
    std::process::exit(code);
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
