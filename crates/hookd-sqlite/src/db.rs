//! SQLite connections, each owned by its own thread. A job is a closure run against a
//! connection, so a whole transaction costs async code one hand-off, however many statements
//! and rows it has (a driver that hands over every statement and row costs far more CPU than
//! SQLite itself on the hot paths). Jobs wait in the order they came, except a claim, which
//! goes before every waiting job ([`Turn::First`]): the dispatcher's slots wait on it, and it
//! is short, while an ingest commit ahead of it may take milliseconds.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hookd_core::store::{StoreError, StoreResult};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use tokio::sync::oneshot;

/// What the query modules return: SQLite's errors and the store's, both with `?`.
pub(crate) type DbResult<T> = Result<T, DbError>;

#[derive(Debug)]
pub(crate) enum DbError {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for DbError {
    fn from(err: rusqlite::Error) -> Self {
        Self::Sql(err)
    }
}

impl From<StoreError> for DbError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

impl From<serde_json::Error> for DbError {
    fn from(err: serde_json::Error) -> Self {
        Self::Store(StoreError::Other(Box::new(err)))
    }
}

impl From<DbError> for StoreError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Store(err) => err,
            DbError::Sql(rusqlite::Error::QueryReturnedNoRows) => StoreError::NotFound,
            DbError::Sql(rusqlite::Error::SqliteFailure(failure, detail))
                if matches!(
                    failure.code,
                    ErrorCode::DatabaseBusy
                        | ErrorCode::DatabaseLocked
                        | ErrorCode::CannotOpen
                        | ErrorCode::DiskFull
                        | ErrorCode::SystemIoFailure
                ) =>
            {
                StoreError::Unavailable(Box::new(rusqlite::Error::SqliteFailure(failure, detail)))
            }
            DbError::Sql(err) => StoreError::Other(Box::new(err)),
        }
    }
}

/// A job gets its connection, or the error that kept it from being readied.
type Job = Box<dyn FnOnce(DbResult<&mut Connection>) + Send>;

/// What a write transaction needs from `PRAGMA synchronous` when it commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// On disk before the commit returns (`FULL`): everything acknowledged to a caller.
    Full,
    /// In the operating system's hands when the commit returns, on disk at the next `Full`
    /// commit or checkpoint (`NORMAL`, which in WAL mode survives a crash of hookd, not of the
    /// machine). Only for what at-least-once delivery can lose: a lost claim is a lease that
    /// never existed, a lost result is an attempt made again.
    Relaxed,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Relaxed => "NORMAL",
        }
    }
}

/// Whether a job waits its turn or goes before every job waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// In the order jobs came.
    InLine,
    /// Before every job waiting in line (never before one already running): for a short job
    /// that a whole pipeline waits on, such as a claim.
    First,
}

/// A job waiting for a connection, with the durability its commits need.
struct Queued {
    job: Job,
    durability: Durability,
}

/// The jobs waiting for a connection: those going first, then the rest in the order they came.
#[derive(Default)]
struct Waiting {
    first: VecDeque<Queued>,
    in_line: VecDeque<Queued>,
    /// Set by [`Workers::stop`]: nothing more is taken, and the threads end once what waits is
    /// done.
    closed: bool,
}

/// One queue per kind of connection (the writer, the readers); its threads wait on `ready`.
#[derive(Default)]
struct Queue {
    waiting: Mutex<Waiting>,
    ready: Condvar,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `job`, or gives it back if the queue is closed.
    fn push(&self, job: Queued, turn: Turn) -> Result<(), Queued> {
        let mut waiting = self.lock();
        if waiting.closed {
            return Err(job);
        }
        match turn {
            Turn::First => waiting.first.push_back(job),
            Turn::InLine => waiting.in_line.push_back(job),
        }
        drop(waiting);
        self.ready.notify_one();
        Ok(())
    }

