//! The budget watcher: when a task passes its memory budget, or the process
//! passes a live-bytes limit or grows too fast, write a snapshot (as
//! `SIGUSR1` would) and tell the program.
//!
//! The allocator does the checking (see `turbowish_alloc::budget`): never
//! per allocation, only where it folds counts together, and a crossing
//! only unparks this module's thread. Everything that costs (reading the
//! counters, the snapshot, the callback) happens on that thread.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::snapshot_file::{SnapshotDir, SnapshotError};

/// The process-wide live-bytes limit, e.g. `8GiB` or `500MB` (see
/// [`Budgets::from_env`]).
pub const LIVE_LIMIT_ENV: &str = "TURBOWISH_LIVE_LIMIT";
/// The growth limit, `PERCENT%/WINDOW`, e.g. `50%/60s`.
pub const GROWTH_LIMIT_ENV: &str = "TURBOWISH_GROWTH_LIMIT";
/// The least time between two budget snapshots, e.g. `60s` or `5m`.
pub const BUDGET_INTERVAL_ENV: &str = "TURBOWISH_BUDGET_INTERVAL";

/// The default least time between two budget snapshots.
pub const DEFAULT_BUDGET_INTERVAL: Duration = Duration::from_secs(60);

/// What a program is told when a budget or limit is crossed.
pub type BudgetCallback = Arc<dyn Fn(&BudgetEvent) + Send + Sync>;

/// Configuration of the budget watcher: process-wide limits, where its
/// snapshots go, how often it may write one, and a callback. Per-task
/// budgets are set where the task is spawned
/// (`turbowish::trace::task::Builder::budget`) and are served by the same
/// watcher.
///
/// ```
/// use std::time::Duration;
///
/// let watcher = turbowish_capture::Budgets::new()
///     .dir(std::env::temp_dir())
///     .live_limit(8 << 30)
///     .growth_limit(50, Duration::from_secs(60))
///     .min_interval(Duration::from_secs(300))
///     .on_crossing(|event| eprintln!("over budget: {event}"))
///     .install()?;
/// assert_eq!(watcher.events(), 0);
/// # Ok::<(), turbowish_capture::SnapshotError>(())
/// ```
#[derive(Clone, Default)]
pub struct Budgets {
    dir: Option<PathBuf>,
    live_limit: Option<u64>,
    growth: Option<(u32, Duration)>,
    min_interval: Option<Duration>,
    callback: Option<BudgetCallback>,
}

impl std::fmt::Debug for Budgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budgets")
            .field("dir", &self.dir)
            .field("live_limit", &self.live_limit)
            .field("growth", &self.growth)
            .field("min_interval", &self.min_interval)
            .field("callback", &self.callback.is_some())
            .finish()
    }
}

impl Budgets {
    /// No process-wide limit, snapshots to `$TURBOWISH_DIR` (else the
    /// current directory), at most one every [`DEFAULT_BUDGET_INTERVAL`].
    pub fn new() -> Budgets {
        Budgets::default()
    }

    /// [`Budgets::new`] with the limits given by [`LIVE_LIMIT_ENV`],
    /// [`GROWTH_LIMIT_ENV`] and [`BUDGET_INTERVAL_ENV`] where they are set.
    /// A value that does not parse is an error naming the variable.
    pub fn from_env() -> Result<Budgets, SnapshotError> {
        Budgets::from_lookup(env)
    }

    /// [`Budgets::from_env`] over any source of variables.
    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Budgets, SnapshotError> {
        let mut budgets = Budgets::new();
        if let Some(value) = get(LIVE_LIMIT_ENV) {
            budgets.live_limit = Some(
                parse_bytes(&value)
                    .ok_or_else(|| bad_env(LIVE_LIMIT_ENV, &value, "a size such as 8GiB"))?,
            );
        }
        if let Some(value) = get(GROWTH_LIMIT_ENV) {
            budgets.growth = Some(parse_growth(&value).ok_or_else(|| {
                bad_env(GROWTH_LIMIT_ENV, &value, "PERCENT%/WINDOW, such as 50%/60s")
            })?);
        }
        if let Some(value) = get(BUDGET_INTERVAL_ENV) {
            budgets.min_interval =
                Some(parse_duration(&value).ok_or_else(|| {
                    bad_env(BUDGET_INTERVAL_ENV, &value, "a duration such as 60s")
                })?);
        }
        Ok(budgets)
    }

    /// Whether any of the environment variables [`Budgets::from_env`] reads
    /// is set.
    pub fn env_is_set() -> bool {
        [LIVE_LIMIT_ENV, GROWTH_LIMIT_ENV, BUDGET_INTERVAL_ENV]
            .iter()
            .any(|v| env(v).is_some())
    }

