//! MAC addresses, typed once where they enter (config, results, netlink).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// An Ethernet (EUI-48) address; shown and read as lowercase `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}: want six colon-separated hex bytes")]
pub struct InvalidMac(pub String);

impl FromStr for Mac {
    type Err = InvalidMac;

    fn from_str(s: &str) -> Result<Mac, InvalidMac> {
        let invalid = || InvalidMac(s.to_owned());
        let mut bytes = [0u8; 6];
        let mut parts = s.split(':');
        for b in &mut bytes {
            let part = parts.next().filter(|p| p.len() == 2).ok_or_else(invalid)?;
            *b = u8::from_str_radix(part, 16).map_err(|_| invalid())?;
        }
        match parts.next() {
            None => Ok(Mac(bytes)),
            Some(_) => Err(invalid()),
        }
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Mac, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_either_case_and_shows_lowercase() {
        let m: Mac = "AA:bb:0c:dd:ee:0F".parse().unwrap();
        assert_eq!(m.0, [0xaa, 0xbb, 0x0c, 0xdd, 0xee, 0x0f]);
        assert_eq!(m.to_string(), "aa:bb:0c:dd:ee:0f");
    }

    #[test]
    fn refuses_anything_but_six_bytes_of_two_digits() {
        for bad in
            ["", "aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:ff:00", "a:bb:cc:dd:ee:ff", "aa-bb-cc-dd-ee-ff", "gg:bb:cc:dd:ee:ff"]
        {
            assert!(bad.parse::<Mac>().is_err(), "{bad:?} parsed");
        }
    }
}