    /// The next job, waiting for one; `None` once closed and empty.
    fn pop(&self) -> Option<Queued> {
        let mut waiting = self.lock();
        loop {
            if let Some(job) = waiting.first.pop_front().or_else(|| waiting.in_line.pop_front()) {
                return Some(job);
            }
            if waiting.closed {
                return None;
            }
            waiting = self.ready.wait(waiting).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

/// Threads taking jobs from one queue, each with its own connection.
pub(crate) struct Workers {
    queue: Arc<Queue>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// Dropped without [`Workers::stop`] (a store never closed), the threads still end once what
/// waits is done, closing their connections.
impl Drop for Workers {
    fn drop(&mut self) {
        self.queue.close();
    }
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers").finish_non_exhaustive()
    }
}

impl Workers {
    fn start(name: &str, connections: Vec<Connection>) -> Self {
        let queue = Arc::new(Queue::default());
        let threads = connections
            .into_iter()
            .map(|mut conn| {
                let queue = queue.clone();
                std::thread::Builder::new()
                    .name(name.to_owned())
                    .spawn(move || {
                        // Every connection opens with `synchronous = FULL`.
                        let mut current = Durability::Full;
                        while let Some(Queued { job, durability }) = queue.pop() {
                            if durability == current {
                                job(Ok(&mut conn));
                            } else {
                                match conn.pragma_update(None, "synchronous", durability.pragma()) {
                                    Ok(()) => {
                                        current = durability;
                                        job(Ok(&mut conn));
                                    }
                                    Err(err) => job(Err(err.into())),
                                }
                            }
                        }
                    })
                    .expect("spawning a database thread")
            })
            .collect();
        Self {
            queue,
            threads: Mutex::new(threads),
        }
    }

    /// Runs `job` on one of the connections and returns what it returned.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> DbResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.run_with(Durability::Full, job).await
    }

    /// [`Workers::run`] with `durability` in effect for the job's commits.
    pub(crate) async fn run_with<T: Send + 'static>(
        &self,
        durability: Durability,
        job: impl FnOnce(&mut Connection) -> DbResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.run_in_turn(Turn::InLine, durability, job).await
    }

    /// [`Workers::run_with`], taking `turn`.
    pub(crate) async fn run_in_turn<T: Send + 'static>(
        &self,
        turn: Turn,
        durability: Durability,
        job: impl FnOnce(&mut Connection) -> DbResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let stopped = || StoreError::Unavailable("the database is closed".into());
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = reply.send(conn.and_then(job));
        });
        self.queue
            .push(Queued { job, durability }, turn)
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?.map_err(StoreError::from)
    }

    /// Lets the jobs already queued finish, then closes every connection.
    async fn stop(&self) {
        self.queue.close();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}

/// The writer (SQLite has one writer anyway; one connection never meets `SQLITE_BUSY` from
/// itself) and a few readers, in WAL mode with `synchronous = FULL`: a commit is on disk before
/// it returns, except the queue's own bookkeeping (see [`Durability::Relaxed`]).
#[derive(Debug)]
pub(crate) struct Db {
    pub(crate) writer: Workers,
    pub(crate) readers: Workers,
}

const READERS: usize = 3;

/// Schema versions in order; `PRAGMA user_version` holds the last one applied.
const MIGRATIONS: [&str; 10] = [
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_breaker_and_lanes.sql"),
    include_str!("../migrations/0003_retention.sql"),
    include_str!("../migrations/0004_failing_since.sql"),
    include_str!("../migrations/0005_lanes_by_webhook.sql"),
    include_str!("../migrations/0006_keys_and_health.sql"),
    include_str!("../migrations/0007_sources.sql"),
    include_str!("../migrations/0008_fleet.sql"),
    include_str!("../migrations/0009_presence.sql"),
    include_str!("../migrations/0010_dashboard.sql"),
];

impl Db {
    pub(crate) fn open(path: &Path) -> StoreResult<Self> {
        let mut writer = connect(path, false)?;
        migrate(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| connect(path, true))
            .collect::<DbResult<Vec<_>>>()?;
        Ok(Self {
            writer: Workers::start("hookd-sqlite-writer", vec![writer]),
            readers: Workers::start("hookd-sqlite-reader", readers),
        })
    }

    pub(crate) async fn close(&self) {
        self.readers.stop().await;
        self.writer.stop().await;
    }
}

