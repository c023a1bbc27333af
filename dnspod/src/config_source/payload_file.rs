//! Reading one payload file without trusting what sits at its path: only a regular file is
//! read (a FIFO, a device or a directory is refused without blocking: the file is opened with
//! `O_NONBLOCK` and checked on the open descriptor), and never more than a size limit (a larger
//! file is refused before its bytes are read).

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// The default size limit of one payload: 64 MiB, several times the config of 100 000
/// addresses.
pub const DEFAULT_MAX_PAYLOAD_BYTES: u64 = 64 * 1024 * 1024;

/// Why a payload file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The path names something other than a regular file.
    #[error("not a regular file but a {0}; only regular files are read")]
    NotRegular(&'static str),
    /// The file is larger than the limit.
    #[error("{size} bytes, more than the limit of {limit} bytes (--max-payload-bytes)")]
    TooLarge {
        /// The file's size (at least; a file growing while read may be larger).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The read failed (descriptor limit, I/O error, permissions); worth retrying.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl ReadError {
    /// Whether reading again later may succeed with the file as it is: true for I/O errors,
    /// false for a file that must change first.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Io(_))
    }
}

/// The bytes of the regular file at `path` (symbolic links followed), at most `limit` of
/// them; `None` when nothing is there. Never blocks on a FIFO or a device.
pub fn read_payload(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, ReadError> {
    // Checked before opening, so that a device is not even opened...
    match std::fs::metadata(path) {
        Ok(m) => check(&m, limit)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    // ...and again on the open descriptor: the path may have been replaced in between.
    let metadata = file.metadata()?;
    check(&metadata, limit)?;
    read_at_most(file, metadata.len(), limit).map(Some)
}

/// What tells one version of a file from another without reading it: device and inode (a
/// file replaced by rename is a new inode), size, and modification and change times (a file
/// written in place).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    /// The stamp of what `path` names now (symbolic links followed); `None` when it cannot be
    /// looked up.
    pub fn at(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(Self {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }

    /// Whether the file last changed (its modification and change times) before `time`. A
    /// stamp taken within a timestamp's granularity of the file's last change cannot tell that
    /// version from a later write in place of the same size.
    pub fn changed_before(&self, time: SystemTime) -> bool {
        let Ok(since_epoch) = time.duration_since(UNIX_EPOCH) else {
            return false;
        };
        let time = (
            i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
            i64::from(since_epoch.subsec_nanos()),
        );
        self.mtime.max(self.ctime) < time
    }
}

/// Refuses what is not a regular file or is larger than `limit`.
fn check(metadata: &std::fs::Metadata, limit: u64) -> Result<(), ReadError> {
    let kind = metadata.file_type();
    if !kind.is_file() {
        return Err(ReadError::NotRegular(if kind.is_fifo() {
            "FIFO"
        } else if kind.is_char_device() || kind.is_block_device() {
            "device"
        } else if kind.is_dir() {
            "directory"
        } else if kind.is_socket() {
            "socket"
        } else {
            "special file"
        }));
    }
    if metadata.len() > limit {
        return Err(ReadError::TooLarge {
            size: metadata.len(),
            limit,
        });
    }
    Ok(())
}

/// Reads `file` (of `size` bytes when it was looked at) to its end, refusing it once it grows
/// past `limit`. The buffer is sized to the file: grown by doubling from empty, an 18 MB
/// config took a 32 MiB buffer.
fn read_at_most(file: File, size: u64, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::with_capacity(usize::try_from(size.min(limit)).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    let size = bytes.len() as u64;
    if size > limit {
        return Err(ReadError::TooLarge { size, limit });
    }
    Ok(bytes)
}

/// A new directory of its own under the system's temporary directory, for the tests of the
/// config sources.
#[cfg(test)]
pub(super) fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "gtm-payload-file-{}-{name}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_within_the_limit_is_read_and_a_missing_one_is_none() {
        let dir = scratch("regular");
        let path = dir.join("config.json");
        assert!(read_payload(&path, 10).unwrap().is_none());
        assert_eq!(FileStamp::at(&path), None);
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_payload(&path, 10).unwrap().unwrap(), b"0123456789");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_payload_is_read_into_a_buffer_of_its_size() {
        let dir = scratch("sized");
        let path = dir.join("config.json");
        std::fs::write(&path, vec![b'x'; 100_003]).unwrap();
        let bytes = read_payload(&path, DEFAULT_MAX_PAYLOAD_BYTES)
            .unwrap()
            .unwrap();
        assert_eq!((bytes.len(), bytes.capacity()), (100_003, 100_003));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_stamp_changes_with_a_rename_over_the_file_and_a_write_in_place() {
        let dir = scratch("stamp");
        let path = dir.join("health.json");
        std::fs::write(&path, b"one").unwrap();
        let first = FileStamp::at(&path).unwrap();
        assert_eq!(FileStamp::at(&path), Some(first));
        // Same size and content, a new inode.
        std::fs::write(dir.join(".tmp"), b"one").unwrap();
        std::fs::rename(dir.join(".tmp"), &path).unwrap();
        let renamed = FileStamp::at(&path).unwrap();
        assert_ne!(renamed, first);
        // Same inode, another size.
        std::fs::write(&path, b"three").unwrap();
        assert_ne!(FileStamp::at(&path).unwrap(), renamed);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_stamp_tells_whether_the_file_changed_before_a_time() {
        let dir = scratch("changed-before");
        let path = dir.join("health.json");
        let before = SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::write(&path, b"one").unwrap();
        let stamp = FileStamp::at(&path).unwrap();
        assert!(!stamp.changed_before(before));
        assert!(stamp.changed_before(SystemTime::now() + std::time::Duration::from_secs(60)));
        assert!(!stamp.changed_before(UNIX_EPOCH));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_huge_sparse_file_is_refused_without_reading_it() {
        let dir = scratch("sparse");
        let path = dir.join("config.json");
        // One tebibyte that occupies no disk: reading it would take the memory instead.
        File::create(&path).unwrap().set_len(1 << 40).unwrap();
        let error = read_payload(&path, DEFAULT_MAX_PAYLOAD_BYTES).unwrap_err();
        assert!(
            matches!(error, ReadError::TooLarge { size, .. } if size == 1 << 40),
            "{error}"
        );
        assert!(!error.is_transient());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_directory_is_refused() {
        let dir = scratch("directory");
        std::fs::create_dir(dir.join("config.json")).unwrap();
        let error = read_payload(&dir.join("config.json"), 10).unwrap_err();
        assert!(
            matches!(error, ReadError::NotRegular("directory")),
            "{error}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_device_is_refused() {
        let error = read_payload(Path::new("/dev/zero"), 10).unwrap_err();
        assert!(matches!(error, ReadError::NotRegular("device")), "{error}");
    }
}
