//! Writers: the ways users reach the pool. Each writer is split by role (`config`, `service`,
//! `retry`) and makes its own single decision of what is retryable.

pub mod admin_create;
pub mod import_job;
