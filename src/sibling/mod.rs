//! The sibling container that runs the real executor beside the agent container.
//!
//! - [`spec`]: what the container is made of (pure); [`labels`]: the labels it carries;
//!   [`label_sets`]: the labels each release wrote, and how `gc` reads them.
//! - [`protocol`]: what passes between the shim and the sibling's init, versioned.
//! - [`placement`]: its image, the host paths it shares, its init binary, auto-remove: decided
//!   once for the relay and `doctor`.
//! - [`identity`]: whether a container is a sibling, on facts a task's labels cannot set, and the
//!   paths its labels may name.
//! - [`inventory`]: the siblings on a host and the state of their runs (`ps`, `gc`, a launch's
//!   sweep).

pub(crate) mod identity;
pub(crate) mod inventory;
pub(crate) mod label_sets;
pub(crate) mod labels;
pub mod placement;
pub mod protocol;
pub mod spec;