fn connect(path: &Path, read_only: bool) -> DbResult<Connection> {
    let access = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    };
    let conn = Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    if !read_only {
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Other(format!("SQLite refused WAL mode (got {mode})").into()).into());
        }
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Applies the migrations the file has not seen. A file written by an earlier hookd (which
/// recorded them in sqlx's `_sqlx_migrations`) continues from what that table says.
fn migrate(conn: &mut Connection) -> DbResult<()> {
    let mut version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let sqlx_table: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        [],
        |row| row.get(0),
    )?;
    if version == 0 && sqlx_table {
        version = conn.query_row(
            "SELECT coalesce(max(version), 0) FROM _sqlx_migrations WHERE success",
            [],
            |row| row.get(0),
        )?;
    }
    let latest = MIGRATIONS.len() as i64;
    if version > latest {
        return Err(StoreError::Other(
            format!("the database has schema version {version}; this hookd knows up to {latest}; use a newer hookd")
                .into(),
        )
        .into());
    }
    for (number, sql) in (1..).zip(MIGRATIONS) {
        if number <= version {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", number)?;
        tx.commit()?;
        tracing::debug!(version = number, "applied a SQLite migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_or_unreachable_database_is_unavailable_and_other_failures_are_not() {
        let failure = |code: ErrorCode| {
            DbError::Sql(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error { code, extended_code: 0 },
                None,
            ))
        };
        for code in [
            ErrorCode::DatabaseBusy,
            ErrorCode::DatabaseLocked,
            ErrorCode::CannotOpen,
            ErrorCode::DiskFull,
            ErrorCode::SystemIoFailure,
        ] {
            assert!(
                matches!(StoreError::from(failure(code)), StoreError::Unavailable(_)),
                "{code:?}"
            );
        }
        assert!(matches!(
            StoreError::from(failure(ErrorCode::ConstraintViolation)),
            StoreError::Other(_)
        ));
        assert!(matches!(
            StoreError::from(DbError::Sql(rusqlite::Error::QueryReturnedNoRows)),
            StoreError::NotFound
        ));
    }

    async fn synchronous(db: &Db, durability: Durability) -> i64 {
        db.writer
            .run_with(durability, |conn| {
                Ok(conn.pragma_query_value(None, "synchronous", |row| row.get(0))?)
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_relaxed_job_never_leaves_the_writer_relaxed() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("hookd.db")).unwrap();
        const FULL: i64 = 2;
        const NORMAL: i64 = 1;
        assert_eq!(synchronous(&db, Durability::Full).await, FULL);
        assert_eq!(synchronous(&db, Durability::Relaxed).await, NORMAL);
        assert_eq!(synchronous(&db, Durability::Relaxed).await, NORMAL);
        assert_eq!(
            synchronous(&db, Durability::Full).await,
            FULL,
            "back to FULL for the next"
        );
        let plain = db
            .writer
            .run(|conn| Ok(conn.pragma_query_value(None, "synchronous", |row| row.get::<_, i64>(0))?))
            .await
            .unwrap();
        assert_eq!(plain, FULL, "run is durable");
        db.close().await;
    }

    #[tokio::test]
    async fn a_job_taking_the_first_turn_goes_before_every_job_waiting_in_line() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(&dir.path().join("hookd.db")).unwrap());
        let order = Arc::new(Mutex::new(Vec::new()));
        // Hold the writer until both jobs wait.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = oneshot::channel();
        let busy = tokio::spawn({
            let db = db.clone();
            async move {
                db.writer
                    .run(move |_| {
                        let _ = started.send(());
                        held.recv().unwrap();
                        Ok(())
                    })
                    .await
            }
        });
        running.await.unwrap();
        let job = |name: &'static str, turn: Turn| {
            let (db, order) = (db.clone(), order.clone());
            tokio::spawn(async move {
                db.writer
                    .run_in_turn(turn, Durability::Relaxed, move |_| {
                        order.lock().unwrap().push(name);
                        Ok(())
                    })
                    .await
            })
        };
        let in_line = job("in line", Turn::InLine);
        while db.writer.queue.lock().in_line.is_empty() {
            tokio::task::yield_now().await;
        }
        let first = job("first", Turn::First);
        while db.writer.queue.lock().first.is_empty() {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        for task in [busy, in_line, first] {
            task.await.unwrap().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["first", "in line"]);
        db.close().await;
    }

    #[tokio::test]
    async fn a_job_after_close_is_refused_and_the_jobs_waiting_at_close_still_run() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("hookd.db")).unwrap();
        let ran = db
            .writer
            .run(|conn| Ok(conn.execute("CREATE TABLE t (x INTEGER)", [])?));
        let (ran, ()) = tokio::join!(ran, db.close());
        ran.expect("queued before the close");
        let refused = db.writer.run(|_| Ok(())).await;
        assert!(matches!(refused, Err(StoreError::Unavailable(_))), "{refused:?}");
    }

    #[test]
    fn a_store_dropped_without_closing_ends_its_threads() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("hookd.db")).unwrap();
        let threads = std::mem::take(&mut *db.writer.threads.lock().unwrap());
        drop(db);
        let (ended, join) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for thread in threads {
                thread.join().unwrap();
            }
            let _ = ended.send(());
        });
        join.recv_timeout(Duration::from_secs(10))
            .expect("the writer thread ended");
    }
}
