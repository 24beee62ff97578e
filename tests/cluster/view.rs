//! The cluster-wide view with three `andon run` members on one
//! `andon dev-cluster`, all separate processes:
//!
//! - every member's `/andons` lists exactly the open andons of the whole
//!   cluster: those `andon replay` opens and does not close;
//! - `/subjects/...` gives the same answer from every member, with the
//!   live counts of the partition's owner ("2 of 3"), and says so (503,
//!   naming the owner) when the owner cannot be reached (SIGSTOP);
//! - `/owners` and `/bad-pulls` agree with a computation from the output
//!   topics (and the inputs' channels);
//! - a member restarted rebuilds the view from the topic;
//! - a batch that fails after its outputs were written still writes its
//!   table records when it is replayed;
//! - the status page in headless Chromium shows andons owned by other
//!   members, and its charts render without console errors (screenshot in
//!   `tests/artifacts/view-status-page.png`): a test of its own, ignored by
//!   a plain `cargo test`, run by `scripts/test`, which installs Chromium.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{json, Value};

/// A member: its process, log, and the address it serves HTTP on (read
/// from its log: `http.listen` is port 0).
struct Member {
    proc: Proc,
    log: PathBuf,
    addr: SocketAddr,
}

fn member(config: &Path, log: PathBuf) -> Member {
    // A restarted member appends to its log: wait for one more start.
    let serving = |text: &str| text.lines().filter(|l| l.contains("serving /metrics")).count();
    let before = serving(&std::fs::read_to_string(&log).unwrap_or_default());
    let proc = spawn_andon(&["run", "--config", config.to_str().expect("path")], &log);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if serving(&text) > before {
            let addr = served_addr(&text).expect("the address in the log line");
            return Member { proc, log, addr };
        }
        assert!(Instant::now() < deadline, "member did not start serving:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn get_json(addr: SocketAddr, path: &str) -> (u16, Value) {
    let (code, body) = http_get(addr, path);
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

const RULES: &str = r#"
[rules.default]
threshold = 3
window = "1h"
route = ["product", "operations"]
[owners.product]
sla = "30m"
[owners.operations]
sla = "10h"
"#;

const H: i64 = 3600;

fn iso(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0).expect("time").format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn unix(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).expect("time").timestamp()
}

/// Complaints over 60 SKUs between 3 h and 45 min ago (so every pulled
/// andon's first step, due 30 min after its pull, is overdue while the
/// test runs, and every second step, due 10 h after the first, is not),
/// with channels; a few manual pulls; and two recent complaints from two
/// customers about `sku:LIVE1` ("2 of 3"). Updates walk three quarters of
/// the andons: a quarter stay at step 1, a quarter at step 2, half close
/// (every fifth of those `no_defect`).
fn workload(now: i64) -> (Vec<String>, Vec<String>) {
    workload_of(now, 900)
}

fn workload_of(now: i64, n: i64) -> (Vec<String>, Vec<String>) {
    let channels = ["phone", "chat", "email", "social", ""];
    let issues = ["print_defect", "damaged_in_transit", "wrong_item"];
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = |m: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % m
    };
    let start = now - 3 * H;
    let mut complaints = Vec::new();
    for i in 0..n {
        let mut c = json!({
            "event_id": format!("e{i}"),
            "occurred_at": iso(start + i * 8100 / n),
            "subject": {"kind": "sku", "id": format!("S{:03}", next(n as u64 / 15))},
            "issue": issues[next(3) as usize],
            "customer_id": format!("c{}", next(25)),
        });
        let ch = channels[(i % 5) as usize];
        if !ch.is_empty() {
            c["channel"] = json!(ch);
        }
        if i % 97 == 13 {
            c["pull"] = json!(true);
        }
        complaints.push(c.to_string());
    }
    for (i, customer) in ["cA", "cB"].iter().enumerate() {
        complaints.push(
            json!({
                "event_id": format!("live{i}"),
                "occurred_at": iso(now - 300 + 60 * i as i64),
                "subject": {"kind": "sku", "id": "LIVE1"},
                "issue": "print_defect",
                "customer_id": customer,
                "channel": "chat",
            })
            .to_string(),
        );
    }
    let opened = replay(&settings("unused:9092", RULES), &complaints, &[]);
    let mut updates: Vec<(i64, String)> = Vec::new();
    for (k, o) in opened.iter().filter(|l| l["value"]["type"] == "opened").enumerate() {
        let id = o["value"]["andon_id"].as_str().expect("andon_id");
        let at = unix(o["value"]["opened_at"].as_str().expect("opened_at"));
        if k % 4 == 0 {
            continue;
        }
        let t1 = at + 60 * (5 + (k as i64 % 20));
        let pm = format!("pm-{}", k % 3);
        updates.push((
            t1,
            json!({"update_id": format!("u{k}a"), "andon_id": id, "step": 1, "actor": pm, "at": iso(t1)}).to_string(),
        ));
        if k % 4 == 1 {
            continue;
        }
        let t2 = t1 + 60 * (3 + (k as i64 % 17));
        let verdict = if k % 5 == 0 { "no_defect" } else { "defect_confirmed" };
        updates.push((
            t2,
            json!({"update_id": format!("u{k}b"), "andon_id": id, "step": 2, "actor": format!("ops-{}", k % 2), "at": iso(t2), "verdict": verdict})
                .to_string(),
        ));
    }
    updates.sort_by_key(|(t, _)| *t);
    (complaints, updates.into_iter().map(|(_, l)| l).collect())
}

