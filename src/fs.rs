//! Files readable and writable by their owner only.
//!
//! Import files, reject reports, spill files, the checkpoint and the lease hold personal data,
//! password hashes or the state of a run. Every layer that writes one opens it here, so that
//! there is one rule: mode 0600 for a new file, and an existing file is chmodded to 0600 (a file
//! left over from a more permissive time does not keep its old mode). On other platforms than
//! Unix the files are opened plainly.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// `OpenOptions` that create a new file with mode 0600 (an existing one keeps its mode: follow
/// with [`make_private`] where it may exist). Set the access and creation flags on them.
pub fn private_options() -> OpenOptions {
    #[allow(unused_mut)]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Creates `path` for writing, truncating an existing file, with mode 0600 either way.
pub fn create_private(path: &Path) -> io::Result<File> {
    let file = private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    set_private(&file)?;
    Ok(file)
}

/// Opens `path` for reading and writing, creating it if missing and keeping what it holds, with
/// mode 0600 either way.
pub fn open_private(path: &Path) -> io::Result<File> {
    let file = private_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    set_private(&file)?;
    Ok(file)
}

/// Chmods `path` to 0600 if it exists and has another mode; a missing file is no error.
pub fn make_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(path) {
            Ok(meta) if meta.permissions().mode() & 0o777 != 0o600 => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn set_private(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if file.metadata()?.permissions().mode() & 0o777 != 0o600 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-tmp");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("fs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn create_private_makes_new_and_existing_files_0600_and_truncates() {
        let path = scratch("create");
        create_private(&path).unwrap().write_all(b"old").unwrap();
        assert_eq!(mode(&path), 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        create_private(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn open_private_keeps_the_content_and_chmods_an_existing_file() {
        let path = scratch("open");
        std::fs::write(&path, "kept").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut text = String::new();
        open_private(&path)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "kept");
        assert_eq!(mode(&path), 0o600);
        std::fs::remove_file(&path).unwrap();
        open_private(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn make_private_chmods_an_existing_file_and_ignores_a_missing_one() {
        let path = scratch("make");
        make_private(&path).unwrap();
        assert!(!path.exists());
        std::fs::write(&path, "x").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
        make_private(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        std::fs::remove_file(&path).unwrap();
    }
}
