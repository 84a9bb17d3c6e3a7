//! The mount table (`/proc/self/mountinfo`) and mount identities.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;

/// The mount points listed in a `/proc/<pid>/mountinfo`, with the root of each mount within its
/// filesystem: `(root, mount point)`.
pub(crate) fn mounts(mountinfo: &str) -> impl Iterator<Item = (&str, &str)> {
    mountinfo.lines().filter_map(|line| {
        // Field 4 is the root of the mount within its filesystem, field 5 the mount point.
        let mut fields = line.split_whitespace();
        let root = fields.nth(3)?;
        Some((root, fields.next()?))
    })
}

/// Whether `path` is a mount point in `mountinfo`.
pub(crate) fn is_mount_point(mountinfo: &str, path: &Path) -> bool {
    let path = path.to_string_lossy();
    mounts(mountinfo).any(|(_, target)| unescape_octal(target) == path)
}

/// mountinfo writes space, tab, newline and backslash in paths as `\040`-style octal escapes.
fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if let (b'\\', Some(digits)) = (bytes[i], octal) {
            let value = digits.iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
            if let Ok(v) = u8::try_from(value) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether something is mounted right at one of `names` in `dir` (not through a link there),
/// told by each one's mount ID against `dir`'s: `Some(false)` where none is (or none exists),
/// `None` where the kernel cannot tell (before Linux 5.8, or a path unreadable).
pub(crate) fn mount_point_among(dir: &Path, names: &[&str]) -> Option<bool> {
    let dir_id = mount_id(dir).ok()?;
    for name in names {
        match mount_id(&dir.join(name)) {
            Ok(id) if id != dir_id => return Some(true),
            Ok(_) | Err(Errno::ENOENT) => {}
            Err(_) => return None,
        }
    }
    Some(false)
}

/// The ID of the mount `path` is on, the path's last component not followed.
fn mount_id(path: &Path) -> Result<u64, Errno> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: an all-zero statx is a valid value for the kernel to fill.
    let mut stx: nix::libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: the path is NUL-terminated and outlives the call; stx is ours to write.
    let r = unsafe {
        nix::libc::statx(
            nix::libc::AT_FDCWD,
            c_path.as_ptr(),
            nix::libc::AT_SYMLINK_NOFOLLOW | nix::libc::AT_NO_AUTOMOUNT,
            nix::libc::STATX_MNT_ID,
            &mut stx,
        )
    };
    Errno::result(r)?;
    match stx.stx_mask & nix::libc::STATX_MNT_ID {
        0 => Err(Errno::ENOSYS),
        _ => Ok(stx.stx_mnt_id),
    }
}
