//! The `andon` command: parses the command line, sets up logging, loads the
//! settings and hands over to the library. Errors become exit codes here:
//! 0 ok, 2 bad usage or configuration, 1 runtime failure.

use std::fs::File;
use std::io::{self, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use andon::config::Settings;
use andon::replay::{self, Input};
use clap::{Parser, Subcommand};

/// mimalloc rather than glibc's malloc: the hot path allocates a few short
/// strings per event on several threads, where glibc's malloc and free
/// took a fifth of andon's instructions (callgrind, 200,000 complaints).
/// Built without transparent huge pages (Cargo.toml, `no_thp`): with them,
/// the kernel zeroing 2 MiB pages as freed memory was purged and touched
/// again took a third of andon's CPU (perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "andon", version, about = "Pull the andon cord on products customers keep complaining about.")]
struct Cli {
    /// Log lines as human-readable text or as JSON objects.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// The engine offline over files: outputs as JSON lines on stdout, a summary on stderr.
    Replay {
        /// Rules and settings (TOML).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Complaints, one JSON object per line.
        complaints: PathBuf,
        /// Work-order updates, one JSON object per line.
        #[arg(long)]
        updates: Option<PathBuf>,
    },
    /// Price candidate rules on history: the engine replayed once per candidate, judged by the real verdicts.
    ///
    /// Reads the files `replay` reads. Per issue it prints the rules in force
    /// and every candidate (each threshold with each window): pulls, bad and
    /// unjudged pulls, the bad-pull rate with its 95 % interval, customers
    /// hurt, defects missed, time from first complaint to pull; then the
    /// recommended `[[rules.issue]]` entry, or why there is none.
    Tune {
        /// Rules and settings (TOML): the rules in force, and everything a candidate does not change.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Complaints, one JSON object per line (or `--kafka`).
        #[arg(required_unless_present = "kafka", conflicts_with = "kafka")]
        complaints: Option<PathBuf>,
        /// Work-order updates, one JSON object per line: the verdicts that judge the pulls.
        #[arg(long, conflicts_with = "kafka")]
        updates: Option<PathBuf>,
        /// Read the history from the configured complaints and updates topics instead of files
        /// (read_committed, in no consumer group, committing nothing).
        #[arg(long)]
        kafka: bool,
        /// With --kafka: records from this time on, an RFC 3339 time or a duration before now
        /// (`90d`) [default: each partition's start].
        #[arg(long)]
        since: Option<String>,
        /// With --kafka: records before this time, an RFC 3339 time or a duration before now
        /// [default: now].
        #[arg(long)]
        until: Option<String>,
        /// Thresholds to try, comma-separated [default: 1,2,3,4,5].
        #[arg(long, value_delimiter = ',', num_args = 1, allow_hyphen_values = true)]
        threshold: Option<Vec<String>>,
        /// Windows to try, comma-separated [default: 1h,6h,24h,3d,7d,14d].
        #[arg(long, value_delimiter = ',', num_args = 1)]
        window: Option<Vec<String>>,
        /// Only these issues, comma-separated or repeated [default: every issue of the history].
        #[arg(long, value_delimiter = ',')]
        issue: Vec<String>,
        /// The highest bad-pull rate to accept, as `2%` or `0.02`.
        #[arg(long, default_value = "2%")]
        target: String,
        /// A table for people or one JSON document.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Also write the report as one self-contained HTML page with a chart per issue.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// The processor: a consumer-group member on the complaints and updates topics.
    Run {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// An embedded Kafka-protocol cluster (librdkafka's MockCluster) with andon's topics.
    ///
    /// Prints the bootstrap servers, then runs until SIGINT or SIGTERM. Faults
    /// can be injected while it runs: commands read line by line from stdin,
    /// each answered with one line on stdout, `ok` or `error: ...` (if stdin is
    /// closed, e.g. </dev/null, the cluster just runs):
    ///
    ///   broker-down [BROKER]        refuse connections and drop the open ones
    ///   broker-up [BROKER]          accept connections again
    ///   rtt MS [BROKER]             delay every response by MS milliseconds (0: none)
    ///   errors API ERROR COUNT      answer the next COUNT requests of API with ERROR
    ///   clear-errors API            drop the errors still queued for API
    ///
    /// BROKER: a broker id (the one broker is 1; default -1, all). API: a Kafka
    /// API name (Produce, Fetch, EndTxn, AddPartitionsToTxn, JoinGroup, ...).
    /// ERROR: a Kafka error name (NOT_LEADER_FOR_PARTITION, REQUEST_TIMED_OUT,
    /// MSG_SIZE_TOO_LARGE, _TRANSPORT to drop the connection, ...). Names are
    /// case-insensitive, underscores optional. From bash, for example:
    ///
    ///   coproc cluster { andon dev-cluster; }
    ///   read -r bootstrap <&"${cluster[0]}"
    ///   echo 'errors Produce REQUEST_TIMED_OUT 3' >&"${cluster[1]}"
    ///   read -r answer <&"${cluster[0]}"
    #[command(verbatim_doc_comment)]
    DevCluster {
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=256))]
        partitions: i32,
        /// Also write the bootstrap servers to this file.
        #[arg(long)]
        bootstrap_file: Option<PathBuf>,
        /// Topic names and other settings (only `[topics]` is read).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Everything on one machine: cluster, processor, generated traffic, simulated owners, a live view.
    Demo {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Stop after this long (default: until Ctrl-C).
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<std::time::Duration>,
    },
    /// Validate the configuration and print the effective settings, secrets redacted.
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo's terminal view is its output: only warnings (and the
    // address of its page) go to the log there.
    let default_filter = match cli.command {
        Command::Demo { .. } => "warn,andon::ops::http=info,andon::kafka::task=error",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into());
    // Lines are written by a thread of their own, many to a write: on a
    // load where one complaint in four pulls, the line per pull cost
    // `andon run` about a fifth of its CPU, formatted and written to
    // stderr by the loop itself, one write(2) each; writing them here
    // took about half of that off. Never lossy: a full queue holds the
    // logger up instead. The guard flushes what is queued when `main`
    // returns.
    let (writer, _flush_on_return) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log-writer")
        .finish(io::BufWriter::new(io::stderr()));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match cli.log_format {
        LogFormat::Json => logs.json().flatten_event(true).init(),
        LogFormat::Text => logs.with_ansi(io::stderr().is_terminal()).init(),
    }
    // With logging up, so a refusal is seen; before any librdkafka client
    // or MockCluster allocates (src/kafka/glibc.rs).
    andon::kafka::glibc::return_large_buffers();
    match cli.command {
        Command::CheckConfig { config } => match load_serving(config.as_deref()) {
            Ok(s) => match s.to_toml() {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("andon: cannot print the settings: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(code) => code,
        },
        Command::Run { config } => {
            let settings = match load_serving(config.as_deref()) {
                Ok(s) => std::sync::Arc::new(s),
                Err(code) => return code,
            };
            runtime(|shutdown| {
                let (status, _) = andon::ops::serve(&settings)?;
                andon::kafka::run(settings, status, &shutdown).map_err(anyhow::Error::from)
            })
        }
        Command::DevCluster { partitions, bootstrap_file, config } => {
            let settings = match load(config.as_deref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            runtime(|shutdown| dev_cluster(&settings, partitions, bootstrap_file.as_deref(), &shutdown))
        }
        Command::Demo { config, duration } => {
            let settings = match load_serving(config.as_deref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            runtime(|shutdown| andon::demo::run(settings, duration, shutdown))
        }
        Command::Tune {
            config,
            complaints,
            updates,
            kafka: _,
            since,
            until,
            threshold,
            window,
            issue,
            target,
            format,
            html,
        } => {
            let grid = andon::tune::Grid::parse(threshold.as_deref(), window.as_deref(), &issue);
            let options = match (grid, parse_target(&target)) {
                (Ok(grid), Ok(target)) => andon::tune::Options { grid, target },
                (Err(e), _) => {
                    eprintln!("andon tune: {e}");
                    return ExitCode::from(2);
                }
                (_, Err(e)) => {
                    eprintln!("andon tune: --target: {e}");
                    return ExitCode::from(2);
                }
            };
            // Clap has made sure: a file, or --kafka. (Its `requires`
            // counts a flag's default `false` as given: checked here.)
            let source = match complaints {
                Some(_) if since.is_some() || until.is_some() => {
                    eprintln!(
                        "andon tune: --since and --until are for the history in Kafka: add --kafka, without files"
                    );
                    return ExitCode::from(2);
                }
                Some(complaints) => TuneSource::Files { complaints, updates },
                None => match parse_span(since.as_deref(), until.as_deref()) {
                    Ok(span) => TuneSource::Kafka(span),
                    Err(e) => {
                        eprintln!("andon tune: {e}");
                        return ExitCode::from(2);
                    }
                },
            };
            let settings = match load(config.as_deref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            run_tune(&settings, &options, &source, format, html.as_deref())
        }
        Command::Replay { config, complaints, updates } => {
            let settings = match load(config.as_deref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            match run_replay(&settings, &complaints, updates.as_deref()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("andon replay: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// Runs `f` with a flag that SIGINT/SIGTERM set; errors exit 1.
fn runtime(f: impl FnOnce(std::sync::Arc<std::sync::atomic::AtomicBool>) -> anyhow::Result<()>) -> ExitCode {
    let result = andon::shutdown::on_signal().map_err(anyhow::Error::from).and_then(f);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("andon: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn dev_cluster(
    settings: &Settings,
    partitions: i32,
    bootstrap_file: Option<&Path>,
    shutdown: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<()> {
    let cluster = andon::dev_cluster::DevCluster::start(partitions, &settings.topics)?;
    let bootstrap = cluster.bootstrap_servers();
    if let Some(path) = bootstrap_file {
        // Written whole, then renamed: a reader never sees half a line.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("{bootstrap}\n"))?;
        std::fs::rename(&tmp, path)?;
    }
    println!("{bootstrap}");
    io::stdout().flush()?;
    tracing::info!(%bootstrap, partitions, "dev cluster running; Ctrl-C stops it");
    // Control commands arrive on a thread of their own (a read of stdin
    // blocks); the cluster, which must stay on this thread, carries them out.
    let (tx, commands) = std::sync::mpsc::channel::<String>();
    std::thread::Builder::new().name("control".into()).spawn(move || {
        for line in io::stdin().lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    })?;
    while !shutdown.load(std::sync::atomic::Ordering::Relaxed) {
        match commands.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(line) => {
                if let Some(answer) = cluster.answer(&line) {
                    tracing::info!(command = line.trim(), %answer, "control");
                    let mut out = io::stdout().lock();
                    // Nobody reading the answers is no reason to stop.
                    let _ = writeln!(out, "{answer}").and_then(|()| out.flush());
                }
            }
            // Stdin closed: the cluster runs on until a signal.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(std::time::Duration::from_millis(100))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
    Ok(())
}

fn load(path: Option<&Path>) -> Result<Settings, ExitCode> {
    Settings::load(path).map_err(|e| {
        eprintln!("andon: {e}");
        ExitCode::from(2)
    })
}

/// [`load`], and the HTTP side's files read too (the TLS PEMs): a bad one
/// is a configuration error, before anything starts.
fn load_serving(path: Option<&Path>) -> Result<Settings, ExitCode> {
    let settings = load(path)?;
    andon::ops::check(&settings).map_err(|e| {
        eprintln!("andon: {e}");
        ExitCode::from(2)
    })?;
    Ok(settings)
}

fn open(path: &Path) -> anyhow::Result<(Input<BufReader<File>>, u64)> {
    let file = File::open(path).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((Input { name: path.display().to_string(), reader: BufReader::with_capacity(1 << 16, file) }, len))
}

fn run_replay(settings: &Settings, complaints: &Path, updates: Option<&Path>) -> anyhow::Result<()> {
    let (c, mut total) = open(complaints)?;
    let u = match updates {
        Some(p) => {
            let (u, len) = open(p)?;
            total += len;
            Some(u)
        }
        None => None,
    };
    // A bar only for people watching, and only when there is something to wait for.
    let bar = (io::stderr().is_terminal() && total > 8 << 20).then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let stdout = io::stdout().lock();
    let out = io::BufWriter::with_capacity(1 << 16, stdout);
    let mut progress = |bytes: u64| {
        if let Some(bar) = &bar {
            bar.set_position(bytes);
        }
    };
    let summary = replay::replay(settings, c, u, out, &mut progress)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut err = io::stderr().lock();
    writeln!(err, "{summary}")?;
    Ok(())
}

/// `2%`, `2 %` or `0.02`: a rate between 0 and 1, both excluded.
fn parse_target(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (number, scale) = match t.strip_suffix('%') {
        Some(p) => (p.trim(), 100.0),
        None => (t, 1.0),
    };
    let rate = number.parse::<f64>().map(|x| x / scale).map_err(|_| format!("{s:?} is not a rate like 2% or 0.02"))?;
    if rate > 0.0 && rate < 1.0 {
        Ok(rate)
    } else {
        Err(format!("{s:?} is not between 0 and 100 %"))
    }
}

/// Where `andon tune` reads its history.
enum TuneSource {
    Files { complaints: PathBuf, updates: Option<PathBuf> },
    Kafka(andon::tune::kafka::Span),
}

/// `--since` and `--until` against the clock now; an error names the flag.
fn parse_span(since: Option<&str>, until: Option<&str>) -> Result<andon::tune::kafka::Span, String> {
    let now = andon::time::Ts::from_millis(chrono::Utc::now().timestamp_millis());
    let parse = |flag: &str, s: &str| andon::tune::kafka::parse_time(s, now).map_err(|e| format!("{flag}: {e}"));
    let since = since.map(|s| parse("--since", s)).transpose()?;
    let until = until.map(|s| parse("--until", s)).transpose()?.unwrap_or(now);
    if since.is_some_and(|s| s >= until) {
        return Err("--since: it is not before --until (or now): the span holds nothing".into());
    }
    Ok(andon::tune::kafka::Span { since, until })
}

fn run_tune(
    settings: &Settings,
    options: &andon::tune::Options,
    source: &TuneSource,
    format: Format,
    html: Option<&Path>,
) -> ExitCode {
    let result = (|| -> anyhow::Result<Result<andon::tune::Report, andon::tune::GridError>> {
        let history = match source {
            TuneSource::Files { complaints, updates } => {
                let (c, _) = open(complaints)?;
                let u = match updates {
                    Some(p) => Some(open(p)?.0),
                    None => None,
                };
                andon::tune::History::read(c, u, settings.processing.max_event_bytes, &mut |_| {})?
            }
            TuneSource::Kafka(span) => {
                let bar = io::stderr().is_terminal().then(|| {
                    let bar = indicatif::ProgressBar::new(0);
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "history {bar:40} {human_pos}/{human_len} records eta {eta}",
                        )
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                    );
                    bar
                });
                let progress = |done: u64, total: u64| {
                    if let Some(bar) = &bar {
                        bar.set_length(total);
                        bar.set_position(done);
                    }
                };
                let history = andon::tune::kafka::read(settings, *span, &progress)?;
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                }
                history
            }
        };
        let replays = 1 + options.grid.candidates().len() as u64;
        let bar = io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(replays);
            bar.set_style(
                indicatif::ProgressStyle::with_template("replays {bar:40} {pos}/{len} eta {eta}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        let done = || {
            if let Some(bar) = &bar {
                bar.inc(1);
            }
        };
        let report = andon::tune::tune(settings, &history, options, &done);
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        Ok(report)
    })();
    let report = match result {
        Ok(Ok(report)) => report,
        Ok(Err(usage)) => {
            eprintln!("andon tune: {usage}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("andon tune: {e:#}");
            return ExitCode::from(1);
        }
    };
    if let Some(path) = html {
        let written = File::create(path).and_then(|f| {
            let mut w = io::BufWriter::new(f);
            andon::tune::html::write_html(&report, &mut w)?;
            w.flush()
        });
        if let Err(e) = written {
            eprintln!("andon tune: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    let mut out = io::stdout().lock();
    let written = match format {
        Format::Table => report.write_table(&mut out),
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report).map_err(io::Error::from).and_then(|()| writeln!(out))
        }
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("andon tune: cannot write the report: {e}");
            ExitCode::from(1)
        }
    }
}
