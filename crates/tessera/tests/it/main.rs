//! The one integration-test binary of the `tessera` crate: every test starts the real
//! `tessera` binary and talks HTTP to it (or runs its CLI), as users and SDKs do.

mod activation;
mod admin;
mod audiences;
mod crash;
mod debugger;
mod governance;
mod hostile;
mod import;
mod privacy;
mod profiles;
mod sdk_python;
mod support;
mod tracking;