fn andon_ids(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x["andon_id"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(t) => return t,
            Err(e) if Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// `/subjects` without the part that names who answered.
fn comparable(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("counts_from");
        if let Some(a) = o.get_mut("open_andons").and_then(Value::as_array_mut) {
            // `overdue` flips with the clock; the rest must agree.
            for x in a {
                x.as_object_mut().map(|o| o.remove("overdue"));
            }
        }
    }
    v
}

/// Owners' timeliness and bad pulls computed from the output topics (and
/// the channel of each pulling complaint, from the inputs).
struct FromTopics {
    owners: BTreeMap<String, (u64, u64, Vec<f64>, u64)>, // owner -> (open, overdue, durations, within sla)
    actors: BTreeMap<String, (Vec<f64>, u64)>,
    bad: BTreeMap<(String, String), (u64, u64)>, // (by, key) -> (closed, bad)
}

fn from_topics(bootstrap: &str, complaints: &[String], now: i64) -> FromTopics {
    let sla = |owner: &str| if owner == "product" { 30 * 60 } else { 10 * H };
    let channel_of: BTreeMap<String, (String, i64)> = complaints
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json");
            let ch = v["channel"].as_str().unwrap_or("unspecified").to_owned();
            (v["event_id"].as_str().expect("id").to_owned(), (ch, unix(v["occurred_at"].as_str().expect("t"))))
        })
        .collect();
    let mut records = read_all(bootstrap, "andon.work-orders");
    records.sort_by_key(|r| (r.partition, r.offset));
    // andon -> (issue, trigger, channel, steps plan, completed: [(owner, actor, start, at, due)], verdict)
    struct A {
        issue: String,
        trigger: String,
        channel: String,
        plan: Vec<(String, i64)>,
        opened_at: i64,
        done: Vec<(String, String, i64, i64, i64)>,
        verdict: Option<String>,
    }
    let mut andons: BTreeMap<String, A> = BTreeMap::new();
    for r in &records {
        let v = r.json();
        let id = v["andon_id"].as_str().unwrap_or_default().to_owned();
        match v["type"].as_str() {
            Some("opened") => {
                let opened_at = unix(v["opened_at"].as_str().expect("t"));
                let channel = v["evidence"]
                    .as_array()
                    .expect("evidence")
                    .iter()
                    .filter_map(|e| channel_of.get(e.as_str()?))
                    .find(|(_, t)| *t == opened_at)
                    .map(|(c, _)| c.clone())
                    .expect("the pulling complaint is in the evidence");
                let plan = v["steps"]
                    .as_array()
                    .expect("steps")
                    .iter()
                    .map(|s| (s["owner"].as_str().expect("owner").to_owned(), unix(s["due_at"].as_str().expect("due"))))
                    .collect();
                andons.insert(
                    id,
                    A {
                        issue: v["issue"].as_str().expect("issue").to_owned(),
                        trigger: v["trigger"].as_str().expect("trigger").to_owned(),
                        channel,
                        plan,
                        opened_at,
                        done: vec![],
                        verdict: None,
                    },
                );
            }
            Some("step_completed") => {
                let a = andons.get_mut(&id).expect("opened first");
                let at = unix(v["at"].as_str().expect("at"));
                let owner = v["owner"].as_str().expect("owner").to_owned();
                let (start, due) = match a.done.last() {
                    None => (a.opened_at, a.plan[0].1),
                    Some(prev) => (prev.3, prev.3 + sla(&owner)),
                };
                a.done.push((owner, v["actor"].as_str().expect("actor").to_owned(), start, at, due));
            }
            Some("closed") => {
                andons.get_mut(&id).expect("opened first").verdict = v["verdict"].as_str().map(str::to_owned)
            }
            _ => {}
        }
    }
    let mut t = FromTopics { owners: BTreeMap::new(), actors: BTreeMap::new(), bad: BTreeMap::new() };
    for a in andons.values() {
        for (owner, actor, start, at, due) in &a.done {
            let o = t.owners.entry(owner.clone()).or_default();
            o.2.push((at - start) as f64);
            o.3 += u64::from(at <= due);
            let x = t.actors.entry(actor.clone()).or_default();
            x.0.push((at - start) as f64);
            x.1 += u64::from(at <= due);
        }
        match &a.verdict {
            None => {
                let k = a.done.len();
                let (owner, due) = match a.done.last() {
                    None => (a.plan[0].0.clone(), a.plan[0].1),
                    Some(prev) => (a.plan[k].0.clone(), prev.3 + sla(&a.plan[k].0)),
                };
                let o = t.owners.entry(owner).or_default();
                o.0 += 1;
                o.1 += u64::from(due < now);
            }
            Some(v) => {
                let bad = u64::from(v == "no_defect");
                for key in [("issue", &a.issue), ("trigger", &a.trigger), ("channel", &a.channel)] {
                    let e = t.bad.entry((key.0.to_owned(), key.1.clone())).or_default();
                    e.0 += 1;
                    e.1 += bad;
                }
            }
        }
    }
    t
}

