//! eviStream: a server that turns scientific PDFs into verified,
//! analysis-ready data. This crate is the host: API, services, jobs,
//! persistence, the plugin runtime and the plugin registry.

pub mod analysis;
pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod config;
pub mod cpu;
pub mod db;
pub mod documents;
pub mod error;
pub mod evaluation;
pub mod events;
pub mod export;
pub mod extraction;
pub mod forms;
pub mod jobs;
pub mod llm;
pub mod ops;
pub mod organizations;
pub mod pagination;
pub mod plugins;
pub mod projects;
pub mod registry;
pub mod review;
pub mod server;
pub mod signing;
pub mod storage;
pub mod studies;
pub mod telemetry;
pub mod tenancy;
pub mod validate;
