//! The connections the system's sshd configures differently.
//!
//! `sshd -T` alone ignores every `Match` block, so a setting read that way
//! can hide a weaker one that applies only to some users, groups, client
//! addresses or local ports. This module reads the `Match` lines of the
//! system's configuration (its `Include`s followed), derives for each block
//! a connection that block selects, and asks `sshd -T -C` for the
//! configuration each of those connections really gets, next to a plain
//! connection, one as root and one to every port sshd listens on.
//!
//! [`sshd_test_mode`] is the one way the harness reads sshd's effective
//! configuration: plain `sshd -T` fails outright on a configuration with a
//! `Match LocalPort` (or `Address`, `User`, ...) block in OpenSSH before
//! 10.0 ("'Match LocalPort' in configuration but 'lport' not in connection
//! test specification"), so every reading names a whole connection.
//!
//! Read-only, with one exception: a `Match Group` whose group has no
//! account in it is evaluated for a throw-away account made a member of
//! that group for the moment (removed, and the group's member list with it,
//! when the evaluation is dropped).

use crate::actors::user::{unused_name, TestUser};
use crate::facts::sshd_instances::RunsWith;
use crate::runtime::command::run_ok;
use crate::Evidence;
use anyhow::{Context, Result};
use nix::unistd::Group;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The sshd binary. An absolute path, because sshd re-executes itself for
/// every connection and refuses to start otherwise.
pub const SSHD: &str = "/usr/sbin/sshd";

pub use crate::facts::sshd_instances::SYSTEM_CONFIG;
/// Where relative `Include` paths start, as sshd resolves them.
const CONFIG_DIR: &str = "/etc/ssh";
/// Include depth beyond which a configuration is taken to loop (sshd's own
/// limit is 16).
const MAX_INCLUDE_DEPTH: usize = 16;

/// One `Match` line: where it is, and its criteria as (keyword in lower
/// case, pattern list) pairs; `Match all` has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchBlock {
    pub origin: String,
    pub criteria: Vec<(String, String)>,
}

/// A connection to evaluate with `sshd -T -C`, and why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSpec {
    pub why: String,
    pub user: String,
    pub host: String,
    pub addr: String,
    pub laddr: String,
    pub lport: u16,
    pub rdomain: Option<String>,
}

impl ConnectionSpec {
    /// A connection of the suite's own: an account name no account has,
    /// from a benchmarking address (198.18.0.0/15) to port 22, the routing
    /// domain where a `Match RDomain` block needs one. For keywords that
    /// only the global configuration sets (ports, host keys, ciphers), what
    /// any connection gets.
    pub fn plain() -> Result<Self> {
        Self::plain_for(&match_blocks(Path::new(SYSTEM_CONFIG)).unwrap_or_default())
    }

    /// [`ConnectionSpec::plain`] for Match blocks already read.
    fn plain_for(blocks: &[MatchBlock]) -> Result<Self> {
        let needs_rdomain = blocks
            .iter()
            .any(|b| b.criteria.iter().any(|(k, _)| k == "rdomain"));
        Ok(ConnectionSpec {
            why: "a plain connection".to_owned(),
            user: unused_name()?,
            host: "fr1-client.invalid".to_owned(),
            addr: "198.18.0.2".to_owned(),
            laddr: "198.18.0.1".to_owned(),
            lport: 22,
            rdomain: needs_rdomain.then(|| "0".to_owned()),
        })
    }

    /// The `-C` argument.
    pub fn arg(&self) -> String {
        let mut s = format!(
            "user={},host={},addr={},laddr={},lport={}",
            self.user, self.host, self.addr, self.laddr, self.lport
        );
        if let Some(r) = &self.rdomain {
            s.push_str(",rdomain=");
            s.push_str(r);
        }
        s
    }
}

/// The effective configuration of one connection (`sshd -T -C` output).
pub struct Evaluation {
    pub spec: ConnectionSpec,
    pub config: String,
}

/// A setting of `sshd -T` output (lower-case keyword), `None` when unset
/// or `none`.
pub fn setting(effective: &str, keyword: &str) -> Option<String> {
    effective
        .lines()
        .find_map(|l| l.strip_prefix(keyword)?.strip_prefix(' '))
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != "none")
        .map(str::to_owned)
}

