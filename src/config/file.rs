//! The configuration file on disk: where a path really leads, whether root alone decides what is
//! read there, and the read itself.
//!
//! The path is walked here, one entry at a time from `/`, as the kernel would resolve it: every
//! directory a name is looked up in, every symbolic link followed (an operator may link the file,
//! as a Kubernetes ConfigMap mount does) and the file reached are recorded, so that the trust rule
//! sees everything that decides what is read, not only the directories above the file's real
//! location. What is found is read with [`crate::no_follow::read_capped`], the one open of a file
//! someone else may have planted: a FIFO or a device at the path is refused without being opened.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use super::{err, parse, ConfigError, Settings};

/// The kernel's own limit on links followed in one resolution (`MAXSYMLINKS`).
const MAX_LINKS: usize = 40;
/// A configuration file is a few hundred bytes; anything near this is not one.
const MAX_BYTES: u64 = 1 << 20;

/// What one entry on the way to the file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Directory,
    Link,
    /// The entry the path ends at: a regular file, or whatever else is planted there.
    File,
}

/// One entry the path went through, as `lstat` saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    path: PathBuf,
    kind: Kind,
    uid: u32,
    mode: u32,
    /// Device and inode: what the read checks it read.
    id: (u64, u64),
}

impl Entry {
    fn of(path: PathBuf, meta: &Metadata) -> Entry {
        let kind = match meta.file_type() {
            t if t.is_dir() => Kind::Directory,
            t if t.is_symlink() => Kind::Link,
            _ => Kind::File,
        };
        Entry {
            path,
            kind,
            uid: meta.uid(),
            mode: meta.mode(),
            id: (meta.dev(), meta.ino()),
        }
    }

    fn what(&self) -> &'static str {
        match self.kind {
            Kind::Directory => "the directory",
            Kind::Link => "the symbolic link",
            Kind::File => "the file",
        }
    }

    /// Why someone other than root could change what this entry leads to, if anyone could.
    fn ownership_problem(&self) -> Option<String> {
        if self.uid != 0 {
            return Some(format!(
                "{} {} is owned by uid {}, not by root",
                self.what(),
                self.path.display(),
                self.uid
            ));
        }
        // A link's own mode is always 0777 and grants nothing; its directory decides who may
        // replace it, and that directory is on the route too.
        if self.kind == Kind::Link || self.mode & 0o022 == 0 {
            return None;
        }
        let who = if self.mode & 0o002 != 0 {
            "others"
        } else {
            "its group"
        };
        Some(format!(
            "{} {} is writable by {who} (mode {:o})",
            self.what(),
            self.path.display(),
            self.mode & 0o7777
        ))
    }

    /// Why a user other than root cannot get through this entry, if they cannot.
    fn closed_to_other_users(&self) -> Option<String> {
        let (needed, what) = match self.kind {
            Kind::Directory => (0o001, "searchable"),
            Kind::File => (0o004, "readable"),
            Kind::Link => return None,
        };
        (self.mode & needed == 0).then(|| {
            format!(
                "{} {} is not {what} by other users (mode {:o})",
                self.what(),
                self.path.display(),
                self.mode & 0o7777
            )
        })
    }
}

/// The trust rule on its own: every entry on the route (from `/` to the file) is owned by root,
/// no directory and not the file is writable by group or others, and the route ends at a file.
fn route_problem(route: &[Entry]) -> Option<String> {
    let last = route.last()?;
    if last.kind == Kind::Directory {
        return Some(format!(
            "{} is a directory, not a file",
            last.path.display()
        ));
    }
    route.iter().find_map(Entry::ownership_problem)
}

/// A configuration file found at a path.
#[derive(Debug, Clone)]
pub(crate) struct ConfigFile {
    /// The path asked for, as errors name it.
    pub path: PathBuf,
    /// Where the file really is: the path read, with no link in it.
    pub real: PathBuf,
    /// Every entry the path went through, from `/`: each directory a name was looked up in, each
    /// link followed, and last the file.
    route: Vec<Entry>,
}

/// What is at `path`: `Ok(None)` when nothing is (no link on the way, and no entry: the
/// defaults apply). A link that leads nowhere is an error, the same for the relay and `doctor`,
/// which both come here: the operator put something there, and it is not a file.
pub(crate) fn find(path: &Path) -> Result<Option<ConfigFile>, ConfigError> {
    let shown = path.display().to_string();
    let absolute = std::path::absolute(path).map_err(|e| err(&shown, e.to_string()))?;
    match walk(&absolute) {
        Ok(Some((real, route))) => Ok(Some(ConfigFile {
            path: path.to_path_buf(),
            real,
            route,
        })),
        Ok(None) => Ok(None),
        Err(why) => Err(err(&shown, why)),
    }
}

