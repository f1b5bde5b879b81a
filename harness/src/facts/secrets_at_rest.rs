//! Secrets at rest, found by what files hold rather than where they are:
//! one bounded walk of the filesystems the device ships and writes to,
//! each file read (up to a size cap) and judged by content.
//!
//! Two kinds of secret are recognised:
//! - private keys in every common encoding: PEM armour of any kind
//!   (PKCS#1, PKCS#8, encrypted PKCS#8, SEC1, OpenSSH, even inside another
//!   text such as a JSON string), the SSH2 and PuTTY formats, raw OpenSSH
//!   key blobs, and DER: PKCS#1 RSA, DSA, SEC1 EC, PKCS#8 (plain and
//!   encrypted) and PKCS#12 bundles;
//! - password hashes: lines in shadow, gshadow or passwd format whose
//!   password field is a crypt hash (locked `!` hashes included: a locked
//!   hash is still a hash to crack).
//!
//! What is walked: the whole tree from `/`, except the distribution's own
//! files under `/usr` (only `/usr/local` is walked: Debian packages ship
//! example and test keys there, which are public) and filesystems that are
//! pseudo (proc, sysfs, cgroup, …) or network (nfs, cifs, …) by their type
//! in the mount table. Symlinks are not followed. Files over
//! [`MAX_FILE_SIZE`] are counted, not read; the walk stops after
//! [`MAX_FILES`] files and says so.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Files larger than this are not read: keys and copies of the password
/// database are a few KiB, and the walk must stay cheap on a device.
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;

/// The walk stops after this many regular files (a bound on a device with
/// a huge data partition); the evidence says when it was reached.
pub const MAX_FILES: u64 = 400_000;

/// Filesystem types whose files are not the device's own content: kernel
/// pseudo filesystems and network filesystems (the secrets there are
/// another machine's).
const NOT_WALKED_FS: [&str; 30] = [
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "mqueue",
    "hugetlbfs",
    "autofs",
    "binfmt_misc",
    "efivarfs",
    "selinuxfs",
    "rpc_pipefs",
    "nsfs",
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "ceph",
    "glusterfs",
    "fuse.sshfs",
    "davfs",
    "afs",
];

/// What a file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// A private key, with its encoding ("PEM", "PKCS#8 DER", …).
    PrivateKey(&'static str),
    /// Password hashes: the account (or group) names of the lines whose
    /// password field is a crypt hash, with the format of each line.
    PasswordHashes(Vec<HashLine>),
}

/// One line holding a password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashLine {
    /// The line's first field: an account or group name.
    pub name: String,
    /// "shadow", "gshadow" or "passwd", told by the number of fields.
    pub format: &'static str,
}

impl Held {
    /// In words, for evidence: "a private key (PKCS#8 DER)", "password
    /// hashes of root, admin (shadow format)".
    pub fn describe(&self) -> String {
        match self {
            Held::PrivateKey(encoding) => format!("a private key ({encoding})"),
            Held::PasswordHashes(lines) => {
                let formats: BTreeSet<&str> = lines.iter().map(|l| l.format).collect();
                format!(
                    "password hash(es) of {} ({} format)",
                    lines
                        .iter()
                        .map(|l| l.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    formats.into_iter().collect::<Vec<_>>().join(" and ")
                )
            }
        }
    }
}

/// A file found holding a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub held: Held,
}

/// The result of one walk.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    pub found: Vec<Found>,
    /// Regular files seen, read or not.
    pub files: u64,
    /// Regular files over [`MAX_FILE_SIZE`], not read.
    pub too_large: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Mount points not walked, with their filesystem type.
    pub not_walked: Vec<(PathBuf, String)>,
    /// Whether the walk stopped at [`MAX_FILES`].
    pub stopped_at_cap: bool,
    pub elapsed: Duration,
}

impl Walk {
    /// The files holding a private key.
    pub fn private_keys(&self) -> impl Iterator<Item = &Found> {
        self.found
            .iter()
            .filter(|f| matches!(f.held, Held::PrivateKey(_)))
    }

    /// The files holding password hashes.
    pub fn password_hashes(&self) -> impl Iterator<Item = &Found> {
        self.found
            .iter()
            .filter(|f| matches!(f.held, Held::PasswordHashes(_)))
    }

