//! Prometheus metrics, exactly the names and labels docs/metrics.md
//! promises, registered on a registry passed in (tests use their own).
//!
//! Label values come from enums or from the configuration, never from
//! data: `issue` is an issue named in the rules or `other`, `owner` an owner
//! named in `[owners]`, `partition` a partition number. No label names a
//! subject, customer or agent.

use std::collections::HashSet;

use prometheus::{
    exponential_buckets, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

use crate::engine::ComplaintClass;
use crate::engine::EngineConfig;
use crate::event::{Action, Output, RejectReason, Trigger, Verdict, WorkOrderEvent};
use crate::time::Dur;

#[derive(Clone)]
pub struct Metrics {
    pub complaints: IntCounterVec,
    pub pulls: IntCounterVec,
    pub open_andons: IntGauge,
    pub delisted_subjects: IntGauge,
    pub commands: IntCounterVec,
    pub work_order_events: IntCounterVec,
    pub closed: IntCounterVec,
    pub step_duration: HistogramVec,
    pub dlq: IntCounterVec,
    pub decision_latency: Histogram,
    pub consumer_lag: IntGaugeVec,
    pub state_keys: IntGauge,
    pub restore_seconds: Histogram,
    pub rebalances: IntCounter,
    pub transaction_seconds: Histogram,
    pub batch_failures: IntCounterVec,
    pub partition_stalled: IntGaugeVec,
    pub partition_failed: IntGaugeVec,
    /// Keyed inputs not on the partition `[kafka] input_partitioner` gives
    /// their key, by input.
    pub input_misplaced: IntCounterVec,
    /// 1 when `/readyz` would answer 200. Beyond the contract's list: so
    /// that Prometheus can alert on an instance that is up but not ready.
    pub ready: IntGauge,
    /// How far the cluster-wide view is behind its topic (0 when caught up).
    pub view_lag_seconds: Gauge,
    issues: HashSet<String>,
}

impl Metrics {
    pub fn new(registry: &Registry, engine: &EngineConfig) -> prometheus::Result<Self> {
        fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> prometheus::Result<T> {
            r.register(Box::new(c.clone()))?;
            Ok(c)
        }
        let counter = |name: &str, help: &str, labels: &[&str]| IntCounterVec::new(Opts::new(name, help), labels);
        let m = Metrics {
            complaints: reg(registry, counter("andon_complaints_total", "Complaints by outcome.", &["outcome"])?)?,
            pulls: reg(registry, counter("andon_pulls_total", "Andons pulled.", &["trigger", "issue"])?)?,
            open_andons: reg(registry, IntGauge::new("andon_open_andons", "Open andons (work orders).")?)?,
            delisted_subjects: reg(
                registry,
                IntGauge::new("andon_delisted_subjects", "Subjects kept off sale by an open andon.")?,
            )?,
            commands: reg(registry, counter("andon_commands_total", "Delist and relist commands.", &["action"])?)?,
            work_order_events: reg(
                registry,
                counter("andon_work_order_events_total", "Work-order events by type.", &["type"])?,
            )?,
            closed: reg(
                registry,
                counter(
                    "andon_work_orders_closed_total",
                    "Closed work orders by verdict and trigger.",
                    &["verdict", "trigger"],
                )?,
            )?,
            // Minutes to weeks: 1 min .. ~6.5 weeks (60 s × 2^16).
            step_duration: reg(
                registry,
                HistogramVec::new(
                    HistogramOpts::new("andon_step_duration_seconds", "Time an owner took for a step (event time).")
                        .buckets(exponential_buckets(60.0, 2.0, 17)?),
                    &["owner"],
                )?,
            )?,
            dlq: reg(registry, counter("andon_dlq_total", "Records sent to the DLQ by reason.", &["reason"])?)?,
            // Milliseconds to minutes: 1 ms .. ~9 min (1 ms × 2^19).
            decision_latency: reg(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "andon_decision_latency_seconds",
                        "From an input record's timestamp to the commit of its outputs.",
                    )
                    .buckets(exponential_buckets(0.001, 2.0, 20)?),
                )?,
            )?,
            consumer_lag: reg(
                registry,
                IntGaugeVec::new(
                    Opts::new("andon_consumer_lag", "Records not yet processed (complaints and work-order updates), per partition."),
                    &["partition"],
                )?,
            )?,
            state_keys: reg(registry, IntGauge::new("andon_state_keys", "(subject, issue) keys held in state.")?)?,
            restore_seconds: reg(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new("andon_restore_seconds", "Time to restore a partition from the changelog.")
                        .buckets(exponential_buckets(0.01, 2.0, 14)?),
                )?,
            )?,
            rebalances: reg(
                registry,
                IntCounter::new("andon_rebalances_total", "Partition assignments and revocations.")?,
            )?,
            transaction_seconds: reg(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new("andon_transaction_seconds", "Time to produce, checkpoint and commit a batch.")
                        .buckets(exponential_buckets(0.001, 2.0, 16)?),
                )?,
            )?,
            batch_failures: reg(
                registry,
                counter(
                    "andon_batch_failures_total",
                    "Batches that failed, by kind: transient (retried), permanent (the same write fails again), fenced (another writer).",
                    &["kind"],
                )?,
            )?,
            partition_stalled: reg(
                registry,
                IntGaugeVec::new(
                    Opts::new("andon_partition_stalled", "1 while an assigned partition makes no progress for processing.stall_after: active with input waiting, restoring that long (retries included), or failed."),
                    &["partition"],
                )?,
            )?,
            partition_failed: reg(
                registry,
                IntGaugeVec::new(
                    Opts::new("andon_partition_failed", "1 while an assigned partition cannot be restored (it is retried with backoff)."),
                    &["partition"],
                )?,
            )?,
            input_misplaced: reg(
                registry,
                counter(
                    "andon_input_misplaced_total",
                    "Keyed input records read on a partition other than the one [kafka] input_partitioner gives their key (their producer uses another partitioner), by input.",
                    &["input"],
                )?,
            )?,
            ready: reg(
                registry,
                IntGauge::new("andon_ready", "1 when every assigned partition is restored and processing (/readyz).")?,
            )?,
            view_lag_seconds: reg(
                registry,
                Gauge::new(
                    "andon_view_lag_seconds",
                    "How far the cluster-wide view is behind the view topic (0: caught up).",
                )?,
            )?,
            issues: engine.rules.named_issues().into_iter().collect(),
        };
        // Series that exist from the start, so that rates and ratios over
        // them are defined before the first event.
        for outcome in ComplaintClass::ALL.map(ComplaintClass::as_str).into_iter().chain(["invalid"]) {
            m.complaints.with_label_values(&[outcome]);
        }
        for action in Action::ALL {
            m.commands.with_label_values(&[action.as_str()]);
        }
        for t in ["opened", "step_completed", "escalated", "closed"] {
            m.work_order_events.with_label_values(&[t]);
        }
        for v in Verdict::ALL {
            for t in Trigger::ALL {
                m.closed.with_label_values(&[v.as_str(), t.as_str()]);
            }
        }
        for issue in m.issues.iter().map(String::as_str).chain(["other"]) {
            for t in Trigger::ALL {
                m.pulls.with_label_values(&[t.as_str(), issue]);
            }
        }
        let rules = &engine.rules;
        for step in
            std::iter::once(&rules.default).chain(rules.by_issue.iter().map(|(_, r)| r)).flat_map(|r| r.route.iter())
        {
            m.step_duration.with_label_values(&[&step.owner]);
        }
        for kind in crate::kafka::errors::FailureKind::ALL {
            m.batch_failures.with_label_values(&[kind.as_str()]);
        }
        for reason in RejectReason::ALL {
            m.dlq.with_label_values(&[reason.as_str()]);
        }
        for side in [crate::merge::Side::Complaints, crate::merge::Side::Updates] {
            m.input_misplaced.with_label_values(&[side.input()]);
        }
        Ok(m)
    }

    /// The `issue` label: the issue if the rules name it, else `other`.
    pub fn issue_label<'a>(&self, issue: &'a str) -> &'a str {
        if self.issues.contains(issue) {
            issue
        } else {
            "other"
        }
    }

    /// Counts a committed output.
    pub fn output(&self, o: &Output) {
        match o {
            Output::Command(c) => {
                self.commands.with_label_values(&[c.action.as_str()]).inc();
            }
            Output::WorkOrder(e) => {
                self.work_order_events.with_label_values(&[e.type_str()]).inc();
                match e {
                    WorkOrderEvent::Opened { trigger, issue, .. } => {
                        self.pulls.with_label_values(&[trigger.as_str(), self.issue_label(issue)]).inc();
                    }
                    WorkOrderEvent::StepCompleted { owner, at, started_at, .. } => {
                        let secs = (*at - *started_at).max(Dur::ZERO).as_secs_f64();
                        self.step_duration.with_label_values(&[owner]).observe(secs);
                    }
                    WorkOrderEvent::Closed { verdict, trigger, .. } => {
                        self.closed.with_label_values(&[verdict.as_str(), trigger.as_str()]).inc();
                    }
                    WorkOrderEvent::Escalated { .. } => {}
                }
            }
        }
    }

    pub fn dlq(&self, reason: RejectReason) {
        self.dlq.with_label_values(&[reason.as_str()]).inc();
    }
}
