//! `turbowish`: reads TurboWish heap snapshots and shows memory per task,
//! wait chains and deadlocks, flame graphs, diffs, and pprof exports.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use turbowish_report::chains::{chains_dot, chains_text, may_lock};
use turbowish_report::diff::diff;
use turbowish_report::flame::FoldedStacks;
use turbowish_report::html::{page as html_page, PageOptions};
use turbowish_report::pprof::{lacks_line_tables, pprof_gz};
use turbowish_report::sites::task_sites;
use turbowish_snapshot::atomic_write::{write_atomic, write_atomic_with};
use turbowish_snapshot::format::{printable, printable_text};
use turbowish_snapshot::table::{MemoryReport, SortKey};
use turbowish_snapshot::Snapshot;

/// Reads TurboWish heap snapshots: memory per task, who holds which lock,
/// deadlocks, growth between snapshots, flame graphs and pprof profiles.
#[derive(Debug, Parser)]
#[command(
    name = "turbowish",
    version,
    after_help = "Every SNAPSHOT may be `-` to read standard input.\n\nExit status: 0 success, 2 bad input or usage, 3 `chains` found a deadlock, 1 an output could not be written or `top` could not reach or lost its program."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Per-task memory table (biggest first) and a summary, or one task's
    /// top allocation sites.
    Report(ReportArgs),
    /// Wait chains and deadlock cycles with frame stacks and locations
    /// (exit status 3 when there is a deadlock).
    Chains(ChainsArgs),
    /// Flame graph (SVG) of live bytes by task, then by call path.
    Flamegraph(FlamegraphArgs),
    /// Growth per task and per allocation site between two snapshots of the
    /// same program.
    Diff(DiffArgs),
    /// Converts a snapshot to another profile format.
    Export(ExportArgs),
    /// One self-contained HTML page: the task table, an ownership treemap,
    /// the task/resource graph, the flame graph and, with --base, growth.
    Html(HtmlArgs),
    /// Live view of a running program (started with TURBOWISH_LIVE=1): its
    /// tasks' memory, growth and allocation rates as they change, and who
    /// holds and waits for each resource.
    Top(TopArgs),
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// Snapshot file (`-` for standard input).
    snapshot: PathBuf,
    /// Order of the rows (biggest first; `name` alphabetically).
    #[arg(long, value_enum, default_value_t = Sort::Live)]
    sort: Sort,
    /// Show at most N rows (the rest summed in one line) or, with `--task`,
    /// N allocation sites.
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    top: usize,
    /// Show the top allocation sites of the tasks with this name, else of
    /// the task with this id (or of the bucket with this name).
    #[arg(long, value_name = "NAME|ID")]
    task: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Sort {
    /// Live bytes.
    Live,
    /// Live blocks.
    Blocks,
    /// Bytes ever allocated.
    Total,
    /// Peak live bytes.
    Peak,
    /// Task name.
    Name,
}

#[derive(Debug, Args)]
struct ChainsArgs {
    /// Snapshot file (`-` for standard input).
    snapshot: PathBuf,
    /// Also write the task/resource graph as Graphviz DOT to FILE (`-`:
    /// standard output, instead of the text): tasks are ellipses, resources
    /// boxes, deadlock edges red.
    #[arg(long, value_name = "FILE")]
    dot: Option<PathBuf>,
    /// Print the chains and cycles as JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct FlamegraphArgs {
    /// Snapshot file (`-` for standard input).
    snapshot: PathBuf,
    /// Output file (`-` for standard output).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Write collapsed stacks (`owner;outer;...;inner bytes` lines) instead
    /// of SVG.
    #[arg(long)]
    folded: bool,
    /// Title of the SVG (default: names the executable).
    #[arg(long)]
    title: Option<String>,
}

#[derive(Debug, Args)]
struct DiffArgs {
    /// The earlier snapshot (`-` for standard input).
    old: PathBuf,
    /// The later snapshot (`-` for standard input).
    new: PathBuf,
    /// Compare even snapshots of different executables.
    #[arg(long)]
    force: bool,
    /// Show at most N tasks and N sites.
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    top: usize,
    /// Print JSON (all rows) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Pprof)]
    format: Format,
    /// Snapshot file (`-` for standard input).
    snapshot: PathBuf,
    /// Output file (`-` for standard output).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
}

