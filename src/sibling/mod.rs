//! The sibling container that runs the real executor beside the agent container.
//!
//! - [`spec`]: what the container is made of (pure); [`labels`]: the labels it carries.
//! - [`placement`]: its image and the host paths it shares, decided once for the relay and `doctor`.
//! - [`discover`]: what the shim learns about its own container and about host pids.
//! - [`engine`]: the Docker Engine API calls, and the [`engine::SiblingEngine`] trait the relay
//!   is written against.
//! - [`inventory`]: the siblings on a host and the state of their runs (`ps`, `gc`).

pub mod discover;
pub mod engine;
pub mod inventory;
pub mod labels;
pub mod placement;
pub mod spec;
