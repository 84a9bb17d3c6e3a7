//! Reading `/proc` files.

use std::io;

/// Reads a file of `/proc/self`, saying which one and why when it cannot be read: the shim
/// decides things from these files and never falls back to a silent default.
pub(crate) fn read_self(name: &str) -> io::Result<String> {
    let path = format!("/proc/self/{name}");
    read(&path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read {path}: {e}; the shim needs the proc filesystem mounted"),
        )
    })
}

/// Reads a `/proc` file whole. A proc file reports no size: the standard readers ask for one
/// (a stat and a seek) and then start small; here one page-sized buffer takes most in one call,
/// doubled while the file goes on (the shim reads several per launch).
pub(crate) fn read(path: &str) -> io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut bytes = vec![0; 4096];
    let mut len = 0;
    loop {
        if len == bytes.len() {
            bytes.resize(len * 2, 0);
        }
        match file.read(&mut bytes[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(len);
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
