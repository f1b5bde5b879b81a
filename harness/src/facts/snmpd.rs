//! Whether an SNMP agent accepts SNMPv1/v2c, whose only authenticator is
//! a community string sent in clear in every request. A probe cannot tell
//! without sending a real community (an agent drops a wrong one without a
//! word), so net-snmp's snmpd is judged by the configuration it reads:
//! `/etc/snmp/snmpd.conf`, `/etc/snmp/snmpd.conf.d/*.conf`, snmpd's
//! persistent file `/var/lib/snmp/snmpd.conf`, and any file given with
//! `-c` on its command line. The community strings themselves never reach
//! the evidence.

use std::path::{Path, PathBuf};

/// The directives that make snmpd accept a v1/v2c community.
const COMMUNITY_DIRECTIVES: [&str; 6] = [
    "rocommunity",
    "rwcommunity",
    "rocommunity6",
    "rwcommunity6",
    "com2sec",
    "com2sec6",
];

/// The configuration files snmpd reads by default.
const DEFAULT_FILES: [&str; 2] = ["/etc/snmp/snmpd.conf", "/var/lib/snmp/snmpd.conf"];

/// A line that accepts a community, with the community masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Community {
    pub file: PathBuf,
    pub line: usize,
    /// The directive and its arguments, the community replaced by `***`.
    pub masked: String,
}

/// The files snmpd reads: the defaults, the drop-ins, and the `-c FILE`
/// (comma-separated list) options of `cmdline` (snmpd's arguments).
pub fn config_files(cmdline: &[String]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = DEFAULT_FILES.iter().map(PathBuf::from).collect();
    if let Ok(entries) = std::fs::read_dir("/etc/snmp/snmpd.conf.d") {
        let mut drop_ins: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "conf"))
            .collect();
        drop_ins.sort();
        files.extend(drop_ins);
    }
    let mut args = cmdline.iter();
    while let Some(arg) = args.next() {
        let given = match arg.strip_prefix("-c") {
            Some("") => args.next().map(String::as_str),
            Some(attached) => Some(attached),
            None => None,
        };
        for file in given.into_iter().flat_map(|list| list.split(',')) {
            files.push(PathBuf::from(file));
        }
    }
    files.dedup();
    files
}

/// The community lines of `files` that can be read; the files that exist
/// but cannot be read, with why.
pub fn communities(files: &[PathBuf]) -> (Vec<Community>, Vec<String>) {
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    for file in files {
        match std::fs::read_to_string(file) {
            Ok(text) => found.extend(communities_in(file, &text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => unreadable.push(format!("{}: {e}", file.display())),
        }
    }
    (found, unreadable)
}

/// The community lines of one file's text.
pub fn communities_in(file: &Path, text: &str) -> Vec<Community> {
    text.lines()
        .enumerate()
        .filter_map(|(n, line)| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let directive = words.first()?.to_ascii_lowercase();
            if !COMMUNITY_DIRECTIVES.contains(&directive.as_str()) {
                return None;
            }
            // com2sec [-Cn CONTEXT] NAME SOURCE COMMUNITY: the community is
            // last; r[ow]community COMMUNITY [SOURCE [OID]]: it is first.
            let secret = if directive.starts_with("com2sec") {
                words.len() - 1
            } else {
                1
            };
            let masked: Vec<&str> = words
                .iter()
                .enumerate()
                .map(|(i, w)| if i == secret { "***" } else { w })
                .collect();
            Some(Community {
                file: file.to_owned(),
                line: n + 1,
                masked: masked.join(" "),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_community_lines_and_masks_the_community() {
        let text = "# rocommunity public\n\
                    agentAddress udp:161\n\
                    rocommunity  s3cret default -V systemonly\n\
                    com2sec -Cn ctx readonly 10.0.0.0/8 fleetRO\n\
                    createUser admin SHA-512 \"x\" AES \"y\"\n\
                    RWCOMMUNITY6 private\n";
        let found = communities_in(Path::new("/etc/snmp/snmpd.conf"), text);
        let lines: Vec<(usize, &str)> = found.iter().map(|c| (c.line, c.masked.as_str())).collect();
        assert_eq!(
            lines,
            [
                (3, "rocommunity *** default -V systemonly"),
                (4, "com2sec -Cn ctx readonly 10.0.0.0/8 ***"),
                (6, "RWCOMMUNITY6 ***"),
            ]
        );
        assert!(found.iter().all(|c| !c.masked.contains("s3cret")));
    }

    #[test]
    fn reads_the_files_given_on_the_command_line() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let files = config_files(&args(&[
            "/usr/sbin/snmpd",
            "-LS4d",
            "-c",
            "/opt/a.conf,/opt/b.conf",
            "-c/opt/c.conf",
        ]));
        for want in [
            "/etc/snmp/snmpd.conf",
            "/opt/a.conf",
            "/opt/b.conf",
            "/opt/c.conf",
        ] {
            assert!(files.contains(&PathBuf::from(want)), "{want} in {files:?}");
        }
    }
}
