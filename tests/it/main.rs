//! The integration tests, in one binary so that the crate links once and tests of different
//! files run side by side: each starts a real Redress on 127.0.0.1 with a database of its own
//! (SQLite, or PostgreSQL when TEST_DATABASE_URL names a server), a real SMTP server, and
//! drives it through HTTP, the real CLI and, for the browser tests, headless Chromium.
//!
//! Tests that must have the process to themselves (the query-plan recorder sees every
//! connection; the fault scenarios load both cores) take `common::alone()`; every `TestApp`
//! waits for them.

// Tests unwrap: a failure there is the test failing, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod access;
mod bad_input;
mod browser_e2e;
mod browser_layout;
mod browser_public;
mod deadlines;
mod fallback;
mod faults;
mod fuzz;
mod injection;
mod instances;
mod lists;
mod mail_delivery;
mod mail_faults;
mod migrations;
mod plain_words;
mod privacy;
mod query_plans;
mod saved_reasons;
mod security;
mod staff_web;
mod transfer;
mod workflow;
