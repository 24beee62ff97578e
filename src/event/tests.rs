//! The decoders' contract: what they accept, and the stable reason and
//! named field of what they refuse.

use super::*;

fn complaint(json: &str) -> Result<Complaint, Reject> {
    decode_complaint(json.as_bytes(), 65536)
}

const OK: &str = r#"{"event_id":"e1","occurred_at":"2026-11-01T10:00:00Z","subject":{"kind":"sku","id":"B1"},"issue":"print_defect","customer_id":"c1"}"#;

#[test]
fn decodes_a_minimal_complaint() {
    let c = complaint(OK).expect("valid");
    assert_eq!(c.subject_key, "sku:B1");
    assert!(!c.pull);
    assert_eq!(format_timestamp(c.occurred_at), "2026-11-01T10:00:00Z");
}

#[test]
fn ignores_unknown_fields() {
    let json = OK.replace("\"c1\"", "\"c1\",\"shiny_new_field\":{\"a\":[1,2]}");
    assert!(complaint(&json).is_ok());
}

#[test]
fn rejects_with_stable_reasons_naming_the_field() {
    let cases: &[(&str, RejectReason, &str)] = &[
        ("{not json", RejectReason::InvalidJson, "JSON"),
        ("[1,2]", RejectReason::SchemaViolation, ""),
        (&OK.replace("\"sku\"", "\"book\""), RejectReason::SchemaViolation, "subject.kind"),
        (&OK.replace("\"print_defect\"", "\"Print Defect\""), RejectReason::SchemaViolation, "issue"),
        (&OK.replace("2026-11-01T10:00:00Z", "2026-11-01"), RejectReason::SchemaViolation, "occurred_at"),
        (&OK.replace("2026-11-01T10:00:00Z", "2026-11-01T10:00:00"), RejectReason::SchemaViolation, "occurred_at"),
        (&OK.replace("2026-11-01T10:00:00Z", "2026-11-01 10:00:00Z"), RejectReason::SchemaViolation, "occurred_at"),
        (&OK.replace(",\"customer_id\":\"c1\"", ""), RejectReason::SchemaViolation, "customer_id"),
        (&OK.replace("\"c1\"", "17"), RejectReason::SchemaViolation, "customer_id"),
        (&OK.replace("\"e1\"", "\"\""), RejectReason::SchemaViolation, "event_id"),
        (&OK.replace("\"c1\"", "\"c1\",\"channel\":\"fax\""), RejectReason::SchemaViolation, "channel"),
        (&OK.replace("\"c1\"", "\"c1\",\"pull\":\"yes\""), RejectReason::SchemaViolation, "pull"),
    ];
    for (json, reason, field) in cases {
        let err = complaint(json).expect_err(json);
        assert_eq!(err.reason, *reason, "{json}: {err}");
        assert!(err.message.contains(field), "{json}: message {:?} should name {field}", err.message);
    }
}

#[test]
fn a_record_that_is_not_utf8_is_invalid_json_wherever_the_bad_byte_is() {
    // In a value, in a key, and outside any string: the same reason, as
    // when the parser checked each string itself.
    for bad in [OK.replacen("c1", "c\u{fffd}", 1), OK.replacen("issue", "iss\u{fffd}", 1), format!("{OK} \u{fffd}")] {
        let bytes: Vec<u8> = bad.replace('\u{fffd}', "\u{1}").bytes().map(|b| if b == 1 { 0xff } else { b }).collect();
        let err = decode_complaint(&bytes, 65536).expect_err("not UTF-8");
        assert_eq!(err.reason, RejectReason::InvalidJson, "{bad}: {}", err.message);
        assert!(err.message.contains("UTF-8"), "{}", err.message);
    }
    assert!(decode_update(&[0xff], 65536).is_err_and(|e| e.reason == RejectReason::InvalidJson));
}