/// The authentication method lists of an effective configuration (`sshd
/// -T` output) that log in without ever running PAM's auth stack, where
/// the second factor and every other PAM check of the password live: each
/// list whose methods are all enabled and none of which is
/// `keyboard-interactive` or `password` with `UsePAM yes` (a public key,
/// host-based or GSSAPI login alone). `AuthenticationMethods any` (the
/// default) makes each enabled method a list of its own.
pub fn methods_without_pam(effective: &str) -> Vec<String> {
    let yes = |keyword: &str| setting(effective, keyword).as_deref() == Some("yes");
    let enabled = |method: &str| match method.split(':').next().unwrap_or(method) {
        "publickey" => yes("pubkeyauthentication"),
        "password" => yes("passwordauthentication"),
        "keyboard-interactive" => yes("kbdinteractiveauthentication"),
        "hostbased" => yes("hostbasedauthentication"),
        "gssapi-with-mic" => yes("gssapiauthentication"),
        _ => false,
    };
    let through_pam = |method: &str| {
        yes("usepam")
            && matches!(
                method.split(':').next().unwrap_or(method),
                "keyboard-interactive" | "password"
            )
    };
    let lists: Vec<Vec<String>> = match setting(effective, "authenticationmethods").as_deref() {
        None | Some("any") => [
            "publickey",
            "password",
            "keyboard-interactive",
            "hostbased",
            "gssapi-with-mic",
        ]
        .iter()
        .map(|m| vec![(*m).to_owned()])
        .collect(),
        Some(value) => value
            .split_whitespace()
            .map(|list| list.split(',').map(str::to_owned).collect())
            .collect(),
    };
    lists
        .into_iter()
        .filter(|list| list.iter().all(|m| enabled(m)) && !list.iter().any(|m| through_pam(m)))
        .map(|list| list.join(","))
        .collect()
}

/// `sshd -T -C` for the plain connection (add `-f`, `-o` as needed).
pub fn sshd_test_mode() -> Result<Command> {
    let mut cmd = Command::new(SSHD);
    cmd.args(["-T", "-C", &ConnectionSpec::plain()?.arg()]);
    Ok(cmd)
}

/// Every connection the configuration `runs` (a running sshd's, its
/// command-line options included) treats differently, evaluated; the first
/// is the plain connection. Keep the returned accounts alive until the
/// evaluation is no longer needed (they are the group members made for
/// `Match Group` blocks; dropping them removes them).
pub fn effective_configs_of(
    ev: &Evidence,
    runs: &RunsWith,
) -> Result<(Vec<Evaluation>, Vec<TestUser>)> {
    let file = runs.file();
    let blocks = match_blocks(&file)?;
    let plain = ConnectionSpec::plain_for(&blocks)?;
    let global =
        evaluate(ev, runs, &plain).with_context(|| format!("reading {} (sshd -T)", runs.label))?;
    let ports: Vec<u16> = global
        .lines()
        .filter_map(|l| l.strip_prefix("port ")?.trim().parse().ok())
        .collect();
    ev.note(if blocks.is_empty() {
        format!(
            "{}: {} (includes followed) has no Match block",
            runs.label,
            file.display()
        )
    } else {
        format!(
            "{}: Match blocks of {} (includes followed): {}",
            runs.label,
            file.display(),
            blocks
                .iter()
                .map(|b| format!("{} `{}`", b.origin, describe(&b.criteria)))
                .collect::<Vec<_>>()
                .join("; ")
        )
    });

    let plain = ConnectionSpec {
        lport: ports.first().copied().unwrap_or(22),
        ..plain
    };
    let mut specs = vec![
        plain.clone(),
        ConnectionSpec {
            why: "root".to_owned(),
            user: "root".to_owned(),
            ..plain.clone()
        },
    ];
    for port in ports.iter().skip(1) {
        specs.push(ConnectionSpec {
            why: format!("local port {port}"),
            lport: *port,
            ..plain.clone()
        });
    }
    let mut members = Vec::new();
    for block in &blocks {
        match spec_for(ev, block, &plain, &mut members)? {
            Ok(spec) => specs.push(spec),
            Err(why) => ev.note(format!(
                "{} `{}` not evaluated: {why}",
                block.origin,
                describe(&block.criteria)
            )),
        }
    }

    let mut evaluations = Vec::new();
    for spec in specs {
        let config = evaluate(ev, runs, &spec)
            .with_context(|| format!("evaluating {} for {}", runs.label, spec.why))?;
        evaluations.push(Evaluation { spec, config });
    }
    Ok((evaluations, members))
}