fn nearest_rank(v: &[f64], p: usize) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[(p * v.len()).div_ceil(100).max(1) - 1])
}

fn assert_owners_and_bad_pulls(addr: SocketAddr, t: &FromTopics) {
    let (code, owners) = get_json(addr, "/owners");
    assert_eq!(code, 200);
    for (owner, (open, overdue, durations, within)) in &t.owners {
        let row = owners["owners"]
            .as_array()
            .expect("owners")
            .iter()
            .find(|r| r["owner"] == owner.as_str())
            .unwrap_or_else(|| panic!("{owner} in {owners}"));
        assert_eq!(row["open_steps"], *open, "{owner}: {row}");
        assert_eq!(row["overdue"], *overdue, "{owner}: {row}");
        assert_eq!(row["completed_30d"], durations.len(), "{owner}: {row}");
        assert_eq!(row["completed_7d"], durations.len(), "{owner}: all within a week");
        assert_eq!(row["median_seconds"].as_f64(), nearest_rank(durations, 50), "{owner}: {row}");
        assert_eq!(row["p90_seconds"].as_f64(), nearest_rank(durations, 90), "{owner}: {row}");
        let share = (!durations.is_empty()).then(|| *within as f64 / durations.len() as f64);
        assert_eq!(row["within_sla"].as_f64(), share, "{owner}: {row}");
    }
    let actors = owners["actors"].as_array().expect("actors");
    assert_eq!(actors.len(), t.actors.len(), "{owners}");
    for (actor, (durations, within)) in &t.actors {
        let row = actors.iter().find(|r| r["actor"] == actor.as_str()).unwrap_or_else(|| panic!("{actor}"));
        assert_eq!(row["completed_30d"], durations.len(), "{actor}: {row}");
        assert_eq!(row["median_seconds"].as_f64(), nearest_rank(durations, 50), "{actor}: {row}");
        assert_eq!(row["within_sla"].as_f64(), Some(*within as f64 / durations.len() as f64), "{actor}: {row}");
    }
    let (code, bad) = get_json(addr, "/bad-pulls");
    assert_eq!(code, 200);
    let mut got = BTreeMap::new();
    for (by, field) in [("issue", "by_issue"), ("trigger", "by_trigger"), ("channel", "by_channel")] {
        for r in bad[field].as_array().expect("rows") {
            got.insert(
                (by.to_owned(), r["key"].as_str().expect("key").to_owned()),
                (r["closed"].as_u64().expect("closed"), r["bad"].as_u64().expect("bad")),
            );
        }
    }
    assert_eq!(got, t.bad, "bad pulls by issue, trigger and channel");
    let total: u64 = t.bad.iter().filter(|((by, _), _)| by == "trigger").map(|(_, (c, _))| c).sum();
    assert_eq!(bad["closed"], total);
    assert!(total > 0 && t.bad.values().any(|(_, b)| *b > 0), "the workload closes some as no_defect");
}

