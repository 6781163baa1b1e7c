//! The CNI_* environment: which variables each command needs, and what
//! makes a container ID, interface name or network name valid.

use crate::error::CniError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Status,
    Gc,
    Version,
}

impl Command {
    pub fn parse(s: &str) -> Result<Command, CniError> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            "VERSION" => Command::Version,
            "" => {
                return Err(CniError::env(
                    "CNI_COMMAND is not set: this is a CNI plugin, exec'd by a container runtime",
                ));
            }
            other => return Err(CniError::env(format!("unknown CNI_COMMAND {other:?}"))),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Status => "STATUS",
            Command::Gc => "GC",
            Command::Version => "VERSION",
        }
    }

    /// Whether the command acts on one attachment (container + ifname).
    fn per_attachment(self) -> bool {
        matches!(self, Command::Add | Command::Del | Command::Check)
    }
}

/// The validated CNI_* variables of one call.
#[derive(Debug, Clone, Default)]
pub struct CniEnv {
    pub container_id: String,
    pub netns: Option<String>,
    pub ifname: String,
    pub args: Vec<(String, String)>,
    /// CNI_ARGS as given, for delegates.
    pub args_raw: String,
    pub path: Vec<String>,
}

impl CniEnv {
    /// Reads the variables `command` needs through `get`, failing with code 4
    /// naming every one that is missing or invalid.
    pub fn from_vars(command: Command, get: impl Fn(&str) -> Option<String>) -> Result<CniEnv, CniError> {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let mut missing = Vec::new();
        let mut required = |name: &'static str, needed: bool| {
            let v = get(name);
            if needed && v.is_none() {
                missing.push(name);
            }
            v.unwrap_or_default()
        };
        let per = command.per_attachment();
        let container_id = required("CNI_CONTAINERID", per);
        let netns = required("CNI_NETNS", matches!(command, Command::Add | Command::Check));
        let ifname = required("CNI_IFNAME", per);
        let path = required("CNI_PATH", command != Command::Version);
        if !missing.is_empty() {
            return Err(CniError::env(format!("required env variables [{}] missing", missing.join(","))));
        }
        if per {
            validate_container_id(&container_id)?;
            validate_ifname(&ifname)?;
        }
        Ok(CniEnv {
            container_id,
            netns: (!netns.is_empty()).then_some(netns),
            ifname,
            args: parse_args(&get("CNI_ARGS").unwrap_or_default())?,
            args_raw: get("CNI_ARGS").unwrap_or_default(),
            path: path.split(':').filter(|p| !p.is_empty()).map(str::to_owned).collect(),
        })
    }
}

/// CNI_ARGS: `K1=V1;K2=V2`.
pub fn parse_args(raw: &str) -> Result<Vec<(String, String)>, CniError> {
    raw.split(';')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(CniError::env(format!("CNI_ARGS: invalid pair {pair:?}"))),
        })
        .collect()
}

/// The spec's identifier rule: `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`.
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

pub fn validate_container_id(id: &str) -> Result<(), CniError> {
    if is_identifier(id) { Ok(()) } else { Err(CniError::env(format!("invalid characters in CNI_CONTAINERID {id:?}"))) }
}

pub fn validate_network_name(name: &str) -> Result<(), CniError> {
    if is_identifier(name) {
        Ok(())
    } else {
        Err(CniError::config(format!("invalid network name {name:?}: must match ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$")))
    }
}

/// Linux interface names: 1-15 bytes, not `.`/`..`, no `/`, `:` or whitespace.
pub fn validate_ifname(name: &str) -> Result<(), CniError> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace());
    if ok { Ok(()) } else { Err(CniError::env(format!("invalid CNI_IFNAME {name:?}"))) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)], cmd: Command) -> Result<CniEnv, CniError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        CniEnv::from_vars(cmd, |k| map.get(k).cloned())
    }

    #[test]
    fn missing_variables_are_named_with_code_4() {
        let err = env(&[("CNI_PATH", "/opt/cni/bin")], Command::Add).unwrap_err();
        assert_eq!(err.code, 4);
        assert!(err.msg.contains("CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME"), "{}", err.msg);
    }

    #[test]
    fn del_needs_no_netns_and_gc_needs_no_container() {
        let base = [("CNI_CONTAINERID", "c1"), ("CNI_IFNAME", "eth0"), ("CNI_PATH", "/a:/b")];
        let e = env(&base, Command::Del).unwrap();
        assert_eq!(e.netns, None);
        assert_eq!(e.path, vec!["/a", "/b"]);
        env(&[("CNI_PATH", "/a")], Command::Gc).unwrap();
        env(&[], Command::Version).unwrap();
    }

    #[test]
    fn identifiers_and_ifnames_follow_the_spec() {
        assert!(validate_container_id("abc-1_2.3").is_ok());
        assert_eq!(validate_container_id("-abc").unwrap_err().code, 4);
        assert_eq!(validate_container_id("a/b").unwrap_err().code, 4);
        assert_eq!(validate_network_name("my net").unwrap_err().code, 7);
        assert!(validate_ifname("eth0").is_ok());
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "sixteen-chars-xx"] {
            assert_eq!(validate_ifname(bad).unwrap_err().code, 4, "{bad:?}");
        }
    }

    #[test]
    fn cni_args_parse_and_reject_garbage() {
        let a = parse_args("IgnoreUnknown=1;IP=10.0.0.5;K8S_POD_NAME=").unwrap();
        assert_eq!(a[1], ("IP".to_string(), "10.0.0.5".to_string()));
        assert_eq!(a[2].1, "");
        assert_eq!(parse_args("novalue").unwrap_err().code, 4);
    }
}
