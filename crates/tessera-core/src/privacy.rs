//! Privacy and data governance rules, without I/O: tracking plans (`plan.rs`: what events may
//! look like, and the violations of those that do not), and PII classification (`pii.rs`:
//! detectors for personal data in values, and the policies that keep, hash, mask or drop it
//! before an event reaches the log).

pub mod pii;
pub mod plan;