/// Three `andon run` members on one `andon dev-cluster` of 3 partitions,
/// once the workload's outputs are all written and each member owns a
/// partition.
struct Three {
    // The members stop first, then the cluster; the directory with their
    // logs goes last (fields drop in this order).
    members: Vec<Member>,
    _cluster: Broker,
    dir: tempfile::TempDir,
    bootstrap: String,
    config: PathBuf,
    now: i64,
    complaints: Vec<String>,
    /// What `andon replay` writes for the workload.
    expected: Vec<Value>,
    /// The andons `andon replay` leaves open.
    open: BTreeSet<String>,
    /// The partitions each member owns.
    owned: Vec<Vec<i64>>,
}

fn three_members(on: On) -> Three {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cluster, bootstrap) = cluster_process(on, dir.path(), 3);
    let now = chrono::Utc::now().timestamp();
    let (complaints, updates) = workload(now);
    let expected = replay(&settings("unused:9092", RULES), &complaints, &updates);
    let open = expected_open(&expected);
    assert!(open.len() >= 10, "the workload leaves andons open: {}", open.len());
    produce(&bootstrap, "andon.complaints", &complaints);
    produce(&bootstrap, "andon.work-order-updates", &updates);
    let config = dir.path().join("andon.toml");
    std::fs::write(&config, settings_toml(&bootstrap, RULES)).expect("config");

    let members: Vec<Member> = (0..3).map(|i| member(&config, dir.path().join(format!("m{i}.log")))).collect();
    let want_outputs =
        expected.iter().filter(|l| l["topic"] != "andon.dlq" && l["value"]["type"] != "escalated").count();
    wait_stable(
        Duration::from_secs(3),
        Duration::from_secs(120),
        |n: &usize| *n >= want_outputs,
        || {
            let mut r = read_all(&bootstrap, "andon.delist-commands");
            r.extend(read_all(&bootstrap, "andon.work-orders"));
            r.iter().filter(|r| r.json()["type"] != "escalated").count()
        },
    );

    // Every member owns a part.
    let owned: Vec<Vec<i64>> = wait_for("three members with a partition each", Duration::from_secs(60), || {
        let owned: Vec<Vec<i64>> = members
            .iter()
            .map(|m| {
                get_json(m.addr, "/cluster").1["partitions"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_i64).collect())
                    .unwrap_or_default()
            })
            .collect();
        if owned.iter().all(|p| p.len() == 1) {
            Ok(owned)
        } else {
            Err(format!("{owned:?}"))
        }
    });
    Three { members, _cluster: cluster, dir, bootstrap, config, now, complaints, expected, open, owned }
}

/// `/andons` at `addr` once it lists exactly `open`.
fn wait_for_andons(what: &str, timeout: Duration, addr: SocketAddr, open: &BTreeSet<String>) -> Value {
    wait_for(what, timeout, || {
        let (code, v) = get_json(addr, "/andons");
        let got = andon_ids(&v);
        if code == 200 && got == *open {
            Ok(v)
        } else {
            Err(format!(
                "{} listed, {} expected; missing {:?}, extra {:?}",
                got.len(),
                open.len(),
                open.difference(&got).take(3).collect::<Vec<_>>(),
                got.difference(open).take(3).collect::<Vec<_>>()
            ))
        }
    })
}