/// `sshd -T -C SPEC` with the options `runs` gives sshd: what sshd would
/// apply to that connection.
fn evaluate(ev: &Evidence, runs: &RunsWith, spec: &ConnectionSpec) -> Result<String> {
    let mut cmd = Command::new(SSHD);
    cmd.args(["-T", "-C", &spec.arg()]).args(&runs.options);
    Ok(run_ok(ev, &mut cmd, None)?.stdout)
}

/// A connection `block` selects: `plain` with each criterion satisfied.
/// `Err` with the reason where no connection can be chosen (a group that
/// does not exist, a criterion `sshd -T -C` cannot express).
fn spec_for(
    ev: &Evidence,
    block: &MatchBlock,
    plain: &ConnectionSpec,
    members: &mut Vec<TestUser>,
) -> Result<std::result::Result<ConnectionSpec, String>> {
    let mut spec = ConnectionSpec {
        why: format!("{} `{}`", block.origin, describe(&block.criteria)),
        ..plain.clone()
    };
    for (keyword, patterns) in &block.criteria {
        // Only negated patterns: the plain value is not one of them (the
        // plain connection's values are of the suite's own).
        let Some(pattern) = first_positive(patterns) else {
            continue;
        };
        match keyword.as_str() {
            "user" => spec.user = instance_of(pattern, "x"),
            "host" => spec.host = instance_of(pattern, "x"),
            "address" => spec.addr = address_in(pattern),
            "localaddress" => spec.laddr = address_in(pattern),
            "localport" => match pattern.parse() {
                Ok(port) => spec.lport = port,
                Err(_) => return Ok(Err(format!("LocalPort {pattern:?} is not a port"))),
            },
            "rdomain" => spec.rdomain = Some(instance_of(pattern, "x")),
            "group" => match group_member(ev, pattern, members)? {
                Ok(user) => spec.user = user,
                Err(why) => return Ok(Err(why)),
            },
            other => {
                return Ok(Err(format!(
                    "sshd -T -C cannot select a connection by {other:?}"
                )))
            }
        }
    }
    Ok(Ok(spec))
}

/// An account in a group matching `pattern`: an existing member (listed in
/// /etc/group, or whose primary group it is), else a throw-away account
/// made a member.
fn group_member(
    ev: &Evidence,
    pattern: &str,
    members: &mut Vec<TestUser>,
) -> Result<std::result::Result<String, String>> {
    let groups = std::fs::read_to_string("/etc/group").context("reading /etc/group")?;
    let Some(name) = groups
        .lines()
        .filter_map(|l| l.split(':').next())
        .find(|g| wildcard_match(pattern, g))
    else {
        return Ok(Err(format!(
            "no group matches {pattern:?}: the block applies to nobody"
        )));
    };
    let Some(group) = Group::from_name(name)? else {
        return Ok(Err(format!("group {name} does not resolve")));
    };
    if let Some(member) = group.mem.first() {
        return Ok(Ok(member.clone()));
    }
    let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    let gid = group.gid.as_raw().to_string();
    if let Some(user) = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[3] == gid).then(|| f[0].to_owned())
    }) {
        return Ok(Ok(user));
    }
    let user = TestUser::create(ev)?;
    user.join_group(name)?;
    let account = user.name().to_owned();
    members.push(user);
    Ok(Ok(account))
}

/// The `Match` lines of `path` and of every file it includes, in order.
pub fn match_blocks(path: &Path) -> Result<Vec<MatchBlock>> {
    let mut out = Vec::new();
    collect(path, 0, &mut out)?;
    Ok(out)
}

