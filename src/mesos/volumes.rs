//! The persistent volumes a run may use: those its sandbox links to.
//!
//! Mesos's posix filesystem isolator gives a task its persistent volume by a link in the sandbox,
//! `<sandbox>/<container path>` -> `<work_dir>/volumes/roles/<role>/<persistence id>` (a role may
//! hold `/`). A sibling gets exactly those targets, each at its own path, and nothing else of
//! `<work_dir>/volumes`: not the volumes of other roles and frameworks.
//!
//! The sandbox is the task's to write, so each link is only read (never followed), and its target
//! is taken only when it lies below `<work_dir>/volumes/roles/` as written (no `.` or `..`) and is
//! a real directory reached from `/` without a link.

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::SFlag;

use crate::no_follow;

/// How deep below the sandbox links are looked for: the isolator makes a volume's parent
/// directories for a nested container path, rarely more than a few levels.
const MAX_DEPTH: usize = 4;
/// How many entries the look may read before it stops: a sandbox full of files is not walked
/// whole at every launch. A volume linked from an entry past this is not found, and the
/// launch's log says so (see [`LinkedVolumes::incomplete`]).
pub(crate) const MAX_ENTRIES: usize = 10_000;

/// What the look found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct LinkedVolumes {
    /// Volume directories the sandbox links to, each once, as the shim sees them.
    pub volumes: Vec<PathBuf>,
    /// Links into `<work_dir>/volumes` that were refused, with why.
    pub refused: Vec<(PathBuf, String)>,
    /// The look stopped after reading this many entries, before it had read them all.
    pub stopped_after: Option<usize>,
}

impl LinkedVolumes {
    /// Where the look stopped early: what may be missing from the sibling, and how to fix it.
    pub(crate) fn incomplete(&self) -> Option<String> {
        let cap = self.stopped_after?;
        Some(format!(
            "stopped looking for links to persistent volumes after {cap} entries of the sandbox (its top \
             directory first, then up to {} levels below it): a persistent volume linked from an entry past \
             those is not mounted in the sibling, and its task will not find it there. Name such a volume in \
             \"mounts\" of the configuration file (\"<host path>:<path>\"), or keep fewer files at the top of \
             the sandbox",
            MAX_DEPTH - 1
        ))
    }

    /// Notes the link `name` in the directory `dir` (shown as `link`): a volume, refused, or none
    /// of the shim's business. Read through the directory's descriptor: a directory on the way
    /// swapped for a link meanwhile (the sandbox is the task's) cannot make another run's link
    /// look like this one's.
    fn note_link(&mut self, dir: &OwnedFd, name: &OsStr, link: &Path, work_dir: &Path) {
        let Ok(target) = nix::fcntl::readlinkat(dir, name).map(PathBuf::from) else {
            return;
        };
        if !target.starts_with(work_dir.join("volumes")) {
            return;
        }
        match volume_target(&target, &work_dir.join("volumes/roles")) {
            Ok(()) => {
                if !self.volumes.contains(&target) {
                    self.volumes.push(target);
                }
            }
            Err(why) => self.refused.push((link.to_path_buf(), why)),
        }
    }
}

/// The volumes the sandbox links to (see the module's rules), looking at [`MAX_ENTRIES`]
/// entries at most.
pub(crate) fn linked_volumes(sandbox: &Path, work_dir: &Path) -> LinkedVolumes {
    linked_volumes_within(sandbox, work_dir, MAX_ENTRIES)
}

/// [`linked_volumes`], looking at `max_entries` entries at most. Each directory is read whole
/// before those below it, so the top of the sandbox, where the isolator links volumes, comes
/// first.
fn linked_volumes_within(sandbox: &Path, work_dir: &Path, max_entries: usize) -> LinkedVolumes {
    let mut found = LinkedVolumes::default();
    let mut seen = 0usize;
    let mut pending = vec![(sandbox.to_path_buf(), 0usize)];
    'walk: while let Some((dir, depth)) = pending.pop() {
        // Reached from `/` without a link: a directory swapped for one since it was listed is
        // not followed into another run's sandbox.
        let Ok(fd) = no_follow::open_dir(&dir) else {
            continue;
        };
        for (name, kind) in entries_of(&fd) {
            seen += 1;
            if seen > max_entries {
                found.stopped_after = Some(max_entries);
                break 'walk;
            }
            match kind {
                SFlag::S_IFDIR if depth + 1 < MAX_DEPTH => {
                    pending.push((dir.join(&name), depth + 1))
                }
                SFlag::S_IFLNK => found.note_link(&fd, &name, &dir.join(&name), work_dir),
                _ => {}
            }
        }
    }
    found.volumes.sort();
    found
}

/// The entries of the directory `dir` (`.` and `..` aside), each with its own type (never its
/// target's), read through the descriptor.
fn entries_of(dir: &OwnedFd) -> Vec<(OsString, SFlag)> {
    let Ok(listing) = dir
        .try_clone()
        .and_then(|fd| nix::dir::Dir::from_fd(fd).map_err(Into::into))
    else {
        return Vec::new();
    };
    let mut entries = Vec::new();
    for entry in listing.into_iter().flatten() {
        let name = OsStr::from_bytes(entry.file_name().to_bytes()).to_os_string();
        if name == "." || name == ".." {
            continue;
        }
        // The type the listing gives, where the filesystem gives one (no call per entry).
        let kind = match entry.file_type() {
            Some(nix::dir::Type::Directory) => Ok(SFlag::S_IFDIR),
            Some(nix::dir::Type::Symlink) => Ok(SFlag::S_IFLNK),
            Some(_) => Ok(SFlag::S_IFREG),
            None => nix::sys::stat::fstatat(
                dir,
                name.as_os_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT),
        };
        if let Ok(kind) = kind {
            entries.push((name, kind));
        }
    }
    entries
}

