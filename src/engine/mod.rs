//! The Docker Engine API calls the shim makes, through bollard, with the shim's error handling:
//! 404s become `None`, and every error names the endpoint or image and what to do. Each request
//! is timed in the debug log (`docker request`, monotonic nanoseconds), which is how the benchmark
//! harness tells the shim's own time from the daemon's.
//!
//! - [`transport`](self): the connections to the daemon and the pool that keeps one idle;
//! - the API calls, on [`Engine`];
//! - [`host_facts`]: what only the daemon's costly `GET /info` tells, asked once per daemon
//!   instance on a host;
//! - [`bugs`]: the Engine's bugs that hit siblings, judged from its version.
//!
//! The relay's state machine reaches it through [`crate::relay::effects::SiblingEngine`], which its unit
//! tests implement with a fake.

mod api;
pub(crate) mod bugs;
pub(crate) mod host_facts;
mod transport;

pub(crate) use api::{CreateError, Engine, ExitWait, NoDaemon, Patience, WaitError, WaitFor};
pub(crate) use host_facts::HostFacts;
pub(crate) use transport::DaemonFacts;
