//! The sibling container that runs the real executor beside the agent container.
//!
//! - [`spec`]: what the container is made of (pure); [`labels`]: the labels it carries.
//! - [`protocol`]: what passes between the shim and the sibling's init, versioned.
//! - [`placement`]: its image, the host paths it shares, its init binary, auto-remove: decided
//!   once for the relay and `doctor`.
//! - [`agent`]: the agent container the shim runs in, as Docker describes it.
//! - [`engine`]: the Docker Engine API calls.
//! - [`inventory`]: the siblings on a host and the state of their runs (`ps`, `gc`, a launch's
//!   sweep).

pub mod agent;
pub mod engine;
pub mod inventory;
pub mod labels;
pub mod placement;
pub mod protocol;
pub mod spec;
