//! Bugs of the Docker Engine that hit siblings, judged from the engine's version alone (the
//! `Server` header every answer carries: see [`DaemonFacts`]): the version read once, here, and
//! each judgement made once, for the relay ([`crate::sibling::placement::auto_remove`]) and
//! `doctor`.

use super::DaemonFacts;

/// `20.10.24+dfsg1` → (20, 10, 24).
pub(crate) fn engine_version(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.split(['.', '-', '+', '~']);
    let mut next = || parts.next()?.parse().ok();
    Some((next()?, next()?, next().unwrap_or(0)))
}

/// Whether the engine can deadlock when many containers exit at once (moby/moby#46661).
///
/// libnetwork's `processEndpointDelete` takes the controller's lock, then the network's, while
/// `getSvcRecords` takes them the other way round; with many endpoints of the host network going
/// at once (a framework's teardown, an agent's drain: hundreds of siblings exiting) the two meet,
/// and the daemon stops: containers stay "Up", `inspect` hangs, every later launch waits. Measured
/// with Debian's 20.10.24+dfsg1: 1000 siblings exiting at once left 650 of them stuck.
///
/// Fixed on master by moby/moby#42545 (merged June 2021, so in every release cut from master
/// after it: 22.06's betas and 23.0.0 on), and in the 20.10 line by its backport
/// moby/libnetwork#2679, vendored by moby/moby#46693, first released in 20.10.27 (its release
/// notes: "Fix a deadlock in libnetwork which could prevent containers from starting.
/// moby/moby#46693"). Before that, moby/moby#44682 (20.10.22) backported only the
/// `processEndpointCreate` half (moby/moby#42569), which is why #46661 was still seen on 20.10.23.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExitStormDeadlock {
    Fixed,
    /// The version has the bug (the text says which, and what to upgrade to).
    Affected(String),
    /// The version does not tell: a distribution's build of an affected release, which may
    /// carry the backport, or a version that cannot be read.
    Unknown(String),
}

/// The first 20.10 release with the fix, and the first release of the next majors.
const FIXED_IN_20_10: (u32, u32, u32) = (20, 10, 27);
const FIXED_FROM_MASTER: (u32, u32, u32) = (21, 0, 0);

/// What to upgrade to, as the warning names it.
pub(crate) const EXIT_STORM_UPGRADE: &str =
    "upgrade Docker Engine to 20.10.27 or later on the 20.10 line, or to 23.0.0 or later";

/// Judges [`ExitStormDeadlock`] from the daemon's version.
pub(crate) fn exit_storm_deadlock(facts: &DaemonFacts) -> ExitStormDeadlock {
    let shown = &facts.version;
    let Some(version) = engine_version(shown) else {
        return ExitStormDeadlock::Unknown(
            "the version cannot be read, so whether it has moby/moby#46661 (a deadlock when many \
             siblings exit at once) cannot be told; it is fixed in 20.10.27 and 23.0.0"
                .to_string(),
        );
    };
    if version >= FIXED_FROM_MASTER || (version >= FIXED_IN_20_10 && version.0 == 20) {
        return ExitStormDeadlock::Fixed;
    }
    let upstream = format!("{}.{}.{}", version.0, version.1, version.2);
    let bug = "many siblings exiting at once (a framework's teardown, an agent's drain) can \
               deadlock the daemon: siblings stay \"Up\", inspect hangs, every later launch waits \
               (moby/moby#46661)";
    // A distribution's own build (`20.10.24+dfsg1`, `20.10.21-0ubuntu1`): it may have taken the
    // backport without taking the release. Debian's builds of 20.10.24+dfsg1, up to
    // 20.10.24+dfsg1-1+deb12u1 (bookworm's, whose changelog names only CVE-2024-41110 since
    // 20.10.24), did not: the deadlock above was measured on one.
    if shown.len() > upstream.len() && shown.starts_with(&upstream) {
        let debian = if shown.contains("dfsg") {
            " (Debian's builds of 20.10.24+dfsg1 up to 20.10.24+dfsg1-1+deb12u1 do not)"
        } else {
            ""
        };
        return ExitStormDeadlock::Unknown(format!(
            "a distribution's build of {upstream}, with which {bug}, unless the distribution \
             backported the fix (moby/libnetwork#2679), which its version cannot tell{debian}; \
             {EXIT_STORM_UPGRADE}"
        ));
    }
    ExitStormDeadlock::Affected(format!("with this version, {bug}; {EXIT_STORM_UPGRADE}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(version: &str) -> ExitStormDeadlock {
        exit_storm_deadlock(&DaemonFacts {
            version: version.into(),
        })
    }

    #[test]
    fn versions_are_read_as_the_engine_writes_them() {
        assert_eq!(engine_version("20.10.24+dfsg1"), Some((20, 10, 24)));
        assert_eq!(engine_version("25.0"), Some((25, 0, 0)));
        assert_eq!(engine_version("28.2.2"), Some((28, 2, 2)));
        assert_eq!(engine_version("dev"), None);
        assert_eq!(engine_version(""), None);
    }

    /// The boundaries on both sides: the last affected and the first fixed of the 20.10 line,
    /// and the next majors.
    #[test]
    fn the_exit_storm_deadlock_is_judged_from_the_version() {
        for affected in ["20.10.26", "20.10.0", "19.03.15", "18.09.9"] {
            match judge(affected) {
                ExitStormDeadlock::Affected(why) => {
                    assert!(why.contains("moby/moby#46661"), "{why}");
                    assert!(why.contains("20.10.27") && why.contains("23.0.0"), "{why}");
                }
                other => panic!("{affected}: {other:?}"),
            }
        }
        for fixed in ["20.10.27", "20.10.28", "23.0.0", "24.0.7", "28.2.2", "25.0"] {
            assert_eq!(judge(fixed), ExitStormDeadlock::Fixed, "{fixed}");
        }
        // A distribution's build of an affected release: the version cannot tell, and says so.
        match judge("20.10.24+dfsg1") {
            ExitStormDeadlock::Unknown(why) => {
                assert!(why.contains("moby/libnetwork#2679"), "{why}");
                assert!(why.contains("20.10.24+dfsg1-1+deb12u1 do not"), "{why}");
                assert!(why.contains("upgrade Docker Engine to 20.10.27"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            judge("20.10.21-0ubuntu1"),
            ExitStormDeadlock::Unknown(why) if !why.contains("Debian")
        ));
        // A distribution's build of a fixed release is fixed.
        assert_eq!(judge("20.10.27+dfsg1"), ExitStormDeadlock::Fixed);
        assert!(matches!(judge("dev"), ExitStormDeadlock::Unknown(_)));
        assert!(matches!(judge(""), ExitStormDeadlock::Unknown(_)));
    }
}