    /// What was walked and how long it took, for evidence.
    pub fn summary(&self) -> String {
        format!(
            "walked / (of /usr only /usr/local; not the pseudo and network filesystems{}): {} regular files, {} read ({:.1} MiB), {} over {} KiB not read, in {:.2} s{}; {} holding a private key, {} holding password hashes",
            if self.not_walked.is_empty() {
                String::new()
            } else {
                format!(
                    " {}",
                    self.not_walked
                        .iter()
                        .map(|(p, t)| format!("{} ({t})", p.display()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            self.files,
            self.files - self.too_large,
            self.bytes as f64 / (1024.0 * 1024.0),
            self.too_large,
            MAX_FILE_SIZE / 1024,
            self.elapsed.as_secs_f64(),
            if self.stopped_at_cap {
                format!("; STOPPED after {MAX_FILES} files, the rest not searched")
            } else {
                String::new()
            },
            self.private_keys().count(),
            self.password_hashes().count(),
        )
    }
}

/// Walk the device's filesystems from `/` (see the module's head).
pub fn walk() -> Walk {
    walk_from(Path::new("/"), &mount_table())
}

/// Walk from `root`, skipping the mount points in `mounts` whose type is a
/// pseudo or network filesystem.
pub fn walk_from(root: &Path, mounts: &[(PathBuf, String)]) -> Walk {
    let started = Instant::now();
    let mut walk = Walk {
        not_walked: mounts
            .iter()
            .filter(|(p, t)| NOT_WALKED_FS.contains(&t.as_str()) && p.starts_with(root))
            .cloned()
            .collect(),
        ..Walk::default()
    };
    let skipped: BTreeSet<PathBuf> = walk.not_walked.iter().map(|(p, _)| p.clone()).collect();
    // The evidence names the outermost mount points only (/proc, not each
    // of the container manager's /proc/sys bind mounts).
    walk.not_walked.sort();
    walk.not_walked
        .dedup_by(|later, earlier| later.0.starts_with(&earlier.0));
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if !skipped.contains(&path) && !distribution_files(root, &path) {
                    pending.push(path);
                }
            } else if kind.is_file() {
                if walk.files >= MAX_FILES {
                    walk.stopped_at_cap = true;
                    pending.clear();
                    break;
                }
                walk.files += 1;
                let Ok(meta) = entry.metadata() else {
                    continue;
                };
                if meta.size() > MAX_FILE_SIZE {
                    walk.too_large += 1;
                    continue;
                }
                let Ok(data) = std::fs::read(&path) else {
                    continue;
                };
                walk.bytes += data.len() as u64;
                if let Some(held) = classify(&data) {
                    walk.found.push(Found { path, held });
                }
            }
        }
    }
    walk.found.sort_by(|a, b| a.path.cmp(&b.path));
    walk.elapsed = started.elapsed();
    walk
}

/// `/usr` below the walk's root, except `/usr/local`: the distribution's
/// packaged files.
fn distribution_files(root: &Path, dir: &Path) -> bool {
    dir.strip_prefix(root.join("usr"))
        .is_ok_and(|rest| rest.components().count() == 1 && rest != Path::new("local"))
}

/// Mount points and filesystem types from /proc/self/mountinfo; empty when
/// it cannot be read (then nothing is skipped by type).
pub fn mount_table() -> Vec<(PathBuf, String)> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|text| parse_mountinfo(&text))
        .unwrap_or_default()
}