#[derive(Debug, Args)]
struct HtmlArgs {
    /// Snapshot file (`-` for standard input).
    snapshot: PathBuf,
    /// An earlier snapshot of the same program: adds growth per task and
    /// per allocation site (`-` for standard input).
    #[arg(long, value_name = "OLDER")]
    base: Option<PathBuf>,
    /// Compare with --base even when it is of another executable.
    #[arg(long, requires = "base")]
    force: bool,
    /// Output file (`-` for standard output). The page makes no request and
    /// opens from a file.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Keys: q quit, s write a snapshot now (into the program's $TURBOWISH_DIR, as SIGUSR1 would), p or space pause, / filter by name (Enter keeps, Esc clears), left/right sort column, r reverse, up/down select.\n\nWithout --pid or --socket, the one endpoint in $TURBOWISH_DIR (else the current directory) is used.\n\nExit status: 0 after q, 1 when the program cannot be reached or goes away, 2 when it speaks another live-view version."
)]
struct TopArgs {
    /// The program's process id: connects to turbowish-<pid>.sock in
    /// $TURBOWISH_DIR (else the current directory).
    #[arg(long, value_name = "N", conflicts_with = "socket")]
    pid: Option<u32>,
    /// The program's live socket.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// Gzipped pprof profile.proto (inuse_space, inuse_objects; a `task`
    /// label on every sample), for pprof, Pyroscope, Parca, Grafana.
    Pprof,
}

/// A failed command: the one line to print and the exit status.
struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    /// Bad input or usage.
    fn input(message: impl std::fmt::Display) -> Failure {
        Failure {
            message: message.to_string(),
            code: 2,
        }
    }

    fn output(path: &Path, e: std::io::Error) -> Failure {
        Failure {
            message: format!("{}: cannot write: {e}", path.display()),
            code: 1,
        }
    }
}

