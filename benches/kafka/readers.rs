//! Reading topics from the side: [`Reader`], a read_committed consumer at
//! the end of an output topic that sees records as they appear, and
//! [`topic_size`], the records and bytes a topic holds.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

use crate::procs::now;
use crate::R;

/// A read_committed consumer of `topic`, assigned every partition at its
/// end as of now, fetching with a 5 ms wait.
pub struct Reader(BaseConsumer);

impl Reader {
    pub fn at_end(bootstrap: &str, topic: &str, partitions: i32) -> R<Reader> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "bench-reader")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("fetch.wait.max.ms", "5")
            .set("allow.auto.create.topics", "false")
            .create()
            .map_err(|e| format!("reader: {e}"))?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            let (_, high) =
                c.fetch_watermarks(topic, p, Duration::from_secs(10)).map_err(|e| format!("watermarks: {e}"))?;
            tpl.add_partition_offset(topic, p, Offset::Offset(high)).map_err(|e| e.to_string())?;
        }
        c.assign(&tpl).map_err(|e| format!("assign: {e}"))?;
        Ok(Reader(c))
    }

    /// The next record within `wait`: the Unix time it was seen, its
    /// partition, its value as JSON.
    pub fn next(&self, wait: Duration) -> Option<(f64, i32, Value)> {
        match self.0.poll(wait)? {
            Ok(m) => {
                let v = serde_json::from_slice(m.payload().unwrap_or_default()).unwrap_or(Value::Null);
                Some((now(), m.partition(), v))
            }
            Err(_) => None,
        }
    }
}

/// Records and bytes (keys and values) now in `topic`, read whole.
pub fn topic_size(bootstrap: &str, topic: &str, partitions: i32) -> R<(u64, u64)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-size")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "5")
        .create()
        .map_err(|e| format!("size reader: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    let mut left = 0i64;
    let mut ends = Vec::new();
    for p in 0..partitions {
        let (low, high) = c.fetch_watermarks(topic, p, Duration::from_secs(10)).map_err(|e| e.to_string())?;
        ends.push(high);
        if high > low {
            left += 1;
            tpl.add_partition_offset(topic, p, Offset::Offset(low)).map_err(|e| e.to_string())?;
        }
    }
    c.assign(&tpl).map_err(|e| e.to_string())?;
    let (mut records, mut bytes) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(120);
    while left > 0 {
        if Instant::now() > deadline {
            return Err(format!("reading {topic} timed out"));
        }
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            records += 1;
            bytes += (m.key().map_or(0, <[u8]>::len) + m.payload().map_or(0, <[u8]>::len)) as u64;
            if m.offset() + 1 >= ends[m.partition() as usize] {
                left -= 1;
            }
        }
    }
    Ok((records, bytes))
}
