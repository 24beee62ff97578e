//! One open andon (work order): its route, its current step and deadline,
//! and the records its lifecycle emits (docs/semantics.md, rules 4 to 6).

use serde::{Deserialize, Serialize};

use super::rules::RouteStep;
use crate::event::{parse_andon_id, Channel, Output, StepPlan, Trigger, Verdict, WorkOrderEvent};
use crate::time::{Dur, Ts};

/// An open work order. Closed ones are forgotten: their number stays in the
/// key's counter, which is all `andon_closed` and the next id need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenAndon {
    /// `n` of `<subject key>/<issue>#<n>`.
    pub n: u32,
    pub trigger: Trigger,
    /// Its rule's action was `delist` (whether or not it emitted the command).
    pub delisting: bool,
    pub opened_at: Ts,
    /// The route as configured when it opened; later config changes do not
    /// rewrite a work order under way.
    pub route: Vec<RouteStep>,
    /// 1-based.
    pub step: u32,
    pub step_started: Ts,
    pub due_at: Ts,
    pub escalated: bool,
    pub attached: u64,
    /// At most `window::EVIDENCE_LISTED` ids; `evidence_total` counts them all.
    pub evidence: Vec<Box<str>>,
    pub evidence_total: u32,
    /// The channel of the complaint that pulled (for bad pulls by channel).
    #[serde(default)]
    pub channel: Option<Channel>,
    /// The steps completed so far, in order (for the owners' timeliness).
    #[serde(default)]
    pub done: Vec<DoneStep>,
}

/// A completed step of a work order: who owned it, who did it, and when it
/// began, was done and was due. Staff ids (`actor`) stay out of metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneStep {
    pub step: u32,
    pub owner: String,
    pub actor: String,
    pub started_at: Ts,
    pub completed_at: Ts,
    pub due_at: Ts,
}

/// What is worth keeping of a closed work order once it is gone from
/// state: carried by `closed` outputs (not part of the record) for the
/// cluster-wide view's history (bad pulls, owners' timeliness).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedSummary {
    pub subject_key: String,
    pub issue: String,
    pub trigger: Trigger,
    pub channel: Option<Channel>,
    pub opened_at: Ts,
    /// Every step completed, the closing one last.
    pub steps: Vec<DoneStep>,
}

impl OpenAndon {
    pub fn owner(&self) -> &str {
        self.route.get(self.step as usize - 1).map_or("", |s| s.owner.as_str())
    }

    pub fn is_last_step(&self) -> bool {
        self.step as usize >= self.route.len()
    }

    /// Step k due at `opened_at` + sla₁ + … + slaₖ (provisional for k > 1).
    pub fn plan(&self) -> Vec<StepPlan> {
        let mut due = self.opened_at;
        self.route
            .iter()
            .enumerate()
            .map(|(k, s)| {
                due = due + s.sla;
                StepPlan { step: k as u32 + 1, owner: s.owner.clone(), due_at: due }
            })
            .collect()
    }

    /// `escalated` for the current step.
    pub fn escalate(&mut self, andon_id: &str, now: Ts, out: &mut Vec<Output>) {
        self.escalated = true;
        out.push(Output::WorkOrder(WorkOrderEvent::Escalated {
            andon_id: andon_id.to_owned(),
            step: self.step,
            owner: self.owner().to_owned(),
            due_at: self.due_at,
            escalated_at: now,
        }));
    }

