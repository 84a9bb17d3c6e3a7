//! What the shim shares with the Mesos agent: the executors it forks, the on-disk layout of a
//! run, the pid checkpoint, and the cgroups of the Mesos containerizer's linux launcher.

pub mod cgroups;
pub mod checkpoint;
pub mod executor;
pub mod layout;
