//! `POST /complaints` and `POST /updates`: the inputs over HTTP, for the
//! CRMs and ticket systems that speak webhooks rather than Kafka.
//!
//! A request carries one JSON record, or many as NDJSON (one per line,
//! `Content-Type: application/x-ndjson`). Every record is checked by the
//! same decoders as the topics' records (and against `max_future_skew`,
//! with now as its timestamp) before any is written: one bad record is a
//! `400` naming the reason the DLQ would have given, and nothing is
//! written. The good ones are produced idempotently to the input topic,
//! keyed by subject key, on the partition `[kafka] input_partitioner`
//! gives; `202` comes only once the broker has acknowledged every one,
//! with each subject's standing. What the topics cannot take now (more
//! than `http.ingress_max_pending` records in flight, librdkafka's queue
//! full, a delivery that failed) is a `503` with `Retry-After`: the caller
//! sends again, and a record sent twice is one record to the engine (it
//! drops a complaint's repeated `event_id` and an update's repeated
//! `update_id`). What only the engine's state can judge (an update to an
//! andon that does not exist, a step out of order) is accepted here and
//! goes to the DLQ, as from the topic. Posting needs the role `report`
//! (complaints) or `update` (updates): the [`Require`] extractor, behind
//! the authentication middleware.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};

use crate::config::Settings;
use crate::event::format_timestamp;
use crate::event::{decode_complaint, decode_update, Reject, RejectReason};
use crate::kafka::processor::wall_clock;
use crate::ops::auth::{role, Require};
use crate::ops::status::Status;
use crate::time::Ts;

/// What a caller is told to wait before sending again.
const RETRY_AFTER_SECONDS: u64 = 1;

/// The ingress: its producer and what it needs of the settings.
#[derive(Clone)]
pub struct Ingress {
    /// Made at the first request: an instance nobody posts to keeps no
    /// producer (its threads and broker connections) for nothing.
    producer: Arc<std::sync::OnceLock<Result<FutureProducer, String>>>,
    settings: Arc<Settings>,
    status: Arc<Status>,
    /// Records handed to the producer and not yet acknowledged or failed.
    pending: Arc<AtomicUsize>,
}

/// Which input a request writes.
#[derive(Clone, Copy)]
enum Input {
    Complaints,
    Updates,
}

/// A record that decoded: its subject key, its id and its bytes.
struct Checked<'a> {
    key: String,
    id: String,
    value: &'a [u8],
}

impl Ingress {
    /// The ingress; its producer is made at the first request.
    pub fn new(settings: Arc<Settings>, status: Arc<Status>) -> Self {
        Self { producer: Arc::default(), settings, status, pending: Arc::new(AtomicUsize::new(0)) }
    }