    /// Completes the current step at `at`. Returns true when the verdict
    /// closed the work order (then `closed` is emitted too).
    pub fn complete(
        &mut self,
        andon_id: &str,
        actor: &str,
        at: Ts,
        verdict: Option<Verdict>,
        out: &mut Vec<Output>,
    ) -> bool {
        out.push(Output::WorkOrder(WorkOrderEvent::StepCompleted {
            andon_id: andon_id.to_owned(),
            step: self.step,
            owner: self.owner().to_owned(),
            actor: actor.to_owned(),
            at,
            started_at: self.step_started,
            due_at: self.due_at,
        }));
        self.done.push(DoneStep {
            step: self.step,
            owner: self.owner().to_owned(),
            actor: actor.to_owned(),
            started_at: self.step_started,
            completed_at: at,
            due_at: self.due_at,
        });
        match verdict {
            Some(verdict) => {
                let (subject_key, issue) = parse_andon_id(andon_id).map_or((andon_id, ""), |(k, i, _)| (k, i));
                out.push(Output::WorkOrder(WorkOrderEvent::Closed {
                    andon_id: andon_id.to_owned(),
                    verdict,
                    closed_at: at,
                    complaints_attached: self.attached,
                    trigger: self.trigger,
                    summary: Some(Box::new(ClosedSummary {
                        subject_key: subject_key.to_owned(),
                        issue: issue.to_owned(),
                        trigger: self.trigger,
                        channel: self.channel,
                        opened_at: self.opened_at,
                        steps: std::mem::take(&mut self.done),
                    })),
                }));
                true
            }
            None => {
                self.step += 1;
                self.step_started = at;
                // Really due sla_{k+1} after the previous step was done.
                let sla = self.route.get(self.step as usize - 1).map_or(Dur::ZERO, |s| s.sla);
                self.due_at = at + sla;
                self.escalated = false;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Dur;

    const S: Dur = Dur::SECOND;

    fn t(secs: i64) -> Ts {
        Ts::EPOCH + Dur::from_secs(secs)
    }

    fn open() -> OpenAndon {
        let route = vec![
            RouteStep { owner: "product".into(), sla: 100 * S },
            RouteStep { owner: "operations".into(), sla: 50 * S },
        ];
        OpenAndon {
            n: 1,
            trigger: Trigger::Threshold,
            delisting: true,
            opened_at: t(1000),
            due_at: t(1100),
            route,
            step: 1,
            step_started: t(1000),
            escalated: false,
            attached: 2,
            evidence: vec!["e1".into()],
            evidence_total: 1,
            channel: Some(Channel::Chat),
            done: Vec::new(),
        }
    }

    #[test]
    fn completed_steps_are_kept_and_the_close_carries_them() {
        let mut a = open();
        let mut out = Vec::new();
        assert!(!a.complete("sku:A/print_defect#1", "pm-7", t(1150), None, &mut out));
        assert_eq!(
            a.done,
            vec![DoneStep {
                step: 1,
                owner: "product".into(),
                actor: "pm-7".into(),
                started_at: t(1000),
                completed_at: t(1150),
                due_at: t(1100),
            }]
        );
        assert!(
            matches!(&out[0], Output::WorkOrder(WorkOrderEvent::StepCompleted { due_at, .. }) if *due_at == t(1100))
        );
        assert!(a.complete("sku:A/print_defect#1", "ops-2", t(1160), Some(Verdict::NoDefect), &mut out));
        let Output::WorkOrder(WorkOrderEvent::Closed { summary: Some(summary), .. }) = &out[2] else {
            panic!("closed with a summary: {out:?}")
        };
        assert_eq!((summary.subject_key.as_str(), summary.issue.as_str()), ("sku:A", "print_defect"));
        assert_eq!(
            (summary.trigger, summary.channel, summary.opened_at),
            (Trigger::Threshold, Some(Channel::Chat), t(1000))
        );
        let steps: Vec<(u32, &str, Ts, Ts)> =
            summary.steps.iter().map(|d| (d.step, d.actor.as_str(), d.completed_at, d.due_at)).collect();
        assert_eq!(steps, vec![(1, "pm-7", t(1150), t(1100)), (2, "ops-2", t(1160), t(1200))]);
        // Not part of the record: the schema names no such fields.
        let json = out[2].to_json();
        let v: serde_json::Value = serde_json::from_slice(&json).expect("json");
        assert!(v.get("summary").is_none() && v.get("trigger").is_none(), "{v}");
        let v: serde_json::Value = serde_json::from_slice(&out[1].to_json()).expect("json");
        assert!(v.get("due_at").is_none(), "{v}");
    }

    #[test]
    fn state_written_before_channel_and_done_existed_still_loads() {
        let mut v = serde_json::to_value(open()).expect("json");
        let m = v.as_object_mut().expect("object");
        m.remove("channel");
        m.remove("done");
        let old: OpenAndon = serde_json::from_value(v).expect("loads");
        assert_eq!((old.channel, old.done.len()), (None, 0));
    }
}
