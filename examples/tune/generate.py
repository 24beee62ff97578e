#!/usr/bin/env python3
"""A history with a known truth, for `andon tune` (docs/choosing-rules.md).

Writes complaints.jsonl, updates.jsonl and andon.toml into the current
directory. The rules in force pulled print_defect at 3 distinct customers
within 24 h: 400 real defects (a new customer every 3.5 to 4.5 h, ten each)
were pulled and closed defect_confirmed; 2 false alarms (three customers in
2 h) were pulled and closed no_defect. Noise that rule never pulled: 40 keys
with one complaint, 40 with two customers 5 h apart, 40 with three customers
25 h apart. And wrong_item: 5 defects, too few to say anything about.
The same history as tests/offline/tune_cli.rs builds (other random times).
Standard library only; deterministic.
"""
import datetime
import json
import random

random.seed(20)
H = 3600
BASE = datetime.datetime(2026, 7, 1, tzinfo=datetime.timezone.utc)
complaints, updates = [], []


def ts(s):
    return (BASE + datetime.timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ")


def key(sku, issue, offsets, verdict):
    start = random.randint(0, 120 * 86400)
    for j, o in enumerate(offsets):
        complaints.append((start + o, json.dumps({
            "event_id": f"e{len(complaints)}", "occurred_at": ts(start + o),
            "subject": {"kind": "sku", "id": sku}, "issue": issue, "customer_id": f"{sku}-c{j}"})))
    if verdict:
        at = start + offsets[-1] + 24 * H
        updates.append((at, json.dumps({
            "update_id": "close", "andon_id": f"sku:{sku}/{issue}#1", "step": 1,
            "actor": "qa-1", "at": ts(at), "verdict": verdict})))


for i in range(400):
    t, offsets = 0, [0]
    for _ in range(9):
        t += random.randint(7 * H // 2, 9 * H // 2)
        offsets.append(t)
    key(f"D{i}", "print_defect", offsets, "defect_confirmed")
for i in range(2):
    key(f"F{i}", "print_defect", [0, H, 2 * H], "no_defect")
for i in range(40):
    key(f"N1-{i}", "print_defect", [0], None)
    key(f"N2-{i}", "print_defect", [0, 5 * H], None)
    key(f"N3-{i}", "print_defect", [0, 25 * H, 50 * H], None)
for i in range(5):
    key(f"W{i}", "wrong_item", [0, H], "defect_confirmed")

complaints.sort()
updates.sort()
with open("complaints.jsonl", "w") as f:
    f.writelines(line + "\n" for _, line in complaints)
with open("updates.jsonl", "w") as f:
    f.writelines(line + "\n" for _, line in updates)
with open("andon.toml", "w") as f:
    f.write('[rules.default]\nthreshold = 2\nwindow = "7d"\n\n'
            '[[rules.issue]]\nissues = ["print_defect"]\nthreshold = 3\nwindow = "24h"\n')