on_both!(three_members_each_answer_for_the_whole_cluster);

fn three_members_each_answer_for_the_whole_cluster(on: On) {
    let _serial = serial();
    init_logs();
    // Bound in this order, they drop in reverse: members, cluster, directory.
    let Three { dir: _dir, _cluster, mut members, bootstrap, config, now, complaints, expected, open, owned } =
        three_members(on);

    // Every member lists all.
    for (i, m) in members.iter().enumerate() {
        let got = wait_for_andons(&format!("member {i}'s /andons"), Duration::from_secs(30), m.addr, &open);
        let foreign = got.as_array().expect("list").iter().filter(|a| a["partition"] != owned[i][0]).count();
        assert!(foreign > 0, "member {i} lists andons of partitions it does not own");
        let (_, metrics) = http_get(m.addr, "/metrics");
        let lag: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("andon_view_lag_seconds "))
            .and_then(|v| v.trim().parse().ok())
            .expect("andon_view_lag_seconds is exported");
        assert!(lag < 1.0, "caught up within a second: {lag}");
        let foreign_id = got.as_array().expect("list").iter().find(|a| a["partition"] != owned[i][0]).expect("one");
        let path = format!("/andons/{}", foreign_id["andon_id"].as_str().expect("id").replace('#', "%23"));
        assert_eq!(http_get(m.addr, &path).0, 200, "{path} from a member that does not own it");
    }

    // The charts add the members' last hour up: every complaint and pull once.
    let pulls = expected.iter().filter(|l| l["value"]["type"] == "opened").count() as f64;
    wait_for("the charts count every complaint and pull", Duration::from_secs(40), || {
        let c = &get_json(members[2].addr, "/cluster").1["charts"];
        let total = |k: &str| c[k].as_array().map_or(0.0, |a| a.iter().filter_map(Value::as_f64).sum::<f64>());
        let (complaints_seen, pulls_seen) = (total("complaints_per_second") * 10.0, total("pulls"));
        if (complaints_seen - complaints.len() as f64).abs() < 1e-6 && pulls_seen == pulls {
            Ok(())
        } else {
            Err(format!("complaints {complaints_seen} of {}, pulls {pulls_seen} of {pulls}", complaints.len()))
        }
    });

    // The same answer about a subject from every member, live counts from the owner.
    let one_open = open.iter().next().expect("an open andon").clone();
    let open_sku = one_open.split_once('/').expect("id").0.strip_prefix("sku:").expect("sku").to_owned();
    for (path, check) in [
        ("/subjects/sku/LIVE1".to_owned(), "live"),
        (format!("/subjects/sku/{open_sku}"), "open"),
        ("/subjects/sku/NEVER-SEEN".to_owned(), "never"),
    ] {
        let answers: Vec<Value> = members
            .iter()
            .map(|m| {
                let (code, v) = get_json(m.addr, &path);
                assert_eq!(code, 200, "{path}: {v}");
                v
            })
            .collect();
        let locals: Vec<bool> = answers.iter().map(|a| a["counts_from"]["local"].as_bool().expect("local")).collect();
        assert_eq!(
            locals.iter().filter(|l| **l).count(),
            1,
            "{path}: exactly the owner answers from its engine: {answers:?}"
        );
        for a in &answers[1..] {
            assert_eq!(comparable(a.clone()), comparable(answers[0].clone()), "{path}: the same from every member");
        }
        let a = &answers[0];
        match check {
            "live" => {
                assert_eq!(a["off_sale"], false);
                assert_eq!(a["open_andons"], json!([]));
                assert_eq!(
                    a["issues"],
                    json!([{"issue": "print_defect", "counted": 2, "threshold": 3, "window_seconds": 3600, "to_pull": 1, "open_andon": false}]),
                    "2 of 3"
                );
            }
            "open" => {
                assert!(andon_ids(&a["open_andons"]).contains(&one_open), "{a}");
                assert!(a["issues"].as_array().expect("issues").iter().any(|i| i["open_andon"] == true), "{a}");
            }
            _ => {
                assert_eq!((a["off_sale"].clone(), a["issues"].clone()), (json!(false), json!([])), "zero counts: {a}");
            }
        }
        // The subject's partition is the one its records went to.
        if check == "open" {
            let partition = read_all(&bootstrap, "andon.work-orders")
                .iter()
                .find(|r| r.json()["andon_id"] == one_open.as_str())
                .map(|r| r.partition)
                .expect("its records");
            assert_eq!(a["partition"], partition, "murmur2 like the producers'");
        }
    }
    assert_eq!(http_get(members[0].addr, "/subjects/book/X").0, 404);
    assert_eq!(http_get(members[0].addr, &format!("/subjects/sku/{}", "x".repeat(129))).0, 404);

    // Owners' timeliness and bad pulls, as the output topics say.
    let t = from_topics(&bootstrap, &complaints, now);
    for m in &members {
        assert_owners_and_bad_pulls(m.addr, &t);
    }

    // A restarted member rebuilds the view from the topic.
    let log = members[1].log.clone();
    drop(members.remove(1));
    members.insert(1, member(&config, log));
    wait_for("the restarted member's /andons", Duration::from_secs(60), || {
        let got = andon_ids(&get_json(members[1].addr, "/andons").1);
        if got == open {
            Ok(())
        } else {
            Err(format!("{} of {}", got.len(), open.len()))
        }
    });

    // The owner of LIVE1's partition stops answering: the others say so.
    // Every member must name the same owner first: after the restart a
    // member may still route to the restarted member's old address until
    // the group's new placement reaches it (a suite run once stopped the
    // owner while the asker still named the dead one).
    let owner = wait_for("LIVE1 answered by one owner, as every member knows it", Duration::from_secs(60), || {
        let mut named = Vec::new();
        for m in &members {
            let (code, v) = get_json(m.addr, "/subjects/sku/LIVE1");
            match (code, v["counts_from"]["advertise"].as_str()) {
                (200, Some(a)) => named.push(a.to_owned()),
                _ => return Err(v.to_string()),
            }
        }
        if named.iter().all(|a| *a == named[0]) {
            Ok(named.swap_remove(0))
        } else {
            Err(format!("the members name different owners: {named:?}"))
        }
    });
    let (stopped, asker) = {
        let i = members.iter().position(|m| format!("http://{}", m.addr) == owner).expect("the owner is a member");
        (i, members[(i + 1) % 3].addr)
    };
    let pid = members[stopped].proc.0.id().to_string();
    Command::new("kill").args(["-STOP", &pid]).status().expect("kill -STOP");
    let (code, v) = get_json(asker, "/subjects/sku/LIVE1");
    assert_eq!(code, 503, "{v}");
    assert_eq!(v["error"], "owner_unreachable", "{v}");
    assert_eq!(v["owner"]["advertise"], owner.as_str(), "names the owner: {v}");
    assert!(v["reason"].as_str().is_some_and(|r| !r.is_empty()), "says why: {v}");
    // Once the group has moved the partition on, the new owner answers, with the same counts.
    let v = wait_for("LIVE1 from a new owner", Duration::from_secs(60), || {
        let (code, v) = get_json(asker, "/subjects/sku/LIVE1");
        if code == 200 {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    });
    assert_ne!(v["counts_from"]["advertise"], owner.as_str());
    assert_eq!(v["issues"][0]["counted"], 2, "{v}");
    Command::new("kill").args(["-CONT", &pid]).status().expect("kill -CONT");
}

