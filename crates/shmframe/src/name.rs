//! Channel names and the shared-memory object names behind them.

use crate::error::NameError;
use std::fmt;

/// Prefix of every shared-memory object shmframe creates, so `ls /dev/shm` shows them as ours.
pub const OBJECT_PREFIX: &str = "shmframe.";
/// Prefix of a channel's pin table object in /dev/shm: `shmframe-pins.NAME.LINEAGE`.
pub const PINS_PREFIX: &str = "shmframe-pins.";

/// Longest channel name accepted. `NAME_MAX` is 255 on Linux; the prefix and the temporary
/// suffix used while a segment is initialised must fit beside the name.
pub const MAX_NAME_LEN: usize = 200;

/// Where POSIX shared-memory objects live on Linux (glibc maps `shm_open("/x")` to `/dev/shm/x`).
pub const SHM_DIR: &str = "/dev/shm";

/// A validated channel name: 1 to [`MAX_NAME_LEN`] characters from `[A-Za-z0-9._-]`, not starting
/// with `.` or `-`.
///
/// ```
/// let n = shmframe::Name::new("camera0").unwrap();
/// assert_eq!(n.object_name(), "shmframe.camera0");
/// assert!(shmframe::Name::new("../etc/passwd").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Name(String);

impl Name {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<Name, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong {
                name: name.chars().take(40).collect::<String>() + "…",
                len: name.len(),
                max: MAX_NAME_LEN,
            });
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(NameError::BadChar {
                name: name.to_owned(),
                ch: c,
            });
        }
        if name.starts_with('.') || name.starts_with('-') {
            return Err(NameError::BadStart {
                name: name.to_owned(),
            });
        }
        if name.contains(".tmp-") {
            return Err(NameError::Reserved {
                name: name.to_owned(),
            });
        }
        Ok(Name(name.to_owned()))
    }

    /// The channel name as the user gave it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shared-memory object's name without the leading slash, e.g. `shmframe.camera0`.
    pub fn object_name(&self) -> String {
        format!("{OBJECT_PREFIX}{}", self.0)
    }

    /// The object of the pin table of the channel's lineage `lineage` (16 hex digits).
    pub fn pins_object_name(&self, lineage: u64) -> String {
        format!("{PINS_PREFIX}{}.{lineage:016x}", self.0)
    }

    /// The argument for `shm_open`, e.g. `/shmframe.camera0`.
    pub fn shm_path(&self) -> String {
        format!("/{OBJECT_PREFIX}{}", self.0)
    }

    /// The file under `/dev/shm`.
    pub fn file_path(&self) -> std::path::PathBuf {
        std::path::Path::new(SHM_DIR).join(self.object_name())
    }

    /// Recovers a channel name from a `/dev/shm` entry, if the entry is one of ours (and not a
    /// temporary object still being initialised).
    pub fn from_object_name(object: &str) -> Option<Name> {
        let rest = object.strip_prefix(OBJECT_PREFIX)?;
        Name::new(rest).ok()
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Name {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Name::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names() {
        for n in ["a", "cam0", "robot.left_eye-1", &"x".repeat(MAX_NAME_LEN)] {
            assert!(Name::new(n).is_ok(), "{n}");
        }
    }

    #[test]
    fn invalid_names() {
        assert!(matches!(Name::new(""), Err(NameError::Empty)));
        assert!(matches!(
            Name::new(&"x".repeat(MAX_NAME_LEN + 1)),
            Err(NameError::TooLong { .. })
        ));
        for n in ["a/b", "/abc", "a b", "ünï", "a\0b", "a*"] {
            assert!(
                matches!(Name::new(n), Err(NameError::BadChar { .. })),
                "{n}"
            );
        }
        for n in [".", "..", ".hidden", "-x"] {
            assert!(
                matches!(Name::new(n), Err(NameError::BadStart { .. })),
                "{n}"
            );
        }
        assert!(matches!(
            Name::new("a.tmp-1"),
            Err(NameError::Reserved { .. })
        ));
        let msg = Name::new("a/b").unwrap_err().to_string();
        assert!(msg.contains("a/b") && msg.contains('/'), "{msg}");
    }

    #[test]
    fn object_names_round_trip() {
        let n = Name::new("cam").unwrap();
        assert_eq!(n.shm_path(), "/shmframe.cam");
        assert_eq!(Name::from_object_name("shmframe.cam"), Some(n));
        assert_eq!(Name::from_object_name("other"), None);
        assert_eq!(Name::from_object_name("shmframe.cam.tmp-12-0"), None);
    }
}
