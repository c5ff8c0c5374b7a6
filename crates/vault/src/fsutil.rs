//! Crash-safe file replacement: temp file in the same directory, fsync, rename, fsync directory.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::RngCore;

use crate::{Error, Result};

/// Infix of temp files: `<name>.tmp-<random hex>`. Anything with it is a leftover of an
/// interrupted save and is never read as the vault.
pub(crate) const TEMP_INFIX: &str = ".tmp-";

/// A fresh temp path beside `path`.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let mut rnd = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut rnd);
    let hex: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
    let mut s = OsString::from(path.as_os_str());
    s.push(TEMP_INFIX);
    s.push(hex);
    PathBuf::from(s)
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Makes a rename in `dir` durable. On non-Unix systems directories cannot be opened for sync;
/// there `rename` (MoveFileEx with replace) is the best the platform offers.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Makes `path` readable and writable by its owner only (0600 on Unix; elsewhere the user's
/// profile directory keeps other users out).
pub(crate) fn owner_only(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(path, e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Flushes an already written file to disk.
pub(crate) fn fsync_file(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(path, e))
}

/// Replaces `path` with `bytes` atomically: readers see the old or the new content, never a mix.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp).map_err(|e| Error::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(f);
        rename_durable(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `rename(from, to)` then fsync of the directory of `to`.
pub(crate) fn rename_durable(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| Error::io(to, e))?;
    fsync_dir(&parent_dir(to))
}

/// Removes leftovers `<file name>.tmp-*` of interrupted saves of `path` (including the key-info
/// file's and Stronghold's own `<temp>.<salt>` files). Returns how many were removed.
pub(crate) fn remove_stray_temps(path: &Path) -> Result<usize> {
    let dir = parent_dir(path);
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(0);
    };
    let prefix = format!("{name}{TEMP_INFIX}");
    let key_info_prefix = format!("{name}{}{TEMP_INFIX}", crate::stronghold::KEY_INFO_SUFFIX);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if file_name.starts_with(&prefix) || file_name.starts_with(&key_info_prefix) {
            fs::remove_file(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
            removed += 1;
        }
    }
    if removed > 0 {
        fsync_dir(&dir)?;
    }
    Ok(removed)
}