fn collect(path: &Path, depth: usize, out: &mut Vec<MatchBlock>) -> Result<()> {
    anyhow::ensure!(
        depth <= MAX_INCLUDE_DEPTH,
        "sshd configuration includes nest deeper than {MAX_INCLUDE_DEPTH} at {}",
        path.display()
    );
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    for (number, line) in text.lines().enumerate() {
        let (keyword, rest) = split_keyword(line);
        match keyword.as_str() {
            "include" => {
                for pattern in rest.split_whitespace() {
                    for file in include_files(pattern)? {
                        collect(&file, depth + 1, out)?;
                    }
                }
            }
            "match" => out.push(MatchBlock {
                origin: format!("{}:{}", path.display(), number + 1),
                criteria: parse_criteria(rest),
            }),
            _ => {}
        }
    }
    Ok(())
}

/// A configuration line's keyword (lower case) and the rest; comments and
/// blank lines give an empty keyword.
fn split_keyword(line: &str) -> (String, &str) {
    let line = line.trim();
    if line.starts_with('#') {
        return (String::new(), "");
    }
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let rest = line[end..].trim_start_matches(|c: char| c.is_whitespace() || c == '=');
    (line[..end].to_ascii_lowercase(), rest)
}

/// `User a,b Address 10.0.0.0/8` -> [("user","a,b"), ("address","10.0.0.0/8")]
/// (sshd also takes `=` between a criterion and its patterns).
fn parse_criteria(rest: &str) -> Vec<(String, String)> {
    let words: Vec<&str> = rest
        .split(|c: char| c.is_whitespace() || c == '=')
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let keyword = words[i].to_ascii_lowercase();
        if keyword == "all" {
            i += 1;
            continue;
        }
        let value = words.get(i + 1).copied().unwrap_or("");
        out.push((keyword, value.trim_matches('"').to_owned()));
        i += 2;
    }
    out
}

/// The files an `Include` pattern names (relative ones under /etc/ssh),
/// sorted as sshd's glob sorts them; wildcards in the last component only,
/// as in every packaged configuration.
fn include_files(pattern: &str) -> Result<Vec<PathBuf>> {
    let full = if pattern.starts_with('/') {
        PathBuf::from(pattern)
    } else {
        Path::new(CONFIG_DIR).join(pattern)
    };
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return Ok(if full.is_file() { vec![full] } else { vec![] });
    }
    let dir = full.parent().unwrap_or(Path::new("/"));
    let mut files = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
                let file = entry.file_name().to_string_lossy().into_owned();
                if wildcard_match(&name, &file) && entry.path().is_file() {
                    files.push(entry.path());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    }
    files.sort();
    Ok(files)
}

/// The first pattern of a comma-separated list that is not negated.
fn first_positive(list: &str) -> Option<&str> {
    list.split(',')
        .map(str::trim)
        .find(|p| !p.is_empty() && !p.starts_with('!'))
}

/// A value matching a wildcard pattern: each `*` and `?` replaced.
fn instance_of(pattern: &str, fill: &str) -> String {
    pattern.replace(['*', '?'], fill)
}

/// An address an address pattern matches: a CIDR's network address, or
/// the wildcard pattern with its wildcards filled with `1` (and an IPv4
/// address completed to four parts: `10.*` matches `10.1.1.1`).
fn address_in(pattern: &str) -> String {
    if let Some((address, _)) = pattern.split_once('/') {
        return address.to_owned();
    }
    let mut address = instance_of(pattern, "1");
    let ipv4_like = address
        .split('.')
        .all(|p| p.chars().all(|c| c.is_ascii_digit()));
    while ipv4_like && pattern.contains('*') && address.split('.').count() < 4 {
        address.push_str(".1");
    }
    address
}

/// sshd's wildcard matching: `*` any run, `?` one character.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

fn describe(criteria: &[(String, String)]) -> String {
    if criteria.is_empty() {
        return "Match all".to_owned();
    }
    let parts: Vec<String> = criteria.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!("Match {}", parts.join(" "))
}

#[cfg(test)]
mod tests {

