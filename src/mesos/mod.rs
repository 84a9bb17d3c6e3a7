//! What the shim shares with the Mesos agent: the agent process and its flags, the executors it forks, the container it builds
//! for them (user, capabilities, rlimits, namespaces), the on-disk layout of a run, the pid
//! checkpoint, the persistent volumes a sandbox links to, and the cgroups of the Mesos
//! containerizer's linux launcher.

pub(crate) mod agent;
pub(crate) mod cgroups;
pub mod checkpoint;
pub mod container;
pub mod executor;
pub mod layout;
pub mod volumes;
