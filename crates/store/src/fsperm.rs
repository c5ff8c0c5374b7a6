//! Owner-only files: directories 0700 and files 0600 on Unix (elsewhere the user's profile
//! directory already keeps other users out, and these calls only create).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Creates `dir` (and its parents) if needed and makes it owner-only (0700 on Unix), also when
/// it existed with wider permissions.
pub fn owner_only_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io(dir, e))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| Error::io(dir, e))
    }
    #[cfg(not(unix))]
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// Makes an existing file owner-only (0600 on Unix); creates it empty (owner-only from the
/// start) if it does not exist.
pub fn owner_only_file(path: &Path) -> Result<()> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|e| Error::io(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

/// Overwrites `path` with zeros, syncs it, then removes it: the old bytes are not left in the
/// file's blocks for a later reader of the disk. (On copy-on-write file systems and SSDs the
/// device may keep old blocks; the encrypted store is the protection there, this is the best a
/// program can do for a file written before it existed.) A missing file is not an error.
pub fn remove_securely(path: &Path) -> Result<()> {
    let len = match fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let zeros = [0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left.min(zeros.len() as u64)).unwrap_or(zeros.len());
        f.write_all(&zeros[..n]).map_err(|e| Error::io(path, e))?;
        left -= n as u64;
    }
    f.sync_all().map_err(|e| Error::io(path, e))?;
    drop(f);
    fs::remove_file(path).map_err(|e| Error::io(path, e))
}

/// [`remove_securely`] for every file under `dir`, then removes `dir` itself (a missing `dir`
/// is not an error).
pub fn remove_dir_securely(dir: &Path) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.is_dir() {
            remove_dir_securely(&path)?;
        } else {
            remove_securely(&path)?;
        }
    }
    fs::remove_dir(dir).map_err(|e| Error::io(dir, e))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn directories_and_files_become_owner_only() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("a/b");
        owner_only_dir(&dir).expect("create");
        assert_eq!(mode(&dir), 0o700);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("widen");
        owner_only_dir(&dir).expect("again");
        assert_eq!(mode(&dir), 0o700, "an existing wide directory is narrowed");
        let file = dir.join("f");
        fs::write(&file, b"x").expect("write");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("widen");
        owner_only_file(&file).expect("narrow");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(fs::read(&file).expect("read"), b"x", "content kept");
    }

    #[test]
    fn secure_removal_leaves_nothing() {
        let tmp = tempfile::tempdir().expect("tmp");
        let file = tmp.path().join("old.json");
        fs::write(&file, vec![b'a'; 200_000]).expect("write");
        remove_securely(&file).expect("remove");
        assert!(!file.exists());
        remove_securely(&file).expect("a missing file is fine");
        let tree = tmp.path().join("account");
        fs::create_dir_all(tree.join("inner")).expect("dirs");
        fs::write(tree.join("a"), b"a").expect("write");
        fs::write(tree.join("inner").join("b"), b"b").expect("write");
        remove_dir_securely(&tree).expect("remove the tree");
        assert!(!tree.exists());
        remove_dir_securely(&tree).expect("a missing directory is fine");
    }
}