/// Resolves the absolute `path` one entry at a time from `/`, as the kernel would, recording each
/// entry; the real path and the route, or `None` when nothing is there and no link was followed.
fn walk(path: &Path) -> Result<Option<(PathBuf, Vec<Entry>)>, String> {
    let mut real = PathBuf::from("/");
    let mut route = vec![look_at(&real)?.ok_or("/ does not exist")?];
    let mut pending: VecDeque<OsString> = names(path).collect();
    let mut last_link: Option<(PathBuf, PathBuf)> = None;
    let mut links = 0;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            real.pop();
            continue;
        }
        let next = real.join(&name);
        let Some(entry) = look_at(&next)? else {
            return match last_link {
                None => Ok(None),
                Some((link, target)) => Err(dangling(path, &link, &target, &next)),
            };
        };
        if entry.kind == Kind::Link {
            links += 1;
            if links > MAX_LINKS {
                return Err(format!(
                    "{} goes through more than {MAX_LINKS} symbolic links",
                    path.display()
                ));
            }
            let target = std::fs::read_link(&next)
                .map_err(|e| io_problem("cannot read the link", &next, &e))?;
            if target.is_absolute() {
                real = PathBuf::from("/");
            }
            for name in names(&target).rev() {
                pending.push_front(name);
            }
            last_link = Some((next, target));
        } else {
            real = next;
        }
        route.push(entry);
    }
    Ok(Some((real, route)))
}

/// The names of `path` to look up, `..` among them; `/` and `.` look nothing up.
fn names(path: &Path) -> impl DoubleEndedIterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(name) => Some(name.to_os_string()),
        Component::ParentDir => Some("..".into()),
        _ => None,
    })
}

/// The entry at `path`, not following a link; `None` when there is none.
fn look_at(path: &Path) -> Result<Option<Entry>, String> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(Entry::of(path.to_path_buf(), &meta))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_problem("cannot look at", path, &e)),
    }
}

fn dangling(path: &Path, link: &Path, target: &Path, missing: &Path) -> String {
    format!(
        "{} is a dangling symbolic link: {} points to {}, and {} does not exist; remove the link \
         to run with the defaults, or point it at the file",
        path.display(),
        link.display(),
        target.display(),
        missing.display()
    )
}

/// An I/O error on `path`, with what to do when it is this process's user that may not.
fn io_problem(doing: &str, path: &Path, e: &std::io::Error) -> String {
    let uid = nix::unistd::geteuid().as_raw();
    if e.kind() != std::io::ErrorKind::PermissionDenied || uid == 0 {
        return format!("{doing} {}: {e}", path.display());
    }
    // With the agent's --switch_user (its default), the launch helper becomes the task's user
    // before it runs the executor: the shim reads its file as that user, never as root.
    format!(
        "{doing} {} as uid {uid}: {e}; a launch runs as the task's user under the agent's --switch_user, \
         so the file must be readable by every user: mode 0644, and its directories 0755 (doctor checks this)",
        path.display()
    )
}

impl ConfigFile {
    /// The relay's rule: why it would not read this file, if it would not. Root must own every
    /// entry on the route, nobody else may write a directory or the file, and none of it may lie
    /// under the agent's `work_dir`, where tasks write.
    pub(crate) fn untrusted(&self, work_dir: &Path) -> Option<String> {
        let work_dir = work_dir
            .canonicalize()
            .unwrap_or_else(|_| work_dir.to_path_buf());
        if let Some(e) = self.route.iter().find(|e| e.path.starts_with(&work_dir)) {
            return Some(format!(
                "{} is under the agent's work_dir {}, where tasks write",
                e.path.display(),
                work_dir.display()
            ));
        }
        route_problem(&self.route)
    }

    /// Why a launch that does not run as root (the agent's `--switch_user`, its default) could
    /// not read the file, if it could not: refused at install by `doctor`, since the relay cannot
    /// read it before the launch helper switches to the task's user.
    pub(crate) fn closed_to_other_users(&self) -> Option<String> {
        self.route.iter().find_map(Entry::closed_to_other_users)
    }

