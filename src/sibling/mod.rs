//! The sibling container that runs the real executor beside the agent container.
//!
//! - [`spec`]: what the container is made of (pure).
//! - [`discover`]: what the shim learns about its own container and about host pids.
//! - [`engine`]: the Docker Engine API calls.
//! - [`inventory`]: the siblings on a host and the state of their runs (`ps`, `gc`).

pub mod discover;
pub mod engine;
pub mod inventory;
pub mod spec;
