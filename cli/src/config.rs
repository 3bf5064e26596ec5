//! fogctl's files in the user's config directory (`$FOGCTL_CONFIG_DIR`, else
//! `$XDG_CONFIG_HOME/fogctl`, else `~/.config/fogctl`), written 0600 and
//! atomically: `config.yaml`, the named contexts (a coordinator address, its
//! CA, optionally an API token) and which one is current, like kubectl's
//! kubeconfig; and `credentials.json`, the sessions `fogctl login` saved.
//!
//! A setting given as a flag or environment variable wins over the context's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// The config directory, if one can be named.
pub fn dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("FOGCTL_CONFIG_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(d).join("fogctl"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config").join("fogctl"))
}

fn required_dir() -> Result<PathBuf, CliError> {
    dir().ok_or_else(|| CliError::Usage("no config directory: set HOME or FOGCTL_CONFIG_DIR".into()))
}

/// Writes `name` in the config directory: owner-only, complete or not at all.
pub fn write_private(name: &str, body: &[u8]) -> Result<(), CliError> {
    use std::io::Write as _;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = required_dir()?;
    std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(&tmp).map_err(|e| anyhow::anyhow!("writing {}: {e}", tmp.display()))?;
    f.write_all(body).and_then(|()| f.sync_all()).map_err(|e| anyhow::anyhow!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(name)).map_err(|e| anyhow::anyhow!("writing {name}: {e}"))?;
    Ok(())
}

/// One named context.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// Coordinator URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<String>,
    /// CA certificate to verify it with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// An API token (else the session `fogctl login` saved for the coordinator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `config.yaml`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contexts {
    /// The context used when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    /// Contexts by name.
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

const FILE: &str = "config.yaml";

impl Contexts {
    /// The saved contexts (none if there is no file); a file that does not
    /// parse is an error that names it.
    pub fn load() -> Result<Contexts, CliError> {
        let Some(path) = dir().map(|d| d.join(FILE)) else { return Ok(Contexts::default()) };
        Contexts::load_from(&path)
    }

    fn load_from(path: &Path) -> Result<Contexts, CliError> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_yaml_ng::from_str(&text)
                .map_err(|e| CliError::Usage(format!("{}: {e} (fix or delete the file)", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Contexts::default()),
            Err(e) => Err(CliError::Usage(format!("{}: {e}", path.display()))),
        }
    }

    /// Saves them.
    pub fn save(&self) -> Result<(), CliError> {
        let text = serde_yaml_ng::to_string(self).map_err(anyhow::Error::from)?;
        write_private(FILE, text.as_bytes())
    }

    /// The context to use: `name` (from --context), else the current one; an
    /// unknown name is an error that says how to list them.
    pub fn chosen(&self, name: Option<&str>) -> Result<Option<(&str, &Context)>, CliError> {
        let Some(name) = name.or(self.current_context.as_deref()) else { return Ok(None) };
        match self.contexts.get_key_value(name) {
            Some((k, c)) => Ok(Some((k.as_str(), c))),
            None => Err(unknown(name)),
        }
    }
}

/// The error for a context name that is not in the file.
pub fn unknown(name: &str) -> CliError {
    CliError::Usage(format!(
        "no context named {name:?}; `fogctl config get-contexts` lists them, `fogctl config set-context` makes one"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_round_trip_and_unknown_names_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        assert_eq!(Contexts::load_from(&path).unwrap(), Contexts::default(), "no file: no contexts");
        let mut c = Contexts::default();
        c.contexts.insert(
            "prod".into(),
            Context { coordinator: Some("https://fog:7443".into()), ca_file: Some("/etc/ca.pem".into()), token: None },
        );
        c.current_context = Some("prod".into());
        std::fs::write(&path, serde_yaml_ng::to_string(&c).unwrap()).unwrap();
        let back = Contexts::load_from(&path).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.chosen(None).unwrap().map(|(n, _)| n), Some("prod"));
        let err = back.chosen(Some("staging")).unwrap_err().to_string();
        assert!(err.contains("staging") && err.contains("get-contexts"), "{err}");
        std::fs::write(&path, "contexts: {prod: {coordinatr: x}}").unwrap();
        let err = Contexts::load_from(&path).unwrap_err().to_string();
        assert!(err.contains("coordinatr") && err.contains("config.yaml"), "{err}");
    }
}