    fn producer(&self) -> Result<&FutureProducer, String> {
        self.producer
            .get_or_init(|| {
                crate::kafka::client::ingress_producer(&self.settings)
                    .create()
                    .map_err(|e| format!("the ingress's producer: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// `POST /complaints` and `POST /updates`.
    pub fn router(self) -> Router {
        Router::new().route("/complaints", post(complaints)).route("/updates", post(updates)).with_state(self)
    }

    fn topic(&self, input: Input) -> &str {
        match input {
            Input::Complaints => &self.settings.topics.complaints,
            Input::Updates => &self.settings.topics.work_order_updates,
        }
    }

    /// Checks one record as the processor would: the decoder, then the
    /// future skew against now (the timestamp its record will carry).
    fn check<'a>(&self, input: Input, value: &'a [u8], now: Ts) -> Result<Checked<'a>, Reject> {
        let max = self.settings.processing.max_event_bytes;
        let (key, id, field, at) = match input {
            Input::Complaints => {
                let c = decode_complaint(value, max)?;
                (c.subject_key, c.event_id, "occurred_at", c.occurred_at)
            }
            Input::Updates => {
                let u = decode_update(value, max)?;
                (u.subject_key().to_owned(), u.update_id, "at", u.at)
            }
        };
        let skew = self.settings.processing.max_future_skew;
        if at > now + skew {
            return Err(Reject::new(
                RejectReason::OccurredAtInFuture,
                format!(
                    "{field}: {} is more than max_future_skew after now ({})",
                    format_timestamp(at),
                    format_timestamp(now)
                ),
            ));
        }
        Ok(Checked { key, id, value })
    }

    async fn accept(&self, input: Input, headers: &HeaderMap, body: &[u8]) -> Response {
        let records = match split(headers, body) {
            Ok(r) => r,
            Err(message) => return bad(RejectReason::InvalidJson, message, None),
        };
        let now = wall_clock();
        let mut checked = Vec::with_capacity(records.len());
        for (line, value) in records {
            match self.check(input, value, now) {
                Ok(c) => checked.push(c),
                Err(r) => return bad(r.reason, r.message, line),
            }
        }
        let limit = self.settings.http.ingress_max_pending;
        let n = checked.len();
        if self.pending.fetch_add(n, Ordering::SeqCst) + n > limit {
            self.pending.fetch_sub(n, Ordering::SeqCst);
            return busy(format!(
                "more than http.ingress_max_pending ({limit}) records are on their way to the topics"
            ));
        }
        let result = self.produce(input, &checked).await;
        self.pending.fetch_sub(n, Ordering::SeqCst);
        match result {
            Ok(written) => (StatusCode::ACCEPTED, Json(self.answer(&checked, written))).into_response(),
            Err(e) => busy(e),
        }
    }

    /// Hands every record to the producer, then waits for each
    /// acknowledgement: (partition, offset) per record, or why not.
    async fn produce(&self, input: Input, records: &[Checked<'_>]) -> Result<Vec<(i32, i64)>, String> {
        let topic = self.topic(input);
        let producer = self.producer()?;
        let mut deliveries = Vec::with_capacity(records.len());
        for r in records {
            let record = FutureRecord::to(topic).key(r.key.as_str()).payload(r.value);
            match producer.send_result(record) {
                Ok(d) => deliveries.push(d),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    // Those already queued are still written: a caller that
                    // sends again repeats ids the engine drops.
                    return Err("the producer's queue is full".into());
                }
                Err((e, _)) => return Err(format!("producing to {topic}: {e}")),
            }
        }
        let mut written = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            match d.await {
                Ok(Ok(delivery)) => written.push((delivery.partition, delivery.offset)),
                Ok(Err((e, _))) => return Err(format!("{topic}: not acknowledged: {e}")),
                Err(_) => return Err(format!("{topic}: the producer went away")),
            }
        }
        Ok(written)
    }

    /// What the caller learns: where each record went, and the standing
    /// of each subject named (off sale, its open andons) as the view knows
    /// it now, before these records are processed.
    fn answer(&self, records: &[Checked<'_>], written: Vec<(i32, i64)>) -> Value {
        let now = wall_clock();
        let model = self.status.view.model();
        let mut subjects = serde_json::Map::new();
        for r in records {
            if !subjects.contains_key(&r.key) {
                let standing = json!({
                    "off_sale": model.off_sale(&r.key),
                    "open_andons": model.subject_andons(&r.key, now),
                });
                subjects.insert(r.key.clone(), standing);
            }
        }
        let written: Vec<Value> = records
            .iter()
            .zip(written)
            .map(|(r, (partition, offset))| json!({"id": r.id, "subject_key": r.key, "partition": partition, "offset": offset}))
            .collect();
        json!({"accepted": written.len(), "records": written, "subjects": subjects})
    }
}

async fn complaints(
    _: Require<role::Report>,
    State(ingress): State<Ingress>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    ingress.accept(Input::Complaints, &headers, &body).await
}

async fn updates(
    _: Require<role::Update>,
    State(ingress): State<Ingress>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    ingress.accept(Input::Updates, &headers, &body).await
}

/// A record of a request's body, with its line (NDJSON).
type Line<'a> = (Option<usize>, &'a [u8]);

/// The records of a body: the whole body, or with an NDJSON content type
/// each non-blank line (numbered from 1, for the error).
fn split<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<Vec<Line<'a>>, String> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let lines = matches!(mime.as_str(), "application/x-ndjson" | "application/jsonl" | "application/jsonlines");
    let records: Vec<Line<'a>> = if lines {
        body.split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, l)| !l.trim_ascii().is_empty())
            .map(|(i, l)| (Some(i + 1), l.trim_ascii()))
            .collect()
    } else if body.trim_ascii().is_empty() {
        Vec::new()
    } else {
        vec![(None, body)]
    };
    if records.is_empty() {
        return Err("the body holds no record".into());
    }
    Ok(records)
}

fn bad(reason: RejectReason, message: String, line: Option<usize>) -> Response {
    let mut body = json!({"error": reason.as_str(), "message": message, "written": 0});
    if let Some(line) = line {
        body["line"] = json!(line);
    }
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

fn busy(message: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string())],
        Json(json!({"error": "try_again", "message": message})),
    )
        .into_response()
}
