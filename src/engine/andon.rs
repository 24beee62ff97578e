//! One open andon (work order): its route, its current step and deadline,
//! and the records its lifecycle emits (spec, Semantics 4 to 6).

use serde::{Deserialize, Serialize};

use super::rules::RouteStep;
use crate::event::{Output, StepPlan, Trigger, Verdict, WorkOrderEvent};
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
        }));
        match verdict {
            Some(verdict) => {
                out.push(Output::WorkOrder(WorkOrderEvent::Closed {
                    andon_id: andon_id.to_owned(),
                    verdict,
                    closed_at: at,
                    complaints_attached: self.attached,
                    trigger: self.trigger,
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