    /// Reads and parses the file, only a regular file and only the one found (see
    /// [`crate::no_follow::read_capped`]).
    pub(crate) fn read(&self) -> Result<Settings, ConfigError> {
        let shown = self.path.display().to_string();
        let (bytes, meta) = crate::no_follow::read_capped(&self.real, MAX_BYTES)
            .map_err(|e| err(&shown, io_problem("cannot read", &self.real, &e)))?
            .ok_or_else(|| {
                err(
                    &shown,
                    format!("{} went away as it was read", self.real.display()),
                )
            })?;
        if Some((meta.dev(), meta.ino())) != self.route.last().map(|e| e.id) {
            return Err(err(
                &shown,
                format!("{} was replaced as it was read", self.real.display()),
            ));
        }
        let text = String::from_utf8(bytes).map_err(|_| err(&shown, "not UTF-8 text"))?;
        parse(&text).map_err(|e| ConfigError {
            key: format!("{shown}: {}", e.key),
            message: e.message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{load_for_operator, load_trusted};
    use super::*;
    use crate::test_support::trusted_dir;
    use std::os::unix::fs::{lchown, symlink, PermissionsExt};
    use std::time::Duration;

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
        set_mode(path, 0o644);
    }

    /// Runs `f` on another thread and fails if it has not returned within a few seconds: what
    /// blocks on a FIFO never would.
    fn at_once<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()));
        rx.recv_timeout(Duration::from_secs(5))
            .expect("blocked on what is at the configuration path")
    }

    fn entry(path: &str, kind: Kind, uid: u32, mode: u32) -> Entry {
        Entry {
            path: path.into(),
            kind,
            uid,
            mode,
            id: (0, 0),
        }
    }

    #[test]
    fn the_trust_rule_wants_root_and_no_other_writer_all_the_way() {
        let route = |dir: Entry, link: Entry, file: Entry| {
            vec![
                entry("/", Kind::Directory, 0, 0o40755),
                entry("/etc", Kind::Directory, 0, 0o40755),
                dir,
                link,
                entry("/srv", Kind::Directory, 0, 0o40755),
                file,
            ]
        };
        let dir = || entry("/etc/shim", Kind::Directory, 0, 0o40755);
        let link = || entry("/etc/shim/config.json", Kind::Link, 0, 0o120777);
        let file = || entry("/srv/config.json", Kind::File, 0, 0o100644);
        assert_eq!(route_problem(&route(dir(), link(), file())), None);
        for (spoilt, why) in [
            (
                route(
                    dir(),
                    link(),
                    entry("/srv/config.json", Kind::File, 1000, 0o100644),
                ),
                "the file /srv/config.json is owned by uid 1000",
            ),
            (
                route(
                    dir(),
                    link(),
                    entry("/srv/config.json", Kind::File, 0, 0o100664),
                ),
                "writable by its group",
            ),
            (
                route(
                    entry("/etc/shim", Kind::Directory, 0, 0o41777),
                    link(),
                    file(),
                ),
                "the directory /etc/shim is writable by others",
            ),
            (
                route(
                    entry("/etc/shim", Kind::Directory, 1000, 0o40755),
                    link(),
                    file(),
                ),
                "the directory /etc/shim is owned by uid 1000",
            ),
            (
                route(
                    dir(),
                    entry("/etc/shim/config.json", Kind::Link, 1000, 0o120777),
                    file(),
                ),
                "the symbolic link /etc/shim/config.json is owned by uid 1000",
            ),
            (
                route(
                    dir(),
                    link(),
                    entry("/srv/config.json", Kind::Directory, 0, 0o40755),
                ),
                "is a directory, not a file",
            ),
        ] {
            let p = route_problem(&spoilt).expect(why);
            assert!(p.contains(why), "{p}");
        }
    }

    /// A link from a directory a user owns to a root file: the user can point the link elsewhere,
    /// so the link's directory counts, not only the directories above the real file.
    #[test]
    fn a_directory_or_link_another_uid_owns_on_the_way_is_refused() {
        let top = trusted_dir();
        let real = top.path().join("real");
        std::fs::create_dir(&real).unwrap();
        set_mode(&real, 0o755);
        write(&real.join("config.json"), "{}");
        let users = top.path().join("users");
        std::fs::create_dir(&users).unwrap();
        set_mode(&users, 0o755);
        let link = users.join("config.json");
        symlink(real.join("config.json"), &link).unwrap();
        let work_dir = Path::new("/var/lib/mesos");
        let file = find(&link).unwrap().unwrap();
        assert_eq!(file.real, real.join("config.json"));
        assert_eq!(file.untrusted(work_dir), None);

        lchown(&link, Some(1000), None).unwrap();
        let why = find(&link).unwrap().unwrap().untrusted(work_dir).unwrap();
        assert!(
            why.contains("the symbolic link") && why.contains("uid 1000"),
            "{why}"
        );
        lchown(&link, Some(0), None).unwrap();

        std::os::unix::fs::chown(&users, Some(1000), None).unwrap();
        let why = find(&link).unwrap().unwrap().untrusted(work_dir).unwrap();
        let expected = format!("the directory {} is owned by uid 1000", users.display());
        assert!(why.contains(&expected), "{why}");
        let e = load_trusted(&link, work_dir).unwrap_err();
        assert!(e.message.contains(&expected), "{e}");
    }

    #[test]
    fn a_fifo_or_a_device_at_the_path_is_refused_without_blocking() {
        use nix::sys::stat::{makedev, mknod, Mode, SFlag};
        let top = trusted_dir();
        let fifo = top.path().join("fifo.json");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o644)).unwrap();
        let device = top.path().join("device.json");
        // The zero device: read without a bound, it never ends.
        mknod(
            &device,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o644),
            makedev(1, 5),
        )
        .expect("mknod needs root (CAP_MKNOD): run the unit tests as root");
        for (planted, what) in [(fifo, "a FIFO"), (device, "a device node")] {
            let path = planted.clone();
            let relay = at_once(move || load_trusted(&path, Path::new("/var/lib/mesos")));
            let e = relay.unwrap_err();
            assert!(
                e.message.contains(what) && e.message.contains("never opened"),
                "{e}"
            );
            let operator = at_once(move || load_for_operator(Some(&planted), None));
            assert_eq!(operator.unwrap_err(), e);
        }
    }

    /// Nothing at the path means the defaults; a link to nothing is an error, the same one for
    /// the relay and the operator's commands (`doctor` among them): `find` decides for both.
    #[test]
    fn a_dangling_link_is_the_same_error_for_the_relay_and_doctor() {
        let top = trusted_dir();
        let work_dir = Path::new("/var/lib/mesos");
        let missing = top.path().join("none.json");
        assert!(find(&missing).unwrap().is_none());
        assert!(load_trusted(&missing, work_dir).unwrap().file.is_none());

        let link = top.path().join("config.json");
        symlink(top.path().join("gone/config.json"), &link).unwrap();
        let relay = load_trusted(&link, work_dir).unwrap_err();
        assert!(relay.message.contains("dangling symbolic link"), "{relay}");
        assert!(relay.message.contains("gone"), "{relay}");
        let operator = load_for_operator(Some(&link), None).unwrap_err();
        assert_eq!(operator.to_string(), relay.to_string());
    }

    #[test]
    fn a_file_other_users_cannot_read_is_named() {
        let top = trusted_dir();
        let path = top.path().join("config.json");
        write(&path, "{}");
        assert_eq!(find(&path).unwrap().unwrap().closed_to_other_users(), None);
        set_mode(&path, 0o600);
        let why = find(&path)
            .unwrap()
            .unwrap()
            .closed_to_other_users()
            .unwrap();
        assert!(
            why.contains("not readable by other users (mode 600)"),
            "{why}"
        );
        set_mode(&path, 0o644);
        set_mode(top.path(), 0o700);
        let why = find(&path)
            .unwrap()
            .unwrap()
            .closed_to_other_users()
            .unwrap();
        assert!(
            why.contains("not searchable by other users (mode 700)"),
            "{why}"
        );
    }

    #[test]
    fn a_file_under_the_work_dir_or_a_world_writable_directory_is_refused() {
        let top = trusted_dir();
        let path = top.path().join("config.json");
        write(&path, "{}");
        let why = find(&path).unwrap().unwrap().untrusted(top.path()).unwrap();
        assert!(why.contains("under the agent's work_dir"), "{why}");
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.json");
        write(&path, "{}");
        // The temp directory lies under /tmp, which anyone may write to.
        let why = find(&path)
            .unwrap()
            .unwrap()
            .untrusted(Path::new("/var/lib/mesos"));
        assert!(why.unwrap().contains("/tmp is writable by others"));
    }

    /// Links are followed as the kernel follows them: relative, absolute, through `..`.
    #[test]
    fn links_lead_where_the_kernel_would_go() {
        let top = trusted_dir();
        std::fs::create_dir_all(top.path().join("a/b")).unwrap();
        write(&top.path().join("a/config.json"), "{\"privileged\": true}");
        symlink("../config.json", top.path().join("a/b/rel")).unwrap();
        symlink(top.path().join("a/b/rel"), top.path().join("abs")).unwrap();
        let file = find(&top.path().join("abs")).unwrap().unwrap();
        assert_eq!(file.real, top.path().join("a/config.json"));
        assert_eq!(file.real, top.path().join("abs").canonicalize().unwrap());
        assert!(file.read().unwrap().privileged);
        let links: Vec<_> = file.route.iter().filter(|e| e.kind == Kind::Link).collect();
        assert_eq!(links.len(), 2);
        symlink("loop", top.path().join("loop")).unwrap();
        let e = find(&top.path().join("loop")).unwrap_err();
        assert!(e.message.contains("more than 40 symbolic links"), "{e}");
    }
}