/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`: the
/// fifth field is the mount point (octal escapes for space, tab, newline
/// and backslash), the first after ` - ` the type.
pub fn parse_mountinfo(text: &str) -> Vec<(PathBuf, String)> {
    text.lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let point = before.split(' ').nth(4)?;
            let fstype = after.split(' ').next()?;
            Some((PathBuf::from(unescape_octal(point)), fstype.to_owned()))
        })
        .collect()
}

fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(code) = u8::from_str_radix(digits, 8) {
                out.push(code);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What `data` holds, if it is a secret this module recognises.
pub fn classify(data: &[u8]) -> Option<Held> {
    if let Some(encoding) = private_key_encoding(data) {
        return Some(Held::PrivateKey(encoding));
    }
    let lines = hash_lines(data);
    (!lines.is_empty()).then_some(Held::PasswordHashes(lines))
}

/// The encoding of the private key `data` holds, if any.
pub fn private_key_encoding(data: &[u8]) -> Option<&'static str> {
    if has_pem_private_key(data) {
        return Some("PEM");
    }
    if data.starts_with(b"openssh-key-v1\0") {
        return Some("OpenSSH binary");
    }
    if data.starts_with(b"PuTTY-User-Key-File-") {
        return Some("PuTTY");
    }
    if data.starts_with(b"---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----") {
        return Some("SSH2");
    }
    der_private_key(data)
}

/// PEM armour `-----BEGIN … PRIVATE KEY-----` followed by a body and an
/// `-----END` line, anywhere in the data (also inside a string of another
/// text, with its newlines escaped). A script or manual that only names
/// the armour line has no body and is not a key.
fn has_pem_private_key(data: &[u8]) -> bool {
    const BEGIN: &[u8] = b"-----BEGIN ";
    const TAIL: &[u8] = b"PRIVATE KEY-----";
    let mut from = 0;
    while let Some(at) = find(&data[from..], BEGIN) {
        let start = from + at + BEGIN.len();
        from = start;
        // The label: "RSA ", "ENCRYPTED ", "OPENSSH ", "" (PKCS#8) …
        let label_end = data[start..]
            .iter()
            .take(32)
            .position(|b| !(b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b' '))
            .map_or((start + 32).min(data.len()), |n| start + n);
        let label = &data[start..label_end];
        let Some(tail_at) = find(label, b"PRIVATE KEY") else {
            continue;
        };
        let after_label = start + tail_at;
        if !data[after_label..].starts_with(TAIL) {
            continue;
        }
        let body_start = after_label + TAIL.len();
        let Some(end) = find(&data[body_start..], b"-----END ") else {
            continue;
        };
        let body = &data[body_start..body_start + end];
        let base64 = body
            .iter()
            .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
            .count();
        if base64 >= 64 {
            return true;
        }
    }
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A DER value: its tag and content.
#[derive(Debug, Clone, Copy)]
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;

/// `1.2.840.113549` (RSA Data Security), the prefix of the PKCS OIDs.
const PKCS_ARC: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d];

/// One DER value at the start of `data` and what follows it.
fn tlv(data: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| {
        (
            Tlv {
                tag,
                content: &rest[..len],
            },
            &rest[len..],
        )
    })
}

/// The values inside a constructed value's content, or None when it does
/// not parse as a sequence of values.
fn children(content: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut rest = content;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (value, after) = tlv(rest)?;
        out.push(value);
        rest = after;
    }
    Some(out)
}

fn small_integer(value: &Tlv<'_>) -> Option<u8> {
    (value.tag == INTEGER && value.content.len() == 1).then(|| value.content[0])
}

/// The first value of a SEQUENCE is an OID under the PKCS arc followed by
/// `suffix` (or any OID when `suffix` is None).
fn algorithm_is(value: &Tlv<'_>, suffix: Option<&[u8]>) -> bool {
    if value.tag != SEQUENCE {
        return false;
    }
    let Some((oid, _)) = tlv(value.content) else {
        return false;
    };
    oid.tag == OID
        && match suffix {
            None => !oid.content.is_empty(),
            Some(suffix) => {
                oid.content.starts_with(PKCS_ARC)
                    && oid.content[PKCS_ARC.len()..].starts_with(suffix)
            }
        }
}

/// A whole file that is one DER private key structure.
fn der_private_key(data: &[u8]) -> Option<&'static str> {
    let (outer, rest) = tlv(data)?;
    if outer.tag != SEQUENCE || !rest.is_empty() {
        return None;
    }
    let parts = children(outer.content)?;
    let version = parts.first().and_then(small_integer);
    let all_integers = parts.iter().all(|p| p.tag == INTEGER);
    let big_integer = parts
        .iter()
        .any(|p| p.tag == INTEGER && p.content.len() >= 64);
    match (version, parts.as_slice()) {
        // RSAPrivateKey: version, n, e, d, p, q, dP, dQ, qInv (+ others).
        (Some(0 | 1), _) if parts.len() >= 9 && all_integers && big_integer => {
            Some("PKCS#1 RSA DER")
        }
        // OpenSSL's DSA private key: version, p, q, g, y, x.
        (Some(0), _) if parts.len() == 6 && all_integers && big_integer => Some("DSA DER"),
        // PrivateKeyInfo / OneAsymmetricKey: version, algorithm, key.
        (Some(0 | 1), [_, algorithm, key, ..])
            if algorithm_is(algorithm, None) && key.tag == OCTET_STRING =>
        {
            Some("PKCS#8 DER")
        }
        // ECPrivateKey: version 1, the key, [0] parameters, [1] public key.
        (Some(1), [_, key, more @ ..])
            if key.tag == OCTET_STRING
                && !key.content.is_empty()
                && more.iter().all(|m| matches!(m.tag, 0xa0 | 0xa1)) =>
        {
            Some("SEC1 EC DER")
        }
        // PFX: version 3, authSafe ContentInfo (pkcs7 data or signedData).
        (Some(3), [_, auth_safe, ..])
            if algorithm_is(auth_safe, Some(&[0x01, 0x07, 0x01]))
                || algorithm_is(auth_safe, Some(&[0x01, 0x07, 0x02])) =>
        {
            Some("PKCS#12")
        }
        // EncryptedPrivateKeyInfo: a PBES (PKCS#5) or PKCS#12 PBE
        // algorithm, the encrypted key.
        (None, [algorithm, key])
            if key.tag == OCTET_STRING
                && (algorithm_is(algorithm, Some(&[0x01, 0x05]))
                    || algorithm_is(algorithm, Some(&[0x01, 0x0c, 0x01]))) =>
        {
            Some("encrypted PKCS#8 DER")
        }
        _ => None,
    }
}

/// Lines in shadow (9 fields), gshadow (4) or passwd (7) format whose
/// second field is a crypt hash.
pub fn hash_lines(data: &[u8]) -> Vec<HashLine> {
    let mut found = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let fields: Vec<&[u8]> = line.split(|&b| b == b':').collect();
        let format = match fields.len() {
            9 => "shadow",
            7 => "passwd",
            4 => "gshadow",
            _ => continue,
        };
        if is_name(fields[0]) && is_crypt_hash(fields[1]) {
            found.push(HashLine {
                name: String::from_utf8_lossy(fields[0]).into_owned(),
                format,
            });
        }
    }
    found
}

/// An account or group name as shadow's tools accept it.
fn is_name(field: &[u8]) -> bool {
    let field = field.strip_suffix(b"$").unwrap_or(field);
    !field.is_empty()
        && field.len() <= 64
        && (field[0].is_ascii_alphabetic() || field[0] == b'_')
        && field
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A crypt(3) hash, locked (`!` prefix) or not: `$id$…` (MD5, bcrypt,
/// SHA-256/512, yescrypt, gost-yescrypt, scrypt, …), the 13 characters of
/// traditional DES, or BSDi's `_` extended DES.
pub fn is_crypt_hash(field: &[u8]) -> bool {
    let field = field.strip_prefix(b"!").unwrap_or(field);
    let salt_chars = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/');
    if let Some(rest) = field.strip_prefix(b"$") {
        let Some(id_end) = rest.iter().position(|&b| b == b'$') else {
            return false;
        };
        let id = &rest[..id_end];
        return (1..=6).contains(&id.len())
            && id.iter().all(u8::is_ascii_alphanumeric)
            && field.len() >= 20
            && field
                .iter()
                .all(|b| salt_chars(b) || matches!(b, b'$' | b'=' | b',' | b'-'));
    }
    if let Some(rest) = field.strip_prefix(b"_") {
        return rest.len() == 19 && rest.iter().all(salt_chars);
    }
    field.len() == 13 && field.iter().all(salt_chars)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA512: &str = "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/";

    #[test]
    fn tells_crypt_hashes_from_locks_and_placeholders() {
        for hash in [
            SHA512,
            "!$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2",
            "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7",
            "$1$abcdefgh$WjMlrSxbNHsVo0Cn1bHvX0",
            "$2b$05$LhayLxezLhK1LhWvKxCyLOj0j1u.Kj0jZ0pEmm134uzrQlFvQJLF6",
            "abJnggxhB/yWI",
            "_J9..CCCCXBrJUJV154M",
        ] {
            assert!(is_crypt_hash(hash.as_bytes()), "{hash}");
        }
        for not in [
            "",
            "x",
            "*",
            "!",
            "!*",
            "!!",
            "*LK*",
            "$6$",
            "password123",
            "x:",
        ] {
            assert!(!is_crypt_hash(not.as_bytes()), "{not}");
        }
    }

    #[test]
    fn finds_hash_lines_of_every_password_database_format() {
        let text = format!(
            "root:{SHA512}:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nsvc:{SHA512}:1001:1001:Svc:/home/svc:/bin/sh\nops:{SHA512}::alice\nuser:x:1000:1000::/home/user:/bin/bash\n"
        );
        let lines = hash_lines(text.as_bytes());
        let got: Vec<(&str, &str)> = lines.iter().map(|l| (l.name.as_str(), l.format)).collect();
        assert_eq!(
            got,
            [("root", "shadow"), ("svc", "passwd"), ("ops", "gshadow")]
        );
        // /etc/passwd as Debian ships it, and prose with colons.
        assert!(hash_lines(b"root:x:0:0:root:/root:/bin/bash\n").is_empty());
        assert!(hash_lines(b"note: see: the: manual: for: how: to: do: it\n").is_empty());
    }

    /// The armour with a body of `n` base64 characters.
    fn pem(label: &str, n: usize) -> String {
        format!(
            "-----BEGIN {label}PRIVATE KEY-----\n{}\n-----END {label}PRIVATE KEY-----\n",
            "A".repeat(n)
        )
    }

    #[test]
    fn finds_pem_private_keys_of_any_kind_also_inside_other_text() {
        for label in ["", "RSA ", "EC ", "DSA ", "OPENSSH ", "ENCRYPTED "] {
            assert_eq!(
                private_key_encoding(pem(label, 100).as_bytes()),
                Some("PEM")
            );
        }
        let json = format!(
            "{{\"tls\": {{\"key\": \"{}\"}}}}",
            pem("", 100).replace('\n', "\\n")
        );
        assert_eq!(private_key_encoding(json.as_bytes()), Some("PEM"));
        // Certificates, public keys and scripts that only name the armour.
        assert_eq!(
            private_key_encoding(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            None
        );
        assert_eq!(private_key_encoding(b"-----BEGIN PUBLIC KEY-----\n"), None);
        assert_eq!(
            private_key_encoding(b"grep -q -- '-----BEGIN PRIVATE KEY-----' \"$key\"\n"),
            None
        );
        assert_eq!(private_key_encoding(pem("", 10).as_bytes()), None);
    }

    /// A DER value with a short or long length.
    fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(content.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(content);
        out
    }

    fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
        der(SEQUENCE, &parts.concat())
    }

    fn int(value: &[u8]) -> Vec<u8> {
        der(INTEGER, value)
    }

    fn oid(content: &[u8]) -> Vec<u8> {
        der(OID, content)
    }

    #[test]
    fn finds_der_private_keys_in_every_common_structure() {
        let big = [0x55u8; 128];
        let rsa = seq(&[
            int(&[0]),
            int(&big),
            int(&[1, 0, 1]),
            int(&big),
            int(&big[..64]),
            int(&big[..64]),
            int(&big[..64]),
            int(&big[..64]),
            int(&big[..64]),
        ]);
        assert_eq!(der_private_key(&rsa), Some("PKCS#1 RSA DER"));
        let dsa = seq(&[
            int(&[0]),
            int(&big),
            int(&big[..20]),
            int(&big),
            int(&big),
            int(&big[..20]),
        ]);
        assert_eq!(der_private_key(&dsa), Some("DSA DER"));
        // id-ecPublicKey 1.2.840.10045.2.1
        let ec_alg = seq(&[oid(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01])]);
        let pkcs8 = seq(&[int(&[0]), ec_alg.clone(), der(OCTET_STRING, &big[..40])]);
        assert_eq!(der_private_key(&pkcs8), Some("PKCS#8 DER"));
        let sec1 = seq(&[
            int(&[1]),
            der(OCTET_STRING, &big[..32]),
            der(0xa0, &oid(&[1, 2, 3])),
        ]);
        assert_eq!(der_private_key(&sec1), Some("SEC1 EC DER"));
        // pbes2 1.2.840.113549.1.5.13
        let pbes2 = seq(&[
            oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d]),
            seq(&[]),
        ]);
        let encrypted = seq(&[pbes2, der(OCTET_STRING, &big)]);
        assert_eq!(der_private_key(&encrypted), Some("encrypted PKCS#8 DER"));
        // pkcs7-data 1.2.840.113549.1.7.1
        let data = seq(&[
            oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01]),
            der(0xa0, &der(OCTET_STRING, &big)),
        ]);
        let pfx = seq(&[int(&[3]), data, seq(&[])]);
        assert_eq!(der_private_key(&pfx), Some("PKCS#12"));
    }

    #[test]
    fn leaves_certificates_public_keys_and_trailing_data_alone() {
        let big = [0x55u8; 128];
        let alg = seq(&[oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b])]);
        let certificate = seq(&[seq(&[int(&[2])]), alg.clone(), der(0x03, &big)]);
        assert_eq!(der_private_key(&certificate), None);
        let public = seq(&[alg.clone(), der(0x03, &big)]);
        assert_eq!(der_private_key(&public), None);
        let dh_params = seq(&[int(&big), int(&[2])]);
        assert_eq!(der_private_key(&dh_params), None);
        let mut trailing = seq(&[int(&[0]), alg, der(OCTET_STRING, &big)]);
        trailing.push(0);
        assert_eq!(der_private_key(&trailing), None);
        assert_eq!(der_private_key(b"\x30\x84\xff\xff\xff\xff"), None);
        assert_eq!(der_private_key(b""), None);
    }

    #[test]
    fn reads_mount_points_and_types_with_escapes() {
        let table = "22 1 8:1 / / rw - ext4 /dev/vda1 rw\n\
                     23 22 0:5 / /proc rw - proc proc rw\n\
                     24 22 0:40 / /mnt/my\\040share rw shared:3 - cifs //srv/x rw\n";
        assert_eq!(
            parse_mountinfo(table),
            [
                (PathBuf::from("/"), "ext4".to_owned()),
                (PathBuf::from("/proc"), "proc".to_owned()),
                (PathBuf::from("/mnt/my share"), "cifs".to_owned()),
            ]
        );
    }

    #[test]
    fn walks_a_tree_finding_secrets_and_skipping_usr_and_pseudo_mounts() -> std::io::Result<()> {
        let root = tempfile::tempdir()?;
        let r = root.path();
        for dir in [
            "etc",
            "opt/app",
            "usr/share/doc",
            "usr/local/etc",
            "proc",
            "var/backups",
        ] {
            std::fs::create_dir_all(r.join(dir))?;
        }
        std::fs::write(r.join("opt/app/device.key"), pem("", 100))?;
        std::fs::write(r.join("usr/share/doc/example.key"), pem("", 100))?;
        std::fs::write(r.join("usr/local/etc/tls.key"), pem("EC ", 100))?;
        std::fs::write(r.join("proc/fake.key"), pem("", 100))?;
        std::fs::write(
            r.join("var/backups/shadow.bak"),
            format!("root:{SHA512}:19000:0:99999:7:::\n"),
        )?;
        std::fs::write(r.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n")?;
        std::os::unix::fs::symlink(r.join("opt/app/device.key"), r.join("etc/link.key"))?;
        let mounts = [
            (r.join("proc"), "proc".to_owned()),
            (r.join("proc/sys"), "proc".to_owned()),
        ];
        let walk = walk_from(r, &mounts);
        let found: Vec<PathBuf> = walk
            .found
            .iter()
            .map(|f| {
                f.path
                    .strip_prefix(r)
                    .map(Path::to_path_buf)
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(
            found,
            [
                PathBuf::from("opt/app/device.key"),
                PathBuf::from("usr/local/etc/tls.key"),
                PathBuf::from("var/backups/shadow.bak"),
            ]
        );
        assert_eq!(walk.files, 4);
        assert_eq!(walk.not_walked, [(r.join("proc"), "proc".to_owned())]);
        assert!(walk
            .summary()
            .contains("2 holding a private key, 1 holding password hashes"));
        Ok(())
    }
}
