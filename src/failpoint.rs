//! Pause points for the fault suite (`tests/faults.rs`): the shim freezes at a step of a launch
//! so that a test can kill the agent container exactly there.
//!
//! They exist only in builds with the `failpoints` feature, which the test command enables: a
//! release binary has no way to pause and holds none of these names. Even then, the pause is a
//! key of the operator's configuration file (`pause_at`), never a variable of the launch
//! environment, which a task controls.

#[cfg(feature = "failpoints")]
mod enabled {
    use crate::config::{Key, Settings};

    /// A step of a launch at which the shim can be frozen.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum PausePoint {
        BeforeCreate,
        BeforeStart,
        BeforeCheckpoint,
        DuringCheckpoint,
        AfterCheckpoint,
    }

    const NAMES: [(PausePoint, &str); 5] = [
        (PausePoint::BeforeCreate, "before-create"),
        (PausePoint::BeforeStart, "before-start"),
        (PausePoint::BeforeCheckpoint, "before-checkpoint"),
        (PausePoint::DuringCheckpoint, "during-checkpoint"),
        (PausePoint::AfterCheckpoint, "after-checkpoint"),
    ];

    impl PausePoint {
        pub fn name(self) -> &'static str {
            NAMES
                .iter()
                .find(|(p, _)| *p == self)
                .map(|(_, n)| *n)
                .expect("every point is named")
        }
    }

    pub const KEYS: &[Key] = &[Key {
        name: "pause_at",
        default: "unset",
        apply: |s, v| {
            let text = v.as_str().unwrap_or_default();
            let point = NAMES.iter().find(|(_, n)| *n == text).ok_or_else(|| {
                let names: Vec<&str> = NAMES.iter().map(|(_, n)| *n).collect();
                format!("{v} is not one of {}", names.join(", "))
            })?;
            s.pause_at = Some(point.0);
            Ok(())
        },
    }];

    /// Freezes the whole shim, on purpose, when the configuration names `point`.
    pub fn pause_if(settings: &Settings, point: PausePoint) {
        if settings.pause_at == Some(point) {
            tracing::warn!(point = point.name(), "paused by the failpoint pause_at");
            loop {
                std::thread::park();
            }
        }
    }
}

#[cfg(feature = "failpoints")]
pub use enabled::{pause_if, PausePoint, KEYS};

/// Without the feature the configuration knows no failpoint key.
#[cfg(not(feature = "failpoints"))]
pub const KEYS: &[crate::config::Key] = &[];

/// `failpoint!(settings, BeforeCreate)`: a pause point in test builds, nothing at all otherwise.
#[macro_export]
macro_rules! failpoint {
    ($settings:expr, $point:ident) => {{
        #[cfg(feature = "failpoints")]
        $crate::failpoint::pause_if($settings, $crate::failpoint::PausePoint::$point);
        #[cfg(not(feature = "failpoints"))]
        let _ = $settings;
    }};
}
