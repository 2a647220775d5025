//! Segment names: validation of explicit names and [`portable_shm_segment_name`].
//!
//! A POSIX shared-memory name is one path component with a leading slash (`/ticks`). Both sides of a ring
//! must use the same name; [`portable_shm_segment_name`] derives a short, deterministic one from any label,
//! within macOS's 31-byte limit.

use crate::error::NameError;
use crate::layout::Fnv64;

/// Longest explicit segment name accepted on the platform being built, leading slash included: 255 bytes
/// on Linux (`NAME_MAX`), 31 on macOS (`PSHMNAMLEN`). A longer name is refused with
/// [`NameError::TooLong`] before any system call.
pub const MAX_SEGMENT_NAME_LEN: usize = crate::backend::shm::MAX_NAME_LEN;

/// Longest name [`portable_shm_segment_name`] produces, leading slash included (macOS's `PSHMNAMLEN`).
pub const PORTABLE_SEGMENT_NAME_LEN: usize = 31;

// Portable names fit the strictest supported platform, so they are accepted everywhere.
const _: () = assert!(PORTABLE_SEGMENT_NAME_LEN <= MAX_SEGMENT_NAME_LEN);

/// Longest readable prefix kept from the label in a portable name: `/` + prefix + `-` + 16 hex digits.
const PORTABLE_PREFIX_LEN: usize = PORTABLE_SEGMENT_NAME_LEN - 1 - 1 - 16;

/// Derives a shared-memory segment name from an arbitrary label.
///
/// The result is deterministic (every process, on every platform and build, derives the same name from the
/// same label), at most 31 bytes including the leading slash, and made of a readable prefix of the label
/// (ASCII letters, digits, `_` and `.`; anything else becomes `_`) followed by `-` and a 64-bit hash of the
/// whole label in hex, so labels that share a prefix still get different names.
///
/// ```
/// use disruptor_mp::portable_shm_segment_name;
///
/// let name = portable_shm_segment_name("market-data/ticks for EURUSD");
/// assert!(name.starts_with("/market_data_t-"));
/// assert!(name.len() <= 31);
/// assert_eq!(name, portable_shm_segment_name("market-data/ticks for EURUSD"));
/// ```
pub fn portable_shm_segment_name(label: &str) -> String {
    let hash = Fnv64::tagged("segment-name").str(label).finish();
    let prefix: String = label
        .chars()
        .take(PORTABLE_PREFIX_LEN)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("/{prefix}-{hash:016x}")
}

/// Checks an explicit segment name and returns it with a leading slash.
///
/// Accepts `ticks` or `/ticks`; refuses an empty name, another `/` inside, a NUL byte, `.` and `..`
/// (which name directories where segments live as files), and names longer
/// than [`MAX_SEGMENT_NAME_LEN`] bytes (slash included).
pub(crate) fn normalize_segment_name(name: &str) -> Result<String, NameError> {
    let body = name.strip_prefix('/').unwrap_or(name);
    if body.is_empty() {
        return Err(NameError::Empty);
    }
    if body.contains('/') {
        return Err(NameError::ContainsSlash {
            name: name.to_string(),
        });
    }
    if body.contains('\0') {
        return Err(NameError::ContainsNul {
            name: name.to_string(),
        });
    }
    if body == "." || body == ".." {
        return Err(NameError::Reserved {
            name: name.to_string(),
        });
    }
    let full = format!("/{body}");
    if full.len() > MAX_SEGMENT_NAME_LEN {
        return Err(NameError::TooLong {
            name: name.to_string(),
            len: full.len(),
            max: MAX_SEGMENT_NAME_LEN,
            platform: crate::backend::shm::PLATFORM_NAME,
        });
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_names_are_short_deterministic_and_distinct() {
        let long = "a".repeat(1000);
        for label in [
            "",
            "x",
            "ticks",
            "market-data/ticks",
            long.as_str(),
            "ünïcödé",
        ] {
            let name = portable_shm_segment_name(label);
            assert!(name.len() <= PORTABLE_SEGMENT_NAME_LEN, "{name}");
            assert!(name.starts_with('/'));
            assert!(!name[1..].contains('/'));
            assert!(name.is_ascii());
            assert_eq!(name, portable_shm_segment_name(label));
            assert_eq!(normalize_segment_name(&name).as_deref(), Ok(name.as_str()));
        }
        assert_ne!(
            portable_shm_segment_name("ticks-eurusd-aaaaaaaaaaaaaaaa-1"),
            portable_shm_segment_name("ticks-eurusd-aaaaaaaaaaaaaaaa-2")
        );
    }

    #[test]
    fn portable_names_are_pinned() {
        // The name is part of the cross-process contract: two builds must derive the same one.
        assert_eq!(
            portable_shm_segment_name("ticks"),
            "/ticks-5125692c426552d4"
        );
        assert_eq!(
            portable_shm_segment_name("market-data/ticks for EURUSD"),
            "/market_data_t-e26f3454c1c16578"
        );
    }

    #[test]
    fn explicit_names_are_normalized_and_checked() {
        assert_eq!(normalize_segment_name("ticks").unwrap(), "/ticks");
        assert_eq!(normalize_segment_name("/ticks").unwrap(), "/ticks");
        assert_eq!(normalize_segment_name("/"), Err(NameError::Empty));
        assert!(matches!(
            normalize_segment_name("a/b"),
            Err(NameError::ContainsSlash { .. })
        ));
        assert!(matches!(
            normalize_segment_name("a\0b"),
            Err(NameError::ContainsNul { .. })
        ));
        for dots in [".", "..", "/.", "/.."] {
            assert_eq!(
                normalize_segment_name(dots),
                Err(NameError::Reserved {
                    name: dots.to_string()
                })
            );
        }
        assert_eq!(normalize_segment_name("...").unwrap(), "/...");
        assert!(matches!(
            normalize_segment_name(&"x".repeat(300)),
            Err(NameError::TooLong { len: 301, .. })
        ));
    }

    #[test]
    fn the_platform_name_limit_is_exact() {
        let longest = "n".repeat(MAX_SEGMENT_NAME_LEN - 1);
        assert_eq!(
            normalize_segment_name(&longest).unwrap().len(),
            MAX_SEGMENT_NAME_LEN
        );
        let too_long = "n".repeat(MAX_SEGMENT_NAME_LEN);
        let error = normalize_segment_name(&too_long).unwrap_err();
        assert_eq!(
            error,
            NameError::TooLong {
                name: too_long,
                len: MAX_SEGMENT_NAME_LEN + 1,
                max: MAX_SEGMENT_NAME_LEN,
                platform: crate::backend::shm::PLATFORM_NAME,
            }
        );
        assert!(error.to_string().contains("portable_shm_segment_name"));
    }

    #[cfg(target_os = "macos")]
    #[test]
    fn macos_refuses_names_beyond_pshmnamlen() {
        assert_eq!(MAX_SEGMENT_NAME_LEN, 31);
        assert!(matches!(
            normalize_segment_name("a-name-that-is-thirty-two-bytes"),
            Err(NameError::TooLong {
                len: 32,
                max: 31,
                platform: "macOS",
                ..
            })
        ));
    }
}
