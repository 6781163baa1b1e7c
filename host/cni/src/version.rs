//! Spec versions: which exist, and which commands each allows.

use crate::error::{CniError, Code};

/// Every version this host speaks, oldest first.
pub const SUPPORTED: &[&str] = &["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
pub const CURRENT: &str = "1.1.0";

/// A parsed `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(u32, u32, u32);

impl Version {
    pub const V0_4_0: Version = Version(0, 4, 0);
    pub const V1_0_0: Version = Version(1, 0, 0);
    pub const V1_1_0: Version = Version(1, 1, 0);
    pub const V0_3_0: Version = Version(0, 3, 0);

    pub fn parse(s: &str) -> Option<Version> {
        let mut parts = s.split('.').map(|p| p.parse::<u32>().ok());
        let v = Version(parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(v)
    }

    /// Parses a version this host supports, or fails with code 1.
    pub fn supported(s: &str) -> Result<Version, CniError> {
        if s.is_empty() {
            return Ok(Version(0, 1, 0));
        }
        match Version::parse(s) {
            Some(v) if SUPPORTED.contains(&s) => Ok(v),
            _ => Err(CniError::new(
                Code::IncompatibleVersion,
                format!("incompatible CNI versions: config is {s:?}, plugin supports {SUPPORTED:?}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders() {
        assert!(Version::parse("0.4.0").unwrap() < Version::V1_0_0);
        assert!(Version::parse("1.1").is_none());
        assert!(Version::parse("1.1.0.1").is_none());
        assert_eq!(Version::supported("").unwrap(), Version(0, 1, 0));
        assert_eq!(Version::supported("2.0.0").unwrap_err().code, 1);
        assert_eq!(Version::supported("0.3.2").unwrap_err().code, 1);
    }
}
