//! The cluster-wide read model: every member answers for all open andons,
//! whichever partitions it owns.
//!
//! **The table.** A compacted topic (`topics.view`, default `andon.view`,
//! as many partitions as the inputs) holds the latest value per key
//! ([`record`] has the keys and values): `andon/<andon_id>` for each open
//! andon (a tombstone when it closes), `closed/<andon_id>` for each closed
//! one (its verdict, channel and completed steps), and `member/<id>` for
//! each member (its advertised URL, its partitions, its last hour of
//! counts for the charts). Partition p of the table is written by the
//! owner of input partition p, inside the batch transaction that writes
//! p's outputs and checkpoint ([`writer`]), so the table is exactly as
//! current as the outputs, and a crash or a failed batch rewrites it with
//! the replayed batch. Member records are written by each member itself,
//! outside transactions.
//!
//! **The model.** Every member runs a reader ([`reader`]) that consumes
//! all partitions of the table from the beginning and applies each record
//! to a [`Model`] in memory: open andons, off-sale subjects, the closed
//! andons of the last 30 days (for `/owners` and `/bad-pulls`), members,
//! recent events. `/andons`, `/andons/{id}`, `/recent`, `/owners`,
//! `/bad-pulls` and the status page answer from it; `andon_view_lag_seconds`
//! says how far behind it is.
//!
//! **Bounded.** On the topic: open andons are re-put by their owner at
//! least hourly (and after every assignment or failed batch), so a `compact,delete`
//! retention of 30 days drops only closed-andon records older than that and
//! members gone for good, never an open andon. In memory: open andons,
//! closed andons of 30 days (capped), members heard from in the last hour,
//! 100 recent events.
//!
//! **Live counts.** How close a subject is to a pull lives only in its
//! partition's owner; `/subjects/{kind}/{id}` asks the owner's engine
//! through [`Queries`] (answered by the processing loop each cycle) or,
//! when another member owns the partition, asks that member over HTTP at
//! the URL its member record advertises ([`remote`]).

mod member;
pub mod model;
pub mod partition;
mod reader;
pub mod record;
pub mod remote;
pub mod writer;

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard};

pub use model::Model;
pub use partition::Partitioner;
pub use writer::{table_records, TableRecord, TableWriter};

use crate::config::Settings;
use crate::engine::query::IssueCount;
use crate::engine::Engine;
use crate::ops::Status;

/// How long the view topic keeps a record that nobody re-puts: 30 days,
/// the history that `/owners` and `/bad-pulls` look back over.
pub const RETENTION_MS: &str = "2592000000";

/// This member, as others reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me {
    pub member: String,
    pub advertise: String,
}

/// The view as the rest of the process sees it.
#[derive(Debug)]
pub struct View {
    model: RwLock<Model>,
    /// Partitions of the view topic (0 until the reader has seen it).
    pub partitions: AtomicI32,
    /// How far behind the model is, in milliseconds (-1: not started).
    pub lag_ms: AtomicI64,
    /// The reader has reached the end of every partition at least once.
    pub caught_up: AtomicBool,
    pub me: OnceLock<Me>,
    /// How the inputs' producers place keys (`[kafka] input_partitioner`):
    /// which partition's owner `/subjects` asks.
    pub partitioner: OnceLock<Partitioner>,
    pub queries: Queries,
}

impl Default for View {
    fn default() -> Self {
        Self {
            model: RwLock::default(),
            partitions: AtomicI32::new(0),
            lag_ms: AtomicI64::new(-1),
            caught_up: AtomicBool::new(false),
            me: OnceLock::new(),
            partitioner: OnceLock::new(),
            queries: Queries::default(),
        }
    }
}

impl View {
    pub fn model(&self) -> RwLockReadGuard<'_, Model> {
        self.model.read().unwrap_or_else(|e| e.into_inner())
    }

    fn model_mut(&self) -> std::sync::RwLockWriteGuard<'_, Model> {
        self.model.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Starts the reader and this member's publisher (threads that live as
/// long as the process).
pub fn start(settings: Arc<Settings>, status: Arc<Status>, me: Me) -> std::io::Result<()> {
    let _ = status.view.me.set(me.clone());
    let _ = status.view.partitioner.set(settings.kafka.input_partitioner);
    let (s, st) = (settings.clone(), status.clone());
    std::thread::Builder::new().name("view-reader".into()).spawn(move || reader::run(&s, &st))?;
    std::thread::Builder::new().name("view-member".into()).spawn(move || member::run(&settings, &status, &me))?;
    Ok(())
}

/// The member id: `group.instance.id` when set (stable across restarts),
/// else host name and process id.
pub fn member_id(settings: &Settings) -> String {
    if let Some(id) = settings.kafka.properties.get("group.instance.id") {
        return id.clone();
    }
    format!("{}-{}", hostname(), std::process::id())
}

pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|s| s.trim().to_owned()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// `http.advertise`, or derived from the address bound: its IP, or the host
/// name when it listens on all interfaces.
pub fn advertise(settings: &Settings, bound: std::net::SocketAddr) -> String {
    if !settings.http.advertise.is_empty() {
        return settings.http.advertise.clone();
    }
    let scheme = settings.http.scheme();
    if bound.ip().is_unspecified() {
        format!("{scheme}://{}:{}", hostname(), bound.port())
    } else {
        format!("{scheme}://{bound}")
    }
}

/// A question for the processing loop: the live counts of a subject, if
/// this member owns its partition.
pub struct Query {
    pub subject_key: String,
    pub partition: i32,
    reply: tokio::sync::oneshot::Sender<Option<Vec<IssueCount>>>,
}

/// Questions waiting for the processing loop.
#[derive(Default)]
pub struct Queries {
    pending: Mutex<Vec<Query>>,
}

impl std::fmt::Debug for Queries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Queries")
    }
}

impl Queries {
    /// Asks; the answer is `None` when the loop does not own the partition.
    pub fn ask(&self, subject_key: &str, partition: i32) -> tokio::sync::oneshot::Receiver<Option<Vec<IssueCount>>> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).push(Query {
            subject_key: subject_key.to_owned(),
            partition,
            reply,
        });
        rx
    }

    /// **Processor hook**, once per turn of the processing loop: answers
    /// every waiting question from the engine of the partition, if owned.
    pub fn answer<'e>(&self, engine_of: impl Fn(i32) -> Option<&'e Engine>) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        for q in pending {
            let counts = engine_of(q.partition).map(|e| e.issue_counts(&q.subject_key));
            let _ = q.reply.send(counts);
        }
    }
}