    /// Writes snapshots to `dir` (made absolute at install).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Budgets {
        self.dir = Some(dir.into());
        self
    }

    /// Fires when the process's live bytes first pass `bytes` (and again
    /// after dropping back to it or below).
    pub fn live_limit(mut self, bytes: u64) -> Budgets {
        self.live_limit = Some(bytes);
        self
    }

    /// Fires when live bytes grow by more than `percent` % of what they were
    /// at the start of a `window` (windows follow one another from
    /// install; the level is read afresh at each start).
    pub fn growth_limit(mut self, percent: u32, window: Duration) -> Budgets {
        self.growth = Some((percent, window.max(Duration::from_millis(1))));
        self
    }

    /// Writes at most one snapshot per `interval`; crossings within it are
    /// still passed to the callback, marked [`BudgetEvent::rate_limited`].
    pub fn min_interval(mut self, interval: Duration) -> Budgets {
        self.min_interval = Some(interval);
        self
    }

    /// Calls `callback` on the watcher thread for every crossing, after its
    /// snapshot is written. A panic in it is caught and reported on
    /// standard error; the watcher goes on.
    pub fn on_crossing(
        mut self,
        callback: impl Fn(&BudgetEvent) + Send + Sync + 'static,
    ) -> Budgets {
        self.callback = Some(Arc::new(callback));
        self
    }

    /// Starts the watcher thread, or reconfigures the running one (there is
    /// one per process; installing again replaces the limits, directory,
    /// interval and callback, and keeps the counts).
    pub fn install(self) -> Result<BudgetHandle, SnapshotError> {
        let _internal = turbowish_alloc::internal();
        let dir = crate::snapshot_file::resolve_dir(self.dir.clone())?;
        let config = Config {
            dir: Arc::new(SnapshotDir::open(dir)?),
            live_limit: self.live_limit,
            growth: self.growth,
            min_interval: self.min_interval.unwrap_or(DEFAULT_BUDGET_INTERVAL),
            callback: self.callback,
        };
        let mut watcher = lock(&WATCHER);
        let watcher = match &mut *watcher {
            Some(w) => {
                lock(&w.state).config = config;
                w.clone()
            }
            None => {
                let w = Arc::new(Watcher {
                    state: Mutex::new(State {
                        config,
                        events: 0,
                        snapshots: 0,
                        last_snapshot: None,
                        window: None,
                    }),
                    changed: std::sync::Condvar::new(),
                });
                let thread_watcher = w.clone();
                let (started, wait_started) = std::sync::mpsc::sync_channel(1);
                let thread = std::thread::Builder::new()
                    .name("turbowish-budget".to_owned())
                    .spawn(move || {
                        let _internal = turbowish_alloc::internal();
                        let _ = started.send(());
                        drop(started);
                        run(&thread_watcher)
                    })
                    .map_err(|source| SnapshotError::Thread { source })?;
                // What a new thread allocates as it starts is charged to
                // `main`: let that happen now, not during the caller's next
                // measurement.
                let _ = wait_started.recv();
                turbowish_alloc::budget::set_watcher(thread.thread().clone());
                *watcher = Some(w.clone());
                w
            }
        };
        // Limits are set after the watcher can be woken, so no crossing is
        // lost; the first growth window starts now.
        {
            let mut state = lock(&watcher.state);
            turbowish_alloc::budget::set_live_limit(state.config.live_limit);
            state.window = state.config.growth.map(|(percent, _)| {
                let level = turbowish_alloc::stats().total.live_bytes;
                turbowish_alloc::budget::set_growth_limit(Some(grown(level, percent).max(1)));
                (Instant::now(), level)
            });
            if state.window.is_none() {
                turbowish_alloc::budget::set_growth_limit(None);
            }
        }
        wake();
        Ok(BudgetHandle { watcher })
    }
}

/// A crossing, as passed to the callback of [`Budgets::on_crossing`].
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetEvent {
    /// What was crossed.
    pub trigger: BudgetTrigger,
    /// The live bytes it was crossed with: the task's, or the process's.
    pub live_bytes: u64,
    /// The limit crossed, in bytes.
    pub limit: u64,
    /// The snapshot written for it; `None` if none was (rate-limited, or
    /// the write failed).
    pub snapshot: Option<PathBuf>,
    /// Whether the snapshot was skipped because one was written less than
    /// the interval ago.
    pub rate_limited: bool,
}

