//! The tests that talk Kafka or HTTP, in one binary (one link of
//! librdkafka): against librdkafka's MockCluster in process or an
//! `andon dev-cluster` process, with `andon run` and `andon demo` in
//! process or as processes of their own.
//!
//! Tests of one binary run on parallel threads, so each test here takes
//! the lock in `common` first:
//!
//! - alone ([`common::serial`]): those that start processes and lean on
//!   session timeouts ([`kafka_restart`], [`view`]), the demo's run whose
//!   traffic rate is checked ([`demo`]), the injected faults, whose
//!   outages and stalls are timed ([`kafka_faults`]), and the
//!   multi-process fault runs on an `andon dev-cluster` driven through its
//!   stdin: a member frozen past its session timeout that resumes as a
//!   zombie ([`zombie`]), and a seeded sequence of kills, freezes and
//!   broker faults against three members ([`chaos`]; a short run here,
//!   long ones with `scripts/chaos`). Their harness is `common::faults`;
//! - beside each other ([`common::parallel`]): those with an in-process
//!   MockCluster of their own ([`kafka_e2e`], [`http`], [`ingress`],
//!   [`tune`], and [`agent`], which clicks through a page in Chromium),
//!   and the two that
//!   each run a demo for Chromium or Prometheus to look at ([`ops`]; they
//!   ran side by side in their own binary too).

#[path = "../common/mod.rs"]
mod common;

mod agent;
mod apache;
mod auth;
mod chaos;
mod demo;
mod http;
mod ingress;
mod kafka_e2e;
mod kafka_faults;
mod kafka_restart;
mod ops;
mod tune;
mod view;
mod zombie;
