//! The agent's own exec policy: which commands a coordinator may make this
//! device run. Deny by default, so a compromised coordinator does not get a
//! shell on every device; `--dev` allows everything (and says so in the log).

/// Which commands `exec` tasks may run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ExecPolicy {
    /// Nothing (the default).
    #[default]
    DenyAll,
    /// Exactly these commands, compared literally with the task's `command`
    /// (`/bin/echo` allows `/bin/echo`, not `echo`; no PATH resolution, so what
    /// is allowed is what the operator wrote).
    Allow(Vec<String>),
    /// Anything (dev mode only).
    AllowAll,
}

impl ExecPolicy {
    /// `Ok` if `command` may run, else the reason it may not.
    pub fn check(&self, command: &str) -> Result<(), String> {
        if command.is_empty() {
            return Err("exec task has an empty command".into());
        }
        let allowed = match self {
            ExecPolicy::DenyAll => false,
            ExecPolicy::Allow(list) => list.iter().any(|c| c == command),
            ExecPolicy::AllowAll => true,
        };
        if allowed { Ok(()) } else { Err(format!("command {command:?} is not allowed by this agent's exec policy")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_by_default() {
        let p = ExecPolicy::default();
        let err = p.check("/bin/sh").unwrap_err();
        assert!(err.contains("not allowed"), "{err}");
    }

    #[test]
    fn allow_list_is_literal() {
        let p = ExecPolicy::Allow(vec!["/bin/echo".into(), "uptime".into()]);
        assert!(p.check("/bin/echo").is_ok());
        assert!(p.check("uptime").is_ok());
        assert!(p.check("echo").is_err(), "no PATH resolution");
        assert!(p.check("/bin/echo ").is_err());
        assert!(p.check("/usr/bin/../../bin/echo").is_err());
        assert!(p.check("").is_err());
    }

    #[test]
    fn dev_allows_everything_but_nothing() {
        assert!(ExecPolicy::AllowAll.check("/bin/sh").is_ok());
        assert!(ExecPolicy::AllowAll.check("").is_err());
    }
}
