//! The sibling container that runs the real executor beside the agent container.
//!
//! - [`spec`]: what the container is made of (pure); [`labels`]: the labels it carries;
//!   [`label_sets`]: the labels each release wrote, and how `gc` reads them.
//! - [`protocol`]: what passes between the shim and the sibling's init, versioned.
//! - [`placement`]: its image, the host paths it shares, its init binary, auto-remove: decided
//!   once for the relay and `doctor`.
//! - [`engine`]: the Docker Engine API calls; [`host_facts`]: what only the daemon's costly
//!   `GET /info` tells, asked once per daemon instance on a host; [`engine_bugs`]: the Engine's
//!   bugs that hit siblings, judged from its version.
//! - [`identity`]: whether a container is a sibling, on facts a task's labels cannot set, and the
//!   paths its labels may name.
//! - [`inventory`]: the siblings on a host and the state of their runs (`ps`, `gc`, a launch's
//!   sweep).

pub mod engine;
pub mod engine_bugs;
pub mod host_facts;
pub mod identity;
pub mod inventory;
pub mod label_sets;
pub mod labels;
pub mod placement;
pub mod protocol;
pub mod spec;
