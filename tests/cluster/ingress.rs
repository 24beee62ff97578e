//! `POST /complaints` and `POST /updates` over real HTTP into a running
//! andon: a bad record is a 400 with the DLQ's reason and nothing is
//! written; good ones are a 202 once on the topic, counted moments later;
//! NDJSON carries many, all or none; the same `event_id` twice is one
//! complaint; a burst beyond what may be in flight gets 503s with
//! `Retry-After` while everything that got a 202 is on the topic; and with
//! authentication on, only a token with the role posts.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

/// One POST on a fresh connection: (status, `Retry-After`, body as JSON).
fn post(addr: SocketAddr, path: &str, content_type: &str, body: &str) -> (u16, Option<String>, Value) {
    post_as(addr, None, path, content_type, body)
}

/// [`post`] with `Authorization: Bearer <token>` when a token is given.
fn post_as(
    addr: SocketAddr,
    token: Option<&str>,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, Option<String>, Value) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let retry_after = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("retry-after")))
        .map(|(_, v)| v.trim().to_owned());
    (status, retry_after, serde_json::from_str(body).unwrap_or(Value::Null))
}

const JSON: &str = "application/json";
const NDJSON: &str = "application/x-ndjson";

fn records_on(bootstrap: &str, topic: &str) -> Vec<Value> {
    read_all(bootstrap, topic).iter().map(Record::json).collect()
}

on_both!(complaints_and_updates_posted_over_http_are_checked_written_and_counted);

