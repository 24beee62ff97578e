//! Which partition a subject key lives on, by the partitioner the
//! producers of andon's inputs use (`[kafka] input_partitioner`): the Java
//! client's default (`toPositive(murmur2(key)) % partitions`; librdkafka:
//! `partitioner=murmur2_random`), or librdkafka's own default
//! (`crc32(key) % partitions`: `consistent`, `consistent_random`).
//! `/subjects` uses it to find the member that owns a subject's live
//! counts; the processor uses it to notice inputs produced otherwise.

use serde::{Deserialize, Serialize};

/// The partitioner the producers of the inputs place keyed records with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Partitioner {
    /// The Java client's default; librdkafka's `murmur2_random`.
    #[default]
    Murmur2,
    /// librdkafka's default (`consistent_random`) and `consistent`.
    Consistent,
}

impl Partitioner {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Murmur2 => "murmur2",
            Self::Consistent => "consistent",
        }
    }

    /// The partition of a record keyed `key` among `partitions` (> 0).
    pub fn partition(self, key: &[u8], partitions: i32) -> i32 {
        let n = partitions.max(1);
        match self {
            Self::Murmur2 => (murmur2(key) & 0x7fff_ffff) % n,
            // librdkafka: `rd_crc32(key, keylen) % partition_cnt`, unsigned.
            Self::Consistent => (crc32fast::hash(key) % n as u32) as i32,
        }
    }
}

/// Kafka's `Utils.murmur2`: MurmurHash2, 32 bits, seed `0x9747b28c`, on
/// Java `int` arithmetic (wrapping; `>>>` is a logical shift).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of Kafka's own `UtilsTest.testMurmur2` (Java `int`s).
    #[test]
    fn murmur2_gives_what_the_java_client_gives() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            (b"abc", 479_470_107),
        ];
        for (key, want) in cases {
            assert_eq!(murmur2(key), want, "{}", String::from_utf8_lossy(key));
        }
    }

    /// CRC-32 (IEEE) check value, and librdkafka's unsigned modulo: a hash
    /// with the top bit set must not come out negative.
    #[test]
    fn consistent_is_crc32_modulo_the_partitions() {
        assert_eq!(crc32fast::hash(b"123456789"), 0xcbf4_3926);
        assert_eq!(Partitioner::Consistent.partition(b"123456789", 1000), (0xcbf4_3926u32 % 1000) as i32);
        for k in ["sku:A", "sku:B000123", "promotion:SPRING-10", ""] {
            for n in 1..9 {
                assert!((0..n).contains(&Partitioner::Consistent.partition(k.as_bytes(), n)));
            }
        }
    }

    #[test]
    fn partitions_are_in_range_and_use_the_positive_hash() {
        // -973932308 & 0x7fffffff = 1173551340.
        assert_eq!(Partitioner::Murmur2.partition(b"21", 1_000_000_007), 1_173_551_340 % 1_000_000_007);
        for k in ["sku:A", "sku:B000123", "promotion:SPRING-10", ""] {
            for n in 1..9 {
                assert!((0..n).contains(&Partitioner::Murmur2.partition(k.as_bytes(), n)));
            }
        }
    }
}