/// Whether `target` may be mounted as a persistent volume: below `roles` by at least a role and
/// a persistence ID, written without `.` or `..`, a real directory reached without links.
fn volume_target(target: &Path, roles: &Path) -> Result<(), String> {
    let normal = target
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    let below = target
        .strip_prefix(roles)
        .map(|rest| rest.components().count())
        .unwrap_or(0);
    if !normal || below < 2 {
        return Err(format!(
            "{} is not a persistent volume's directory (<work_dir>/volumes/roles/<role>/<id>)",
            target.display()
        ));
    }
    no_follow::open_dir(target)
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn only_the_volumes_the_sandbox_links_to_and_only_real_ones() {
        let dir = tempfile::tempdir().unwrap();
        let work_dir = dir.path();
        let sandbox = work_dir.join("slaves/S/frameworks/F/executors/E/runs/C");
        std::fs::create_dir_all(sandbox.join("nested/deeper")).unwrap();
        let mine = work_dir.join("volumes/roles/web/p-1");
        let theirs = work_dir.join("volumes/roles/db/p-2");
        let hierarchical = work_dir.join("volumes/roles/eng/backend/p-3");
        for v in [&mine, &theirs, &hierarchical] {
            std::fs::create_dir_all(v).unwrap();
        }
        symlink(&mine, sandbox.join("data")).unwrap();
        symlink(&hierarchical, sandbox.join("nested/deeper/cache")).unwrap();
        // A link elsewhere is the task's business, never a volume.
        symlink("/etc", sandbox.join("etc")).unwrap();
        // Links into volumes/ that are not a volume's directory are refused.
        symlink(work_dir.join("volumes"), sandbox.join("all")).unwrap();
        symlink(
            work_dir.join("volumes/roles/db/../web/p-1"),
            sandbox.join("dots"),
        )
        .unwrap();
        std::fs::create_dir_all(work_dir.join("elsewhere")).unwrap();
        symlink(
            work_dir.join("elsewhere"),
            work_dir.join("volumes/roles/web/p-4"),
        )
        .unwrap();
        symlink(
            work_dir.join("volumes/roles/web/p-4"),
            sandbox.join("linked"),
        )
        .unwrap();

        let found = linked_volumes(&sandbox, work_dir);
        assert_eq!(found.volumes, vec![hierarchical, mine]);
        let refused: Vec<_> = found
            .refused
            .iter()
            .map(|(p, _)| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(refused.len(), 3, "{:?}", found.refused);
        for name in ["all", "dots", "linked"] {
            assert!(refused.contains(&name.to_string()), "{refused:?}");
        }
        assert_eq!(found.stopped_after, None);
        assert_eq!(found.incomplete(), None);
    }

    /// The look reads at most its cap of entries, the top directory first: a volume linked
    /// past the cap is not found, and the look says so, naming the cap and the fixes.
    #[test]
    fn the_look_stops_at_its_cap_and_says_what_may_be_missing() {
        let dir = tempfile::tempdir().unwrap();
        let work_dir = dir.path();
        let sandbox = work_dir.join("slaves/S/frameworks/F/executors/E/runs/C");
        std::fs::create_dir_all(sandbox.join("nested")).unwrap();
        let volume = work_dir.join("volumes/roles/web/p-1");
        std::fs::create_dir_all(&volume).unwrap();
        symlink(&volume, sandbox.join("nested/data")).unwrap();
        for i in 0..3 {
            std::fs::write(sandbox.join(format!("file-{i}")), "").unwrap();
        }
        // Four entries at the top, one below: all five are read within a cap of five.
        let found = linked_volumes_within(&sandbox, work_dir, 5);
        assert_eq!(found.volumes, vec![volume.clone()]);
        assert_eq!(found.stopped_after, None);
        // One file more at the top, and the link below is past the cap.
        std::fs::write(sandbox.join("file-3"), "").unwrap();
        let found = linked_volumes_within(&sandbox, work_dir, 5);
        assert!(found.volumes.is_empty(), "{found:?}");
        assert_eq!(found.stopped_after, Some(5));
        let said = found.incomplete().unwrap();
        for what in [
            "after 5 entries",
            "not mounted in the sibling",
            "\"mounts\"",
            "fewer files at the top",
        ] {
            assert!(said.contains(what), "{what}: {said}");
        }
        // The cap a launch looks within.
        let found = linked_volumes(&sandbox, work_dir);
        assert_eq!(found.volumes, vec![volume]);
        assert_eq!(MAX_ENTRIES, 10_000);
    }

    /// A directory of the walk that is a link when it is read (a task swapped it for one after it
    /// was listed) is not followed into another run's sandbox, whose volume links are not this
    /// run's.
    #[test]
    fn a_directory_swapped_for_a_link_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let work_dir = dir.path();
        let theirs = work_dir.join("slaves/S/frameworks/F/executors/E/runs/THEIRS");
        std::fs::create_dir_all(&theirs).unwrap();
        let volume = work_dir.join("volumes/roles/db/p-2");
        std::fs::create_dir_all(&volume).unwrap();
        symlink(&volume, theirs.join("data")).unwrap();
        assert_eq!(linked_volumes(&theirs, work_dir).volumes, vec![volume]);
        let mine = work_dir.join("slaves/S/frameworks/F/executors/E/runs/MINE");
        std::fs::create_dir_all(&mine).unwrap();
        symlink(&theirs, mine.join("swapped")).unwrap();
        // What the walk would read next, had `swapped` been a directory when it was listed.
        assert!(linked_volumes(&mine.join("swapped"), work_dir)
            .volumes
            .is_empty());
    }
}