fn main() -> ExitCode {
    guard_outputs();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let result = match cli.command {
        Command::Report(args) => report(args),
        Command::Chains(args) => chains(args),
        Command::Flamegraph(args) => flamegraph(args),
        Command::Diff(args) => diff_cmd(args),
        Command::Export(args) => export(args),
        Command::Html(args) => html(args),
        Command::Top(args) => top(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            say(&failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// Help and version go out as clap writes them; a usage error becomes one
/// line, like every other error: clap's message with its hints (possible
/// values, a suggestion) folded in, without its "For more information"
/// trailer.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        _ => {
            let text = e.render().to_string();
            let parts: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                .collect();
            let mut line = String::new();
            for part in parts {
                if !line.is_empty() {
                    line.push_str(if line.ends_with(':') { " " } else { "; " });
                }
                line.push_str(part);
            }
            say(line.strip_prefix("error: ").unwrap_or(&line));
            ExitCode::from(2)
        }
    }
}

/// Whether standard output was closed when the program started (`>&-`).
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets up what keeps outputs from being lost or left half-written:
///
/// * `SIGINT`, `SIGTERM` and `SIGHUP` remove the temporary file being
///   written, then end the process as the signal would;
/// * `SIGXFSZ` (a file-size limit) is ignored, so the write fails with
///   `EFBIG` and takes the error path, which removes the temporary file;
/// * a closed standard output is noted (see [`stdout_was_closed`]): what
///   would be written there would be lost.
fn guard_outputs() {
    extern "C" fn on_signal(signal: libc::c_int) {
        turbowish_snapshot::atomic_write::remove_temp_files();
        // SAFETY: `signal` and `raise` are async-signal-safe; restoring the
        // default action and raising again ends the process as the signal
        // would have (exit status 128 + signal for the shell).
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only calls async-signal-safe functions
        // (`unlink` through `remove_temp_files`, `signal`, `raise`).
        unsafe { libc::signal(signal, handler) };
    }
    // SAFETY: ignoring a signal has no preconditions.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };

    if stdout_was_closed() {
        STDOUT_CLOSED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Whether standard output was closed when the process started. Rust's
/// runtime puts `/dev/null`, opened read-write, on a standard descriptor
/// it finds closed, before `main`; a shell's `> /dev/null` opens it
/// write-only. So a read-write `/dev/null` on descriptor 1 is taken for a
/// closed standard output (and `1<>/dev/null`, which nobody writes to
/// discard output, with it).
fn stdout_was_closed() -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: F_GETFL on a descriptor number only reads its flags.
    let flags = unsafe { libc::fcntl(1, libc::F_GETFL) };
    if flags == -1 {
        return true;
    }
    if flags & libc::O_ACCMODE != libc::O_RDWR {
        return false;
    }
    use std::os::fd::AsFd;
    let stdout = std::io::stdout();
    let Ok(fd) = stdout.as_fd().try_clone_to_owned() else {
        return false;
    };
    match (
        std::fs::File::from(fd).metadata(),
        std::fs::metadata("/dev/null"),
    ) {
        (Ok(out), Ok(null)) => out.rdev() == null.rdev() && out.dev() == null.dev(),
        _ => false,
    }
}

fn load(path: &Path) -> Result<Snapshot, Failure> {
    Snapshot::load(path).map_err(Failure::input)
}

/// [`load`] for `flamegraph --folded`, which spells out every stack of the
/// flame graph: also checks what they spell out against the file's budget
/// (see CLI.md, "Limits").
fn load_for_flame(path: &Path) -> Result<Snapshot, Failure> {
    let origin = path.display().to_string();
    let (snap, len) = Snapshot::load_counted(path).map_err(Failure::input)?;
    turbowish_snapshot::limits::check_flame_stacks(&snap, len, &origin).map_err(Failure::input)?;
    Ok(snap)
}

fn report(args: ReportArgs) -> Result<u8, Failure> {
    let snap = load(&args.snapshot)?;
    if let Some(query) = &args.task {
        let sites = task_sites(&snap, query, args.top)
            .map_err(|e| Failure::input(format!("{}: {e}", args.snapshot.display())))?;
        return if args.json {
            print_json(&sites)
        } else {
            print_text(&sites.to_string())
        };
    }
    let sort = match args.sort {
        Sort::Live => SortKey::Live,
        Sort::Blocks => SortKey::Blocks,
        Sort::Total => SortKey::Total,
        Sort::Peak => SortKey::Peak,
        Sort::Name => SortKey::Name,
    };
    let table = MemoryReport::new(&snap, sort, args.top);
    if args.json {
        print_json(&table)
    } else {
        print_text(&table.to_string())
    }
}

fn chains(args: ChainsArgs) -> Result<u8, Failure> {
    let snap = load(&args.snapshot)?;
    let dot_to_stdout = args.dot.as_deref() == Some(Path::new("-"));
    if dot_to_stdout && args.json {
        return Err(Failure::input(
            "--dot - and --json both want standard output; give --dot a file",
        ));
    }
    if snap.format_version < 2 {
        say(&format!(
            "note: {} is format version {}: it has no ownership, so every holder shown is as recorded",
            args.snapshot.display(),
            snap.format_version
        ));
    }
    if let Some(path) = &args.dot {
        write_output_from(&[&args.snapshot], path, chains_dot(&snap).as_bytes())?;
    }
    if args.json {
        print_json(&ChainsJson {
            chains: &snap.chains,
            cycles: &snap.cycles,
            may_lock: may_lock(&snap),
        })?;
    } else if !dot_to_stdout {
        print_text(&chains_text(&snap))?;
    }
    // Scripts test for a deadlock by the exit status.
    Ok(if snap.cycles.is_empty() { 0 } else { 3 })
}

/// What `chains --json` prints, serialized straight from the snapshot.
#[derive(serde::Serialize)]
struct ChainsJson<'a> {
    chains: &'a [turbowish_snapshot::schema::Chain],
    cycles: &'a [turbowish_snapshot::schema::Cycle],
    may_lock: Vec<turbowish_report::chains::MayLock>,
}

fn flamegraph(args: FlamegraphArgs) -> Result<u8, Failure> {
    // The folded text spells out every stack; the SVG draws at most
    // `flame::MAX_DRAWN` frames of them, from stacks kept once a site.
    let snap = if args.folded {
        load_for_flame(&args.snapshot)?
    } else {
        load(&args.snapshot)?
    };
    let stacks = FoldedStacks::new(&snap);
    if !stacks.sampled {
        say(&format!(
            "note: the snapshot has no sampled allocation sites (sample_interval {}); each stack is only a task or bucket name with its live bytes",
            snap.sample_interval
        ));
    }
    let bytes = if args.folded {
        // The stacks own their names: the snapshot can go, freed on
        // another thread while the text, about as big, is made.
        std::thread::spawn(move || drop(snap));
        if args.output != Path::new("-") {
            // To a file: written as it is made, never held whole.
            refuse_the_input(&[&args.snapshot], &args.output)?;
            write_atomic_with(&args.output, |file| stacks.write_folded(file))
                .map_err(|e| Failure::output(&args.output, e))?;
            return Ok(0);
        }
        stacks.folded_bytes()
    } else {
        let title = args.title.clone().unwrap_or_else(|| {
            format!(
                "Live bytes by task: {} (pid {})",
                snap.process.executable, snap.process.pid
            )
        });
        stacks
            .to_svg(&title)
            .map_err(|e| Failure::input(format!("{}: {e}", args.snapshot.display())))?
    };
    write_output_from(&[&args.snapshot], &args.output, &bytes)?;
    Ok(0)
}

fn diff_cmd(args: DiffArgs) -> Result<u8, Failure> {
    if args.old == Path::new("-") && args.new == Path::new("-") {
        return Err(Failure::input("OLD and NEW cannot both be standard input"));
    }
    // Both at once: loading is most of a diff's time, and the two files
    // are independent. OLD's failure is reported first, as before.
    let (old, new) = std::thread::scope(|s| {
        let old = s.spawn(|| load(&args.old));
        let new = load(&args.new);
        let old = old
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (old, new)
    });
    let (old, new) = (old?, new?);
    let d = diff(&old, &new, args.force).map_err(Failure::input)?;
    if d.new_is_older {
        say(&format!(
            "warning: NEW ({}) was taken before OLD ({})",
            args.new.display(),
            args.old.display()
        ));
    }
    if args.json {
        print_json(&d)
    } else {
        print_text(&d.render(args.top))
    }
}

fn export(args: ExportArgs) -> Result<u8, Failure> {
    let snap = load(&args.snapshot)?;
    match args.format {
        Format::Pprof => {
            if lacks_line_tables(&snap) {
                eprintln!(
                    "turbowish: note: the snapshot's stacks have no line tables, so code inlined into its caller (often the task's async block) is not shown; build with `debug = \"line-tables-only\"` for full stacks"
                );
            }
            if snap.owner_sites.is_empty() {
                say(
                    "note: the snapshot has no sampled allocation sites; each task is one sample of its live memory, without a stack",
                );
            }
            write_output_from(&[&args.snapshot], &args.output, &pprof_gz(&snap))?;
        }
    }
    Ok(0)
}

fn html(args: HtmlArgs) -> Result<u8, Failure> {
    if args.snapshot == Path::new("-") && args.base.as_deref() == Some(Path::new("-")) {
        return Err(Failure::input(
            "SNAPSHOT and --base cannot both be standard input",
        ));
    }
    let snap = load(&args.snapshot)?;
    let base = args.base.as_deref().map(load).transpose()?;
    let options = PageOptions {
        base: base.as_ref(),
        force: args.force,
    };
    let page = html_page(&snap, &options).map_err(Failure::input)?;
    let mut inputs = vec![args.snapshot.as_path()];
    inputs.extend(args.base.as_deref());
    write_output_from(&inputs, &args.output, page.as_bytes())?;
    Ok(0)
}

fn top(args: TopArgs) -> Result<u8, Failure> {
    use turbowish_report::top::client::Target;
    let dir = || {
        std::env::var_os("TURBOWISH_DIR")
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from)
    };
    let target = match (args.pid, args.socket) {
        (_, Some(path)) => Target::Socket(path),
        (Some(pid), None) => Target::Pid { pid, dir: dir() },
        (None, None) => Target::Only { dir: dir() },
    };
    turbowish_report::top::run(&target).map_err(|e| Failure {
        code: e.exit_code(),
        message: e.to_string(),
    })?;
    Ok(0)
}