fn complaints_and_updates_posted_over_http_are_checked_written_and_counted(on: On) {
    let _lock = shared(on);
    let partitions = 4;
    let (_cluster, bootstrap) = cluster(on, partitions);
    let member = Running::with_view(&settings(&bootstrap, PAIR_RULES), andon::kafka::RunOptions::default());
    eventually(Duration::from_secs(60), "ready", || member.get("/readyz").0 == 200);
    let addr = member.addr();

    // Bad ones: the DLQ's reason, the line, and nothing written.
    let bad = r#"{"event_id":"x","occurred_at":"2026-01-01T00:00:00Z","subject":{"kind":"sku","id":"B1"},"issue":"print_defect"}"#;
    let (code, _, v) = post(addr, "/complaints", JSON, bad);
    assert_eq!((code, v["error"].as_str()), (400, Some("schema_violation")), "{v}");
    assert!(v["message"].as_str().is_some_and(|m| m.contains("customer_id")), "names the field: {v}");
    let (code, _, v) = post(addr, "/complaints", JSON, "{not json");
    assert_eq!((code, v["error"].as_str()), (400, Some("invalid_json")), "{v}");
    let future = complaint("f1", "B2", "ann", 60 * 24 * 3);
    let (code, _, v) = post(addr, "/complaints", JSON, &future);
    assert_eq!((code, v["error"].as_str()), (400, Some("occurred_at_in_future")), "{v}");
    let mixed = [complaint("m1", "B3", "ann", 0), complaint("m2", "B3", "bob", 0), bad.to_owned()].join("\n");
    let (code, _, v) = post(addr, "/complaints", NDJSON, &mixed);
    assert_eq!((code, v["error"].as_str(), v["line"].as_u64()), (400, Some("schema_violation"), Some(3)), "{v}");
    let (code, _, v) = post(addr, "/updates", JSON, r#"{"update_id":"u","andon_id":"sku:B1/print_defect#1"}"#);
    assert_eq!((code, v["error"].as_str()), (400, Some("schema_violation")), "{v}");
    let (code, _, _) = post(addr, "/complaints", JSON, "");
    assert_eq!(code, 400, "an empty body");
    assert!(records_on(&bootstrap, "andon.complaints").is_empty(), "nothing written by a refused request");

    // One good complaint: 202 with where it went, then counted.
    let one = complaint("g1", "G1", "ann", 0);
    let (code, _, v) = post(addr, "/complaints", JSON, &one);
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["accepted"], 1);
    assert_eq!(v["records"][0]["subject_key"], "sku:G1");
    assert_eq!(v["subjects"]["sku:G1"]["off_sale"], false, "{v}");
    let on_topic = read_all(&bootstrap, "andon.complaints");
    assert_eq!(on_topic.len(), 1, "on the topic when 202 came back");
    assert_eq!(on_topic[0].key.as_deref(), Some("sku:G1"));
    assert_eq!(v["records"][0]["partition"], on_topic[0].partition);
    assert_eq!(
        on_topic[0].partition,
        andon::view::Partitioner::Murmur2.partition(b"sku:G1", partitions),
        "on the partition the producers of the inputs use"
    );
    eventually(Duration::from_secs(30), "/subjects counts the posted complaint", || {
        let (_, body) = member.get("/subjects/sku/G1");
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        v["issues"][0]["counted"] == 1
    });

    // The same event_id again: on the topic twice, counted once.
    let (code, _, v) = post(addr, "/complaints", JSON, &one);
    assert_eq!(code, 202, "{v}");
    eventually(Duration::from_secs(30), "the repeat is a duplicate", || {
        member.metric("andon_complaints_total{outcome=\"duplicate\"}") == Some(1.0)
    });

    // NDJSON: a pair pulls; then its work order is closed by a posted update.
    let pair = [complaint("p1", "P1", "ann", 1), complaint("p2", "P1", "bob", 1)].join("\n") + "\n";
    let (code, _, v) = post(addr, "/complaints", NDJSON, &pair);
    assert_eq!((code, v["accepted"].as_u64()), (202, Some(2)), "{v}");
    let andon_id = "sku:P1/print_defect#1";
    eventually(Duration::from_secs(30), "the pair delisted P1", || {
        records_on(&bootstrap, "andon.delist-commands")
            .iter()
            .any(|c| c["action"] == "delist" && c["andon_id"] == andon_id)
    });
    // The view learns of the delist from its own topic, a read after the
    // commit that made the command visible: wait for it, or the standing
    // below may still be the one from before the pull.
    eventually(Duration::from_secs(30), "the view knows P1 is off sale", || {
        let (_, body) = member.get("/subjects/sku/P1");
        serde_json::from_str::<Value>(&body).is_ok_and(|v| v["off_sale"] == true)
    });
    let close = format!(
        r#"{{"update_id":"u1","andon_id":"{andon_id}","step":1,"actor":"pat","at":"{}","verdict":"defect_confirmed"}}"#,
        event_time(120 * 60)
    );
    let (code, _, v) = post(addr, "/updates", JSON, &close);
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["subjects"]["sku:P1"]["off_sale"], true, "the standing as the view knows it: {v}");
    eventually(Duration::from_secs(30), "the posted update closed the andon and relisted P1", || {
        records_on(&bootstrap, "andon.delist-commands")
            .iter()
            .any(|c| c["action"] == "relist" && c["andon_id"] == andon_id)
    });
    member.stop();
}

