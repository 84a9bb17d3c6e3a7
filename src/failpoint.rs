//! Pause points for the fault suite (`tests/faults.rs`): a launch holds at one of its steps so
//! that a test can kill the agent container, or signal the shim, exactly there.
//!
//! They exist only in builds with the `failpoints` feature, which the test command enables: a
//! release binary has no way to pause and holds none of these names. Even then, the pause is a
//! key of the operator's configuration file (`pause_at`, owned by [`crate::config`]), never a
//! variable of the launch environment, which a task controls. A pause is an await that never
//! ends: the shim keeps acting on signals while it holds, as it must in every phase.

#[cfg(feature = "failpoints")]
mod enabled {
    /// A step of a launch at which the shim can be held.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum PausePoint {
        BeforeCreate,
        BeforeStart,
        BeforeCheckpoint,
        DuringCheckpoint,
        AfterCheckpoint,
    }

    impl PausePoint {
        pub(crate) const ALL: [PausePoint; 5] = [
            PausePoint::BeforeCreate,
            PausePoint::BeforeStart,
            PausePoint::BeforeCheckpoint,
            PausePoint::DuringCheckpoint,
            PausePoint::AfterCheckpoint,
        ];

        pub(crate) fn name(self) -> &'static str {
            match self {
                PausePoint::BeforeCreate => "before-create",
                PausePoint::BeforeStart => "before-start",
                PausePoint::BeforeCheckpoint => "before-checkpoint",
                PausePoint::DuringCheckpoint => "during-checkpoint",
                PausePoint::AfterCheckpoint => "after-checkpoint",
            }
        }

        pub(crate) fn parse(text: &str) -> Result<PausePoint, String> {
            PausePoint::ALL
                .into_iter()
                .find(|p| p.name() == text)
                .ok_or_else(|| {
                    let names: Vec<&str> = PausePoint::ALL.iter().map(|p| p.name()).collect();
                    format!("{text:?} is not one of {}", names.join(", "))
                })
        }
    }

    /// Holds the launch for good when `configured` names `point`.
    pub(crate) async fn pause_if(configured: Option<PausePoint>, point: PausePoint) {
        if configured == Some(point) {
            tracing::warn!(point = point.name(), "paused by the failpoint pause_at");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(feature = "failpoints")]
pub(crate) use enabled::{pause_if, PausePoint};

/// `failpoint!(pause_at, BeforeCreate)` in an async fn: a pause point in test builds, nothing at
/// all otherwise (the `pause_at` expression is not even compiled).
#[macro_export]
macro_rules! failpoint {
    ($pause_at:expr, $point:ident) => {{
        #[cfg(feature = "failpoints")]
        {
            $crate::failpoint::pause_if($pause_at, $crate::failpoint::PausePoint::$point).await;
        }
    }};
}

#[cfg(all(test, feature = "failpoints"))]
mod tests {
    use super::*;

    #[test]
    fn every_point_parses_from_its_own_name_and_nothing_else() {
        for point in PausePoint::ALL {
            assert_eq!(PausePoint::parse(point.name()), Ok(point));
        }
        let e = PausePoint::parse("before-lunch").unwrap_err();
        assert!(e.contains("before-create, before-start"), "{e}");
    }
}