/// [`write_output`] of what was made from the snapshots at `inputs`, which
/// it must not replace (`-o` given a snapshot's own name by mistake).
fn write_output_from<P: AsRef<Path>>(
    inputs: &[P],
    path: &Path,
    bytes: &[u8],
) -> Result<(), Failure> {
    refuse_the_input(inputs, path)?;
    write_output(path, bytes)
}

/// Refuses an output `path` that is one of the `inputs` (see
/// [`same_file`]).
fn refuse_the_input<P: AsRef<Path>>(inputs: &[P], path: &Path) -> Result<(), Failure> {
    if inputs.iter().any(|input| same_file(input.as_ref(), path)) {
        return Err(Failure {
            message: format!(
                "{}: cannot write: it is the snapshot being read",
                path.display()
            ),
            code: 2,
        });
    }
    Ok(())
}

/// Whether two paths name one existing file; `-` as an input is standard
/// input, whatever it was redirected from (`-o snap.json < snap.json`),
/// and as an output names no file.
fn same_file(a: &Path, b: &Path) -> bool {
    if b == Path::new("-") {
        return false;
    }
    let input = if a == Path::new("-") {
        stdin_metadata()
    } else {
        std::fs::metadata(a)
    };
    match (input, std::fs::metadata(b)) {
        #[cfg(unix)]
        (Ok(a), Ok(b)) => {
            use std::os::unix::fs::MetadataExt;
            (a.dev(), a.ino()) == (b.dev(), b.ino())
        }
        #[cfg(not(unix))]
        (Ok(_), Ok(_)) => a.canonicalize().ok() == b.canonicalize().ok(),
        _ => false,
    }
}