    #[test]
    fn finds_the_method_lists_that_never_run_pam() {
        let cip = "usepam yes\npubkeyauthentication yes\npasswordauthentication yes\nkbdinteractiveauthentication yes\nhostbasedauthentication no\ngssapiauthentication no\nauthenticationmethods keyboard-interactive\n";
        assert!(methods_without_pam(cip).is_empty());
        let key_too = cip.replace(
            "authenticationmethods keyboard-interactive",
            "authenticationmethods publickey,keyboard-interactive publickey",
        );
        assert_eq!(methods_without_pam(&key_too), ["publickey"]);
        let default = cip.replace(
            "authenticationmethods keyboard-interactive",
            "authenticationmethods any",
        );
        assert_eq!(methods_without_pam(&default), ["publickey"]);
        let no_keys = default.replace("pubkeyauthentication yes", "pubkeyauthentication no");
        assert!(methods_without_pam(&no_keys).is_empty());
        let no_pam = cip.replace("usepam yes", "usepam no");
        assert_eq!(methods_without_pam(&no_pam), ["keyboard-interactive"]);
        let submethod = cip.replace(
            "authenticationmethods keyboard-interactive",
            "authenticationmethods keyboard-interactive:pam",
        );
        assert!(methods_without_pam(&submethod).is_empty());
    }
    use super::*;

    #[test]
    fn match_lines_are_found_through_includes_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("sshd_config.d");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(
            d.join("20-b.conf"),
            "Match Address 10.0.0.0/8\n  PubkeyAcceptedAlgorithms +ssh-rsa\n",
        )
        .unwrap();
        std::fs::write(
            d.join("10-a.conf"),
            "# Match User nobody\nX11Forwarding no\n",
        )
        .unwrap();
        std::fs::write(d.join("10-a.conf.disabled"), "Match User ignored\n").unwrap();
        let main = dir.path().join("sshd_config");
        std::fs::write(
            &main,
            format!(
                "Include {}/*.conf\nUsePAM yes\nMatch user backup,!root LocalPort=2222\n",
                d.display()
            ),
        )
        .unwrap();
        let blocks = match_blocks(&main).unwrap();
        assert_eq!(blocks.len(), 2, "{blocks:?}");
        assert!(blocks[0].origin.ends_with("20-b.conf:1"));
        assert_eq!(
            blocks[0].criteria,
            vec![("address".to_owned(), "10.0.0.0/8".to_owned())]
        );
        assert!(blocks[1].origin.ends_with("sshd_config:3"));
        assert_eq!(
            blocks[1].criteria,
            vec![
                ("user".to_owned(), "backup,!root".to_owned()),
                ("localport".to_owned(), "2222".to_owned())
            ]
        );
    }

    #[test]
    fn a_connection_is_chosen_that_each_criterion_selects() {
        assert_eq!(first_positive("!root,oper*"), Some("oper*"));
        assert_eq!(first_positive("!root"), None);
        assert_eq!(instance_of("oper*", "x"), "operx");
        assert_eq!(address_in("192.168.0.0/16"), "192.168.0.0");
        assert_eq!(address_in("10.1.*"), "10.1.1.1");
        assert_eq!(address_in("10.*"), "10.1.1.1");
        assert_eq!(address_in("192.168.1.?"), "192.168.1.1");
        assert!(wildcard_match("sshd_config.d*", "sshd_config.d"));
        assert!(wildcard_match("*.conf", "50-cloud.conf"));
        assert!(!wildcard_match("*.conf", "50-cloud.conf.bak"));
        assert!(wildcard_match("wh??l", "wheel"));
        assert_eq!(parse_criteria("all"), vec![]);
        assert_eq!(describe(&[]), "Match all");
    }

    #[test]
    fn the_connection_spec_names_every_field() {
        let spec = ConnectionSpec {
            why: String::new(),
            user: "u".into(),
            host: "h".into(),
            addr: "1.2.3.4".into(),
            laddr: "5.6.7.8".into(),
            lport: 2222,
            rdomain: None,
        };
        assert_eq!(
            spec.arg(),
            "user=u,host=h,addr=1.2.3.4,laddr=5.6.7.8,lport=2222"
        );
    }
}