#[test]
fn keeps_the_channel() {
    assert_eq!(complaint(OK).expect("valid").channel, None);
    for ch in Channel::ALL {
        let json = OK.replace("\"c1\"", &format!("\"c1\",\"channel\":\"{}\"", ch.as_str()));
        assert_eq!(complaint(&json).expect("valid").channel, Some(ch));
    }
    assert_eq!(serde_json::to_string(&Channel::Social).expect("json"), "\"social\"");
}

#[test]
fn too_large_is_checked_before_parsing() {
    let err = decode_complaint(OK.as_bytes(), 10).expect_err("too large");
    assert_eq!(err.reason, RejectReason::TooLarge);
}

#[test]
fn accepts_lowercase_t_z_and_offsets() {
    for ts in ["2026-11-01t10:00:00z", "2026-11-01T12:00:00+02:00", "2026-11-01T10:00:00.5Z"] {
        let c = complaint(&OK.replace("2026-11-01T10:00:00Z", ts)).expect(ts);
        assert!(format_timestamp(c.occurred_at).starts_with("2026-11-01T10:00:00"), "{ts}");
    }
}

#[test]
fn update_decoding() {
    let u = decode_update(
        br#"{"update_id":"u1","andon_id":"sku:B1/print_defect#1","step":1,"actor":"ann","at":"2026-11-01T10:00:00Z","verdict":"no_defect"}"#,
        65536,
    )
    .expect("valid");
    assert_eq!(u.subject_key(), "sku:B1");
    assert_eq!(u.verdict, Some(Verdict::NoDefect));
    let err = decode_update(
        br#"{"update_id":"u1","andon_id":"x","step":0,"actor":"ann","at":"2026-11-01T10:00:00Z"}"#,
        65536,
    )
    .expect_err("step 0");
    assert!(err.message.contains("step"));
    let err = decode_update(
        br#"{"update_id":"u1","andon_id":"x","step":-1,"actor":"ann","at":"2026-11-01T10:00:00Z"}"#,
        65536,
    )
    .expect_err("negative step");
    assert!(err.message.contains("step"), "{err}");
}

#[test]
fn andon_ids_round_trip() {
    assert_eq!(parse_andon_id("sku:a/b/print_defect#12"), Some(("sku:a/b", "print_defect", 12)));
    assert_eq!(parse_andon_id("sku:a/print_defect#0"), None);
    assert_eq!(parse_andon_id("sku:a/print_defect#01"), None);
    assert_eq!(parse_andon_id("nope/print_defect#1"), None);
    assert_eq!(parse_andon_id("sku:a#1"), None);
}

proptest::proptest! {
    /// The hand-written formatter writes what chrono writes, over the whole
    /// range of nanoseconds in an i64, and over times a millisecond or a
    /// microsecond apart (the fractions it shortens).
    #[test]
    fn timestamps_are_formatted_as_chrono_formats_them(n in proptest::num::i64::ANY, ms in -5_000_000_000_000i64..9_000_000_000_000) {
        use chrono::{DateTime, SecondsFormat};
        // Whole seconds, milliseconds, microseconds: no fraction, 3 and 6 digits.
        for n in [n, ms / 1_000 * 1_000_000_000, ms * 1_000_000, ms * 1_000] {
            let want = DateTime::from_timestamp_nanos(n).to_rfc3339_opts(SecondsFormat::AutoSi, true);
            proptest::prop_assert_eq!(format_timestamp(Ts::from_nanos(n)), want);
        }
    }
}

#[test]
fn timestamps_at_the_edges_are_formatted_as_chrono_formats_them() {
    use chrono::{DateTime, SecondsFormat};
    for n in [i64::MIN, i64::MAX, 0, -1, 1, 999_999_999, 1_000_000_000, -86_400_000_000_000, 951_782_400_000_000_000] {
        let want = DateTime::from_timestamp_nanos(n).to_rfc3339_opts(SecondsFormat::AutoSi, true);
        assert_eq!(format_timestamp(Ts::from_nanos(n)), want, "{n}");
    }
}