/// At most 4 records in flight and every acknowledgement 300 ms late: of
/// 24 requests sent at once, some are told to come back (503 with
/// `Retry-After`), and every one that got a 202 is on the topic.
#[test]
fn a_burst_beyond_what_may_be_in_flight_gets_503s_and_loses_nothing_that_got_a_202() {
    let _lock = shared(On::Mock);
    let (cluster, bootstrap) = cluster(On::Mock, 2);
    let toml = settings_toml(&bootstrap, PAIR_RULES).replace("[http]\n", "[http]\ningress_max_pending = 4\n");
    let settings = andon::config::Settings::from_toml(&toml).expect("settings");
    let member = Running::with_view(&settings, andon::kafka::RunOptions::default());
    eventually(Duration::from_secs(60), "ready", || member.get("/readyz").0 == 200);
    assert_eq!(cluster.mock().answer("rtt 300").as_deref(), Some("ok"));
    let addr = member.addr();
    let answers: Vec<(String, u16, Option<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..24)
            .map(|i| {
                s.spawn(move || {
                    let id = format!("burst-{i}");
                    let (code, retry, _) = post(addr, "/complaints", JSON, &complaint(&id, &format!("S{i}"), "ann", 0));
                    (id, code, retry)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("request")).collect()
    });
    assert_eq!(cluster.mock().answer("rtt 0").as_deref(), Some("ok"));
    let accepted: BTreeSet<String> = answers.iter().filter(|a| a.1 == 202).map(|a| a.0.clone()).collect();
    let refused: Vec<&(String, u16, Option<String>)> = answers.iter().filter(|a| a.1 == 503).collect();
    assert_eq!(accepted.len() + refused.len(), answers.len(), "only 202s and 503s: {answers:?}");
    assert!(!refused.is_empty() && !accepted.is_empty(), "some through, some refused: {answers:?}");
    assert!(refused.iter().all(|a| a.2.as_deref() == Some("1")), "each 503 says when to come back: {refused:?}");
    let on_topic: BTreeSet<String> = records_on(&bootstrap, "andon.complaints")
        .iter()
        .filter_map(|c| c["event_id"].as_str().map(str::to_owned))
        .collect();
    assert!(accepted.is_subset(&on_topic), "every 202 is on the topic: missing {:?}", accepted.difference(&on_topic));
    member.stop();
}

/// Authentication on (`mode = "tokens"`): no token, a wrong one, or one
/// with the role `read` alone writes nothing (401, 401, 403); a `report`
/// token posts complaints but not updates (403: `update`), and the
/// complaint it posted is the only record on the topics.
#[test]
fn only_a_token_with_the_role_posts_and_a_refused_request_writes_nothing() {
    let _lock = shared(On::Mock);
    let (_cluster, bootstrap) = cluster(On::Mock, 2);
    let hash = |t: &str| andon::ops::auth::sha256_hex(t);
    let auth = format!(
        "mode = \"tokens\"\n[http.auth.tokens.reader]\nsha256 = \"{}\"\nroles = [\"read\"]\n[http.auth.tokens.crm]\nsha256 = \"{}\"\nroles = [\"report\"]\n",
        hash("reader-token-0123"),
        hash("crm-token-0123456")
    );
    let toml = settings_toml(&bootstrap, PAIR_RULES).replace("mode = \"none\"\n", &auth);
    let settings = andon::config::Settings::from_toml(&toml).expect("settings");
    assert_eq!(settings.http.auth.mode, andon::config::AuthMode::Tokens);
    let member = Running::with_view(&settings, andon::kafka::RunOptions::default());
    eventually(Duration::from_secs(60), "ready", || member.get("/readyz").0 == 200);
    let addr = member.addr();
    let one = complaint("t1", "T1", "ann", 0);

    for (token, code) in [(None, 401), (Some("not-a-token-at-all"), 401), (Some("reader-token-0123"), 403)] {
        let (got, _, v) = post_as(addr, token, "/complaints", JSON, &one);
        assert_eq!(got, code, "{token:?}: {v}");
    }
    let (code, _, v) = post_as(addr, Some("reader-token-0123"), "/complaints", JSON, &one);
    assert_eq!((code, v["role"].as_str()), (403, Some("report")), "names the role it lacks: {v}");
    let update = format!(
        r#"{{"update_id":"u1","andon_id":"sku:T1/print_defect#1","step":1,"actor":"pat","at":"{}"}}"#,
        event_time(60)
    );
    let (code, _, v) = post_as(addr, Some("crm-token-0123456"), "/updates", JSON, &update);
    assert_eq!(code, 403, "report is not update: {v}");
    assert!(records_on(&bootstrap, "andon.complaints").is_empty(), "a refused request writes nothing");
    assert!(records_on(&bootstrap, "andon.work-order-updates").is_empty(), "a refused request writes nothing");

    let (code, _, v) = post_as(addr, Some("crm-token-0123456"), "/complaints", JSON, &one);
    assert_eq!(code, 202, "{v}");
    let on_topic = records_on(&bootstrap, "andon.complaints");
    assert_eq!(on_topic.len(), 1, "the one the report token posted");
    assert_eq!(on_topic[0]["event_id"], "t1");
    member.stop();
}
