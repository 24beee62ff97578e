//! This member's own record in the view topic (`member/<id>`): where it is
//! reached (`http.advertise`), which partitions it owns, and its last hour
//! in buckets of 10 s (complaints processed, pulls, open and overdue
//! andons of its partitions) for the cluster-wide charts. Published when
//! its partitions change and every 10 s, with a small producer of its own,
//! outside the processor's transactions.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use prometheus::core::Collector;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, ProducerContext};
use rdkafka::ClientContext;

use super::record::{member_key, MemberRecord, Series, BUCKETS, BUCKET_SECONDS};
use super::Me;
use crate::config::Settings;
use crate::kafka::client;
use crate::ops::Status;
use crate::time::Ts;

const PUBLISH_EVERY: Duration = Duration::from_secs(10);

pub fn run(settings: &Settings, status: &Status, me: &Me) {
    let producer: BaseProducer<Quiet> = match client::producer(settings, false)
        .set("linger.ms", "0")
        .create_with_context(Quiet)
    {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "view: cannot create the member record producer; this member stays unlisted");
            return;
        }
    };
    let mut ring = Ring::default();
    let mut last = Totals::default();
    let mut published: Option<(Instant, Vec<i32>)> = None;
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let now = crate::kafka::processor::wall_clock();
        let partitions = status.partitions();
        let totals = Totals::of(status);
        let (open, overdue) = status.view.model().open_in(&partitions, now);
        ring.sample(
            now,
            totals.complaints.saturating_sub(last.complaints),
            totals.pulls.saturating_sub(last.pulls),
            open,
            overdue,
        );
        last = totals;
        let due = match &published {
            None => true,
            Some((at, p)) => at.elapsed() >= PUBLISH_EVERY || *p != partitions,
        };
        if due {
            let record = MemberRecord {
                member: me.member.clone(),
                advertise: me.advertise.clone(),
                partitions: partitions.clone(),
                updated_at: now,
                series: ring.series(),
            };
            let key = member_key(&me.member);
            let value = serde_json::to_vec(&record).unwrap_or_default();
            match producer.send(BaseRecord::to(&settings.topics.view).key(&key).payload(&value)) {
                Ok(()) => published = Some((Instant::now(), partitions)),
                Err((e, _)) => tracing::debug!(error = %e, "view: member record not sent; retrying"),
            }
        }
        producer.poll(Duration::ZERO);
    }
}

/// librdkafka's log into `tracing`; a failed delivery is retried by the
/// next record (every record says everything), so it is only noted.
struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        client::log(level, fac, log_message);
    }
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        client::error(error, reason);
    }
}

impl ProducerContext for Quiet {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = r {
            tracing::debug!(error = %e, "view: member record not delivered");
        }
    }
}

/// Counters of this process since it started.
#[derive(Default)]
struct Totals {
    complaints: u64,
    pulls: u64,
}

impl Totals {
    fn of(status: &Status) -> Self {
        let Some(m) = status.metrics() else { return Self::default() };
        let sum = |c: &prometheus::IntCounterVec| -> u64 {
            c.collect().iter().flat_map(|f| f.get_metric()).map(|m| m.get_counter().get_value() as u64).sum()
        };
        Totals { complaints: sum(&m.complaints), pulls: sum(&m.pulls) }
    }
}

/// The last hour in buckets; counters add up within a bucket, gauges keep
/// their last sample.
#[derive(Default)]
struct Ring {
    first_bucket: i64,
    complaints: VecDeque<u64>,
    pulls: VecDeque<u64>,
    open: VecDeque<u64>,
    overdue: VecDeque<u64>,
}

impl Ring {
    fn sample(&mut self, now: Ts, complaints: u64, pulls: u64, open: u64, overdue: u64) {
        let b = (now - Ts::EPOCH).as_secs() / BUCKET_SECONDS;
        if self.complaints.is_empty() {
            self.first_bucket = b;
        }
        while self.first_bucket + (self.complaints.len() as i64) <= b {
            self.complaints.push_back(0);
            self.pulls.push_back(0);
            self.open.push_back(open);
            self.overdue.push_back(overdue);
        }
        while self.complaints.len() > BUCKETS {
            self.complaints.pop_front();
            self.pulls.pop_front();
            self.open.pop_front();
            self.overdue.pop_front();
            self.first_bucket += 1;
        }
        let i = self.complaints.len() - 1;
        self.complaints[i] += complaints;
        self.pulls[i] += pulls;
        self.open[i] = open;
        self.overdue[i] = overdue;
    }

    fn series(&self) -> Series {
        Series {
            first_bucket: self.first_bucket,
            complaints: self.complaints.iter().copied().collect(),
            pulls: self.pulls.iter().copied().collect(),
            open: self.open.iter().copied().collect(),
            overdue: self.overdue.iter().copied().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{Dur, Ts};

    #[test]
    fn the_ring_keeps_an_hour_of_buckets() {
        let mut r = Ring::default();
        let t = Ts::from_nanos(1_780_000_000 * 1_000_000_000);
        const S: Dur = Dur::SECOND;
        r.sample(t, 5, 1, 3, 0);
        r.sample(t + S, 2, 0, 4, 1);
        let s = r.series();
        assert_eq!(
            (s.complaints.clone(), s.pulls.clone(), s.open.clone(), s.overdue.clone()),
            (vec![7], vec![1], vec![4], vec![1])
        );
        r.sample(t + 35 * S, 1, 0, 2, 0);
        let s = r.series();
        assert_eq!(s.complaints.len(), 4, "three buckets later");
        assert_eq!((s.complaints[3], s.open[1]), (1, 2), "gaps carry the gauge sampled after them");
        r.sample(t + 7200 * S, 1, 0, 0, 0);
        let s = r.series();
        assert_eq!(s.complaints.len(), BUCKETS);
        assert_eq!(s.first_bucket + BUCKETS as i64 - 1, ((t - Ts::EPOCH).as_secs() + 7200) / BUCKET_SECONDS);
    }
}
