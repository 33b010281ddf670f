//! The integration tests: one binary (one link on 2 cores instead of one
//! per file), a module per area. Every test runs against real servers
//! (HTTP, WebSocket, SQLite and PostgreSQL, S3-compatible storage, LLM
//! providers' wire protocols) started by the test itself.
//!
//! The modules share one process: a test that measures process-wide state
//! (resident memory, instance-slot timing) holds
//! [`evistream_tests::exclusive`]; every other test holds
//! [`evistream_tests::shared`] (`dual_db_test!` takes it for its tests).

mod accounts;
mod analysis;
mod columns;
mod dashboard;
mod documents;
mod evaluation;
mod extraction;
mod forms;
mod hostile;
mod hostile_grounding;
mod hostile_llm;
mod hostile_plugins;
mod hostile_review;
mod jobs;
mod layout;
mod llm;
mod nodes;
mod ops;
mod outbound;
mod pages;
mod plugin_check;
mod plugins;
mod projects;
mod registry;
mod review;
mod review_dual;
mod schema;
mod storage;
mod tenancy;