/// What a [`BudgetEvent`] crossed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetTrigger {
    /// A task's budget.
    Task {
        /// The task's TurboWish id.
        id: u64,
        /// Its name.
        name: String,
        /// Where it was spawned (`file:line:column`).
        location: String,
    },
    /// The process-wide live-bytes limit.
    LiveLimit,
    /// The growth limit.
    Growth {
        /// Live bytes at the start of the window.
        from_bytes: u64,
        /// The allowed growth, in percent.
        percent: u32,
        /// The window.
        window: Duration,
    },
}

impl std::fmt::Display for BudgetEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.trigger {
            BudgetTrigger::Task { id, name, .. } => write!(
                f,
                "task {name:?} (#{id}) has {} live bytes, over its budget of {}",
                self.live_bytes, self.limit
            )?,
            BudgetTrigger::LiveLimit => write!(
                f,
                "the process has {} live bytes, over the limit of {}",
                self.live_bytes, self.limit
            )?,
            BudgetTrigger::Growth {
                from_bytes,
                percent,
                window,
            } => write!(
                f,
                "live bytes grew from {from_bytes} to {} within {:?}, more than {percent} %",
                self.live_bytes, window
            )?,
        }
        match &self.snapshot {
            Some(path) => write!(f, "; snapshot {}", path.display()),
            None if self.rate_limited => f.write_str("; no snapshot (one was written recently)"),
            None => f.write_str("; no snapshot (the write failed)"),
        }
    }
}

/// The running budget watcher: counts of what it has done.
#[derive(Debug, Clone)]
pub struct BudgetHandle {
    watcher: Arc<Watcher>,
}

impl BudgetHandle {
    /// Crossings served so far (each one callback).
    pub fn events(&self) -> u64 {
        lock(&self.watcher.state).events
    }

    /// Snapshots written for crossings so far.
    pub fn snapshots_written(&self) -> u64 {
        lock(&self.watcher.state).snapshots
    }

    /// Waits until more than `events` crossings have been served, or
    /// `timeout` passes; returns the count then.
    pub fn wait_for_events(&self, events: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.watcher.state);
        while state.events <= events {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            state = self
                .watcher
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.events
    }
}

/// The one watcher of the process, once started.
static WATCHER: Mutex<Option<Arc<Watcher>>> = Mutex::new(None);

#[derive(Debug)]
struct Watcher {
    state: Mutex<State>,
    changed: std::sync::Condvar,
}

struct State {
    config: Config,
    events: u64,
    snapshots: u64,
    last_snapshot: Option<Instant>,
    /// The growth window in progress: when it started, at what level.
    window: Option<(Instant, u64)>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("events", &self.events)
            .field("snapshots", &self.snapshots)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Config {
    /// Opened at install, as the signal trigger's directory is.
    dir: Arc<SnapshotDir>,
    live_limit: Option<u64>,
    growth: Option<(u32, Duration)>,
    min_interval: Duration,
    callback: Option<BudgetCallback>,
}

/// The watcher thread: parked until a crossing unparks it (or, with a
/// growth limit, until the window ends).
fn run(watcher: &Watcher) {
    let _internal = turbowish_alloc::internal();
    loop {
        let park_for = next_window(watcher);
        match park_for {
            Some(d) => std::thread::park_timeout(d),
            None => std::thread::park(),
        }
        serve(watcher);
    }
}

/// Starts a growth window if one is due; returns how long to park.
fn next_window(watcher: &Watcher) -> Option<Duration> {
    let mut state = lock(&watcher.state);
    let (percent, window) = state.config.growth?;
    let now = Instant::now();
    let due = state.window.is_none_or(|(start, _)| now >= start + window);
    if due {
        let level = turbowish_alloc::stats().total.live_bytes;
        let limit = grown(level, percent);
        turbowish_alloc::budget::set_growth_limit(Some(limit.max(1)));
        state.window = Some((now, level));
        return Some(window);
    }
    state
        .window
        .map(|(start, _)| (start + window).saturating_duration_since(now))
}

fn serve(watcher: &Watcher) {
    let mut found = Vec::new();
    let config = lock(&watcher.state).config.clone();
    let live = || turbowish_alloc::stats().total.live_bytes;
    if turbowish_alloc::budget::take_live_limit_crossed() {
        if let Some(limit) = turbowish_alloc::budget::live_limit() {
            found.push((BudgetTrigger::LiveLimit, live(), limit));
        }
    }
    if turbowish_alloc::budget::take_growth_limit_crossed() {
        let window = lock(&watcher.state).window;
        if let (Some((percent, length)), Some((_, from))) = (config.growth, window) {
            let limit = grown(from, percent);
            let trigger = BudgetTrigger::Growth {
                from_bytes: from,
                percent,
                window: length,
            };
            found.push((trigger, live(), limit));
        }
    }
    for c in turbowish_trace::task::take_budget_crossings() {
        let trigger = BudgetTrigger::Task {
            id: c.id,
            name: c.name,
            location: c.location.to_string(),
        };
        found.push((trigger, c.memory.live_bytes, c.budget));
    }
    for (trigger, live_bytes, limit) in found {
        let event = serve_one(watcher, &config, trigger, live_bytes, limit);
        if let Some(callback) = &config.callback {
            let call = std::panic::AssertUnwindSafe(|| callback(&event));
            if std::panic::catch_unwind(call).is_err() {
                crate::signal::report_line("turbowish: the budget callback panicked");
            }
        }
        lock(&watcher.state).events += 1;
        watcher.changed.notify_all();
    }
}

/// The snapshot for one crossing, unless one was written within the
/// interval.
fn serve_one(
    watcher: &Watcher,
    config: &Config,
    trigger: BudgetTrigger,
    live_bytes: u64,
    limit: u64,
) -> BudgetEvent {
    let now = Instant::now();
    let recent = lock(&watcher.state)
        .last_snapshot
        .is_some_and(|at| now < at + config.min_interval);
    let mut event = BudgetEvent {
        trigger,
        live_bytes,
        limit,
        snapshot: None,
        rate_limited: recent,
    };
    if recent {
        return event;
    }
    lock(&watcher.state).last_snapshot = Some(now);
    match config.dir.write_snapshot() {
        Ok(path) => {
            lock(&watcher.state).snapshots += 1;
            event.snapshot = Some(path);
        }
        Err(e) => crate::signal::report_line(&format!("turbowish: budget snapshot failed: {e}")),
    }
    event
}

fn wake() {
    turbowish_alloc::budget::wake_watcher();
}

fn env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

fn bad_env(var: &'static str, value: &str, expected: &'static str) -> SnapshotError {
    SnapshotError::Config {
        var,
        value: value.to_owned(),
        expected,
    }
}

/// `1048576`, `512KiB`, `500MB`, `8G` (K, M, G, T are powers of 1024 with
/// or without `iB`; `KB`, `MB`, ... are powers of 1000).
fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        _ => return None,
    };
    n.checked_mul(scale).filter(|&b| b > 0)
}

