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

use std::path::{Component, Path, PathBuf};

use crate::no_follow;

/// How deep below the sandbox links are looked for: the isolator makes a volume's parent
/// directories for a nested container path, rarely more than a few levels.
const MAX_DEPTH: usize = 4;
/// How many entries the look may read before it stops: a sandbox full of files is not walked
/// whole at every launch.
const MAX_ENTRIES: usize = 10_000;

/// What the look found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LinkedVolumes {
    /// Volume directories the sandbox links to, each once, as the shim sees them.
    pub volumes: Vec<PathBuf>,
    /// Links into `<work_dir>/volumes` that were refused, with why.
    pub refused: Vec<(PathBuf, String)>,
    /// The look stopped at [`MAX_ENTRIES`].
    pub truncated: bool,
}

/// The volumes the sandbox links to (see the module's rules).
pub fn linked_volumes(sandbox: &Path, work_dir: &Path) -> LinkedVolumes {
    let roles = work_dir.join("volumes/roles");
    let mut found = LinkedVolumes::default();
    let mut seen = 0usize;
    let mut pending = vec![(sandbox.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_ENTRIES {
                found.truncated = true;
                return found;
            }
            // The entry's own type, never its target's.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && depth + 1 < MAX_DEPTH {
                pending.push((entry.path(), depth + 1));
            } else if kind.is_symlink() {
                let Ok(target) = std::fs::read_link(entry.path()) else {
                    continue;
                };
                if !target.starts_with(work_dir.join("volumes")) {
                    continue;
                }
                match volume_target(&target, &roles) {
                    Ok(()) => {
                        if !found.volumes.contains(&target) {
                            found.volumes.push(target);
                        }
                    }
                    Err(why) => found.refused.push((entry.path(), why)),
                }
            }
        }
    }
    found.volumes.sort();
    found
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
        assert!(!found.truncated);
    }
}