/// The status page of one member in headless Chromium shows the other
/// members' andons, and its charts draw.
#[test]
#[ignore = "needs Chromium: scripts/test installs it"]
fn the_status_page_of_one_member_shows_the_whole_clusters_andons_in_chromium() {
    let _serial = serial();
    init_logs();
    let three = three_members(On::Mock);
    wait_for_andons("member 0's /andons", Duration::from_secs(30), three.members[0].addr, &three.open);
    status_page(&three.members[0], three.owned[0][0], &three.open);
}

fn status_page(m: &Member, owns: i64, open: &BTreeSet<String>) {
    let url = format!("http://{}/", m.addr);
    let run = |extra: &[&str]| chromium(&[extra, &["--window-size=1280,2400"]].concat(), &url);
    let dom = run(&["--dump-dom"]);
    let html = String::from_utf8_lossy(&dom.stdout);
    let log = String::from_utf8_lossy(&dom.stderr);
    let console_errors: Vec<&str> =
        log.lines().filter(|l| l.contains("CONSOLE") && (l.contains("Uncaught") || l.contains("ERROR"))).collect();
    assert!(console_errors.is_empty(), "console errors: {console_errors:?}");
    let shown: Vec<&String> = open.iter().filter(|id| html.contains(&format!("<code>{id}</code>"))).collect();
    assert_eq!(shown.len(), open.len(), "every open andon of the cluster on the page:\n{html}");
    assert!(
        html.matches(&format!("<td class=\"num\">{owns}</td>")).count() < open.len(),
        "some of them on partitions this member does not own"
    );
    assert_eq!(html.matches("class=\"uplot").count(), 4, "four charts drawn by uPlot:\n{html}");
    assert!(html.matches("<canvas").count() >= 4, "with their canvases");
    assert!(html.contains("up to date"), "the view is caught up");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    let shot = dir.join("view-status-page.png");
    let _ = std::fs::remove_file(&shot);
    let out = run(&[&format!("--screenshot={}", shot.display())]);
    assert!(shot.exists(), "screenshot written: {}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::metadata(&shot).expect("png").len() > 10_000, "a real picture");
}

/// Outputs other than escalations, in the two output topics now.
fn outputs_now(bootstrap: &str) -> usize {
    let mut r = read_all(bootstrap, "andon.delist-commands");
    r.extend(read_all(bootstrap, "andon.work-orders"));
    r.iter().filter(|r| r.json()["type"] != "escalated").count()
}

/// A batch fails after its outputs reached their partitions (the view
/// topic's leader is down, its records time out): the batch is aborted
/// and replayed from the checkpoint, its outputs are suppressed as already
/// written, but its table records are written again: the view ends with
/// replay's open andons and every close in its history (without the
/// suppressed outputs' records, the closes of the failed batch would be
/// missing; the re-put after recovery alone mends only the open andons).
#[test]
fn table_records_are_rewritten_when_a_failed_batch_already_wrote_its_outputs() {
    let _serial = serial();
    let run = ViewApart::start(RULES, 2000);
    let bootstrap = run.bootstrap.clone();
    let now = chrono::Utc::now().timestamp();
    let (complaints, updates) = workload(now);
    let expected = replay(&run.settings, &complaints, &updates);
    let open = expected_open(&expected);
    let want = expected.iter().filter(|l| l["topic"] != "andon.dlq" && l["value"]["type"] != "escalated").count();
    run.cluster.broker_down(2).expect("down");
    produce(&bootstrap, "andon.complaints", &complaints);
    // The batch's outputs reach broker 1; its table records cannot.
    wait_for("the complaints' outputs written while the view's broker is down", Duration::from_secs(60), || {
        if (0..2).map(|p| run.written("andon.work-orders", p)).sum::<i64>() > 0 {
            Ok(())
        } else {
            Err("none".into())
        }
    });
    // Updates fetched while the loop waited on that batch are merged after
    // the complaints fetched before them (kafka_faults.rs has the test of
    // that alone).
    produce(&bootstrap, "andon.work-order-updates", &updates);
    std::thread::sleep(Duration::from_secs(5));
    assert!(run.status.view.model().open_count() == 0, "nothing reached the view yet");
    run.cluster.broker_up(2).expect("up");
    wait_stable(Duration::from_secs(3), Duration::from_secs(120), |n: &usize| *n >= want, || outputs_now(&bootstrap));
    wait_for_andons("the view after the failed batches", Duration::from_secs(60), run.addr, &open);
    let closed = expected.iter().filter(|l| l["value"]["type"] == "closed").count();
    assert_eq!(get_json(run.addr, "/bad-pulls").1["closed"], closed, "every close once in the history");
    run.stop();
}