/// `500ms`, `60s`, `5m`, `1h`.
fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let ms = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    n.checked_mul(ms).map(Duration::from_millis)
}

/// `50%/60s`.
fn parse_growth(s: &str) -> Option<(u32, Duration)> {
    let (percent, window) = s.trim().split_once('/')?;
    let percent: u32 = percent.trim().strip_suffix('%')?.trim().parse().ok()?;
    let window = parse_duration(window).filter(|w| !w.is_zero())?;
    Some((percent, window))
}

/// `level` plus `percent` % of it.
fn grown(level: u64, percent: u32) -> u64 {
    let grown = u128::from(level) * (100 + u128::from(percent)) / 100;
    u64::try_from(grown).unwrap_or(u64::MAX)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_durations_and_growth_parse() {
        assert_eq!(parse_bytes("1048576"), Some(1 << 20));
        assert_eq!(parse_bytes("512KiB"), Some(512 << 10));
        assert_eq!(parse_bytes("8G"), Some(8 << 30));
        assert_eq!(parse_bytes("500MB"), Some(500_000_000));
        assert_eq!(parse_bytes("0"), None);
        assert_eq!(parse_bytes("12 parsecs"), None);
        assert_eq!(parse_bytes("99999999999T"), None);
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_growth("50%/60s"), Some((50, Duration::from_secs(60))));
        assert_eq!(parse_growth("50/60s"), None);
        assert_eq!(parse_growth("50%/0s"), None);
    }

    #[test]
    fn a_bad_variable_is_named_in_the_error() {
        let vars = |var: &str| match var {
            LIVE_LIMIT_ENV => Some("8GiB".to_owned()),
            GROWTH_LIMIT_ENV => Some("lots\u{1b}[2J".to_owned()),
            _ => None,
        };
        let error = Budgets::from_lookup(vars).unwrap_err();
        assert_eq!(
            error.to_string(),
            "TURBOWISH_GROWTH_LIMIT=\"lots\\u{1b}[2J\": expected PERCENT%/WINDOW, such as 50%/60s"
        );
        let good = |var: &str| (var == GROWTH_LIMIT_ENV).then(|| "25%/5m".to_owned());
        let budgets = Budgets::from_lookup(good).unwrap();
        assert_eq!(budgets.growth, Some((25, Duration::from_secs(300))));
        assert_eq!(budgets.live_limit, None);
    }
}