/// What standard input is (a file, a pipe, a terminal), as `fstat` sees it.
fn stdin_metadata() -> std::io::Result<std::fs::Metadata> {
    use std::os::fd::AsFd;
    let fd = std::io::stdin().as_fd().try_clone_to_owned()?;
    std::fs::File::from(fd).metadata()
}

/// Writes a file atomically (mode 0600), or to standard output for `-`.
fn write_output(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    if path == Path::new("-") {
        print(bytes).map(|_| ())
    } else {
        write_atomic(path, bytes).map_err(|e| Failure::output(path, e))
    }
}

/// Writes JSON to standard output as it is made (a `Value` copy of a
/// large snapshot would take several times its size), names escaped as
/// JSON `\uXXXX` where the shared escaping says so (see
/// [`turbowish_report::json`]). Failures are as for [`print`].
fn print_json(value: &impl serde::Serialize) -> Result<u8, Failure> {
    if STDOUT_CLOSED.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(Failure::output(
            Path::new("standard output"),
            std::io::Error::from_raw_os_error(libc::EBADF),
        ));
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let written = turbowish_report::json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            // What the buffer still holds goes nowhere: drop it unwritten.
            let _ = out.into_parts();
            Ok(0)
        }
        Err(e) => {
            let _ = out.into_parts();
            Err(Failure::output(Path::new("standard output"), e))
        }
    }
}

/// Writes text for a terminal to standard output: control characters
/// (other than line breaks and tabs) and bidirectional-text controls that
/// came in with names from the snapshot are shown escaped (`\u{1b}`) by
/// the shared escaping, so a snapshot cannot drive the terminal or reorder
/// what it shows.
fn print_text(text: &str) -> Result<u8, Failure> {
    print(printable_text(text).as_bytes())
}

/// One line on standard error, `turbowish: ` first. Messages carry text
/// from snapshots (a field's value, an executable's path) and paths from
/// the command line: every character the shared escaping names is shown
/// escaped, a line break too, so the message stays one line and drives
/// no terminal.
fn say(message: &str) {
    eprintln!("turbowish: {}", printable(message));
}

/// Writes to standard output. A pipe whose reader has left (`| head`) is
/// not an error: `head` users expect its lines and no complaint, so the
/// rest is dropped and the exit status is 0. A closed standard output
/// (`>&-`) or any other failure is exit status 1.
fn print(bytes: &[u8]) -> Result<u8, Failure> {
    if STDOUT_CLOSED.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(Failure::output(
            Path::new("standard output"),
            std::io::Error::from_raw_os_error(libc::EBADF),
        ));
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(0),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(Failure::output(Path::new("standard output"), e)),
    }
}
