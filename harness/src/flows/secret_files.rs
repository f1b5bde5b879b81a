//! Which files hold secrets, who can get at them, and what happens when
//! those users try.
//!
//! The stores: the password databases and their backups (`/etc/shadow`,
//! `/etc/gshadow`, `shadow-`, `gshadow-`, pam_unix's `opasswd`), sshd's
//! host keys, every file under `/etc/ssl/private`, and every file the
//! device walk ([`crate::facts::secrets_at_rest`]) finds holding a private
//! key or password hashes, wherever it is (a copy of shadow in
//! /var/backups, a hash in passwd's second field, a DER key in /opt).
//! For each: mode, owner, group and the POSIX ACL, read from the
//! `system.posix_acl_access` attribute itself (the target may lack
//! `getfacl`). Who the file grants access to (others, the owning group,
//! ACL named groups and users) is then tried for real: an unprivileged
//! throw-away user opens every store, and a throw-away member of every
//! group granted access opens it too, so the evidence shows whether a grant
//! is real. Debian gives `shadow` (password hashes) and `ssl-cert`
//! (/etc/ssl/private) group read on purpose, for setgid helpers and
//! daemons: such a grant is a violation when an account that can log in is
//! in the group. Any other group's grant is a violation when its member
//! could open the file, whether or not the group has members today (an
//! account put in it later reads the secret). A person's own private key
//! in their own home directory is theirs to own.

use crate::actors::access::{try_open, try_open_with, Access, Opened};
use crate::facts::accounts::Accounts;
use crate::facts::secrets_at_rest::{self, Walk};
use crate::runtime::case::Findings;
use crate::runtime::command::{run, Groups, Setpriv};
use crate::{Evidence, TestUser};
use anyhow::{bail, Context, Result};
use std::collections::{btree_map, BTreeMap};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The password stores pam_unix and the shadow tools write, with the
/// backups they leave (`shadow-`, `gshadow-`) and pam_unix's history of old
/// hashes (`remember=`).
const PASSWORD_STORES: [&str; 5] = [
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/shadow-",
    "/etc/gshadow-",
    "/etc/security/opasswd",
];

/// What a store holds, which decides the group made to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    PasswordHashes,
    PrivateKey,
}

/// A file holding a secret, to be judged.
#[derive(Debug, Clone)]
pub struct Store {
    pub path: PathBuf,
    pub kind: Kind,
    /// What it holds, in words, for the evidence and each violation.
    pub holds: String,
}

impl Store {
    /// The group the distribution made to read this file, if any: shadow
    /// for password hashes (the databases, their backups, the daily copies
    /// in /var/backups), ssl-cert for /etc/ssl/private.
    fn designed_group(&self) -> Option<&'static str> {
        match self.kind {
            Kind::PasswordHashes => Some("shadow"),
            Kind::PrivateKey if self.path.starts_with("/etc/ssl/private") => Some("ssl-cert"),
            Kind::PrivateKey => None,
        }
    }
}

/// The walk of the device for secrets at rest, made once per run: before
/// the first test case when a case asks for it (`Case::before_run`), else
/// by the first case that needs it.
static WALK: OnceLock<Walk> = OnceLock::new();

/// The run's walk (see [`WALK`]).
pub fn device_walk() -> &'static Walk {
    WALK.get_or_init(secrets_at_rest::walk)
}

/// Walk the device before any test case creates a key or an account.
pub fn record_walk() -> Result<()> {
    device_walk();
    Ok(())
}

/// Every file holding password hashes: the stores of the shadow tools
/// that exist on this image, and every other file the walk found holding
/// a hash (a copy of shadow, a hash in passwd's second field).
pub fn password_stores() -> Vec<Store> {
    let mut stores: BTreeMap<PathBuf, Store> = PASSWORD_STORES
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .map(|path| {
            let store = Store {
                path: path.clone(),
                kind: Kind::PasswordHashes,
                holds: "a password database of the shadow tools".to_owned(),
            };
            (path, store)
        })
        .collect();
    for found in device_walk().password_hashes() {
        if found.path.is_file() {
            stores.insert(
                found.path.clone(),
                Store {
                    path: found.path.clone(),
                    kind: Kind::PasswordHashes,
                    holds: found.held.describe(),
                },
            );
        }
    }
    stores.into_values().collect()
}

/// The image's private keys: sshd's `HostKey` files (effective
/// configuration), every regular file under `/etc/ssl/private`, and every
/// file the walk found holding a private key in any encoding.
pub fn private_keys(ev: &Evidence) -> Result<Vec<Store>> {
    let mut keys: BTreeMap<PathBuf, Store> = BTreeMap::new();
    let mut add = |path: PathBuf, holds: String| {
        if path.is_file() {
            let store = Store {
                path: path.clone(),
                kind: Kind::PrivateKey,
                holds,
            };
            keys.entry(path).or_insert(store);
        }
    };
    for found in device_walk().private_keys() {
        add(found.path.clone(), found.held.describe());
    }
    if Path::new(crate::actors::sshd_match::SSHD).is_file() {
        let t = run(ev, &mut crate::actors::sshd_match::sshd_test_mode()?, None)
            .context("reading sshd's HostKey files (sshd -T)")?;
        for path in crate::facts::host_keys::named_in(&t.stdout) {
            add(path, "an sshd host key (HostKey)".to_owned());
        }
    }
    if let Ok(entries) = std::fs::read_dir("/etc/ssl/private") {
        for entry in entries.flatten() {
            add(entry.path(), "a file in /etc/ssl/private".to_owned());
        }
    }
    Ok(keys.into_values().collect())
}

/// An ACL entry's tag (acl/include/acl_ea.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    UserObj,
    User,
    GroupObj,
    Group,
    Mask,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AclEntry {
    pub tag: Tag,
    /// rwx bits (4, 2, 1).
    pub perm: u16,
    /// UID or GID for named `User`/`Group` entries.
    pub id: u32,
}

const ACL_VERSION: u32 = 2;

/// Parse the `system.posix_acl_access` value: little-endian u32 version 2,
/// then 8-byte entries (u16 tag, u16 perm, u32 id).
pub fn parse_acl(value: &[u8]) -> Result<Vec<AclEntry>> {
    let (header, body) = value
        .split_first_chunk::<4>()
        .context("ACL attribute shorter than its header")?;
    let version = u32::from_le_bytes(*header);
    if version != ACL_VERSION {
        bail!("ACL attribute version {version}, expected {ACL_VERSION}");
    }
    if body.len() % 8 != 0 {
        bail!(
            "ACL attribute body of {} bytes is not whole entries",
            body.len()
        );
    }
    body.chunks_exact(8)
        .map(|e| {
            let tag = match u16::from_le_bytes([e[0], e[1]]) {
                0x01 => Tag::UserObj,
                0x02 => Tag::User,
                0x04 => Tag::GroupObj,
                0x08 => Tag::Group,
                0x10 => Tag::Mask,
                0x20 => Tag::Other,
                other => bail!("unknown ACL tag {other:#x}"),
            };
            Ok(AclEntry {
                tag,
                perm: u16::from_le_bytes([e[2], e[3]]) & 0o7,
                id: u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
            })
        })
        .collect()
}

/// The file's access ACL, `None` when it has none (or the filesystem has no
/// ACL support).
pub fn read_acl(path: &Path) -> Result<Option<Vec<AclEntry>>> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .with_context(|| format!("{} contains a NUL byte", path.display()))?;
    let name = c"system.posix_acl_access";
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: both strings are NUL-terminated and `buf` is valid for
        // `buf.len()` bytes; getxattr writes at most that many.
        let n = unsafe {
            libc::getxattr(
                c_path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n >= 0 {
            buf.truncate(n as usize);
            return parse_acl(&buf)
                .map(Some)
                .with_context(|| format!("parsing the ACL of {}", path.display()));
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::EOPNOTSUPP) => return Ok(None),
            Some(libc::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            _ => return Err(err).with_context(|| format!("reading the ACL of {}", path.display())),
        }
    }
}

/// Who a grant is to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grantee {
    Other,
    Group(u32),
    User(u32),
}

/// Read and/or write access a file's mode or ACL gives someone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub to: Grantee,
    pub read: bool,
    pub write: bool,
    /// "mode", "ACL" — where the grant comes from, for the evidence.
    pub via: &'static str,
}

/// The grants of a file other than to its owner: "other" bits, the owning
/// group's bits and the ACL's named groups and users (those three limited
/// by the ACL mask).
pub fn grants(mode: u32, gid: u32, acl: Option<&[AclEntry]>) -> Vec<Grant> {
    let mut found = Vec::new();
    let mut push = |to, perm: u32, via| {
        if perm & 0o6 != 0 {
            found.push(Grant {
                to,
                read: perm & 0o4 != 0,
                write: perm & 0o2 != 0,
                via,
            });
        }
    };
    push(Grantee::Other, mode & 0o7, "mode");
    match acl {
        None => push(Grantee::Group(gid), (mode >> 3) & 0o7, "mode"),
        Some(entries) => {
            let mask = entries
                .iter()
                .find(|e| e.tag == Tag::Mask)
                .map_or(0o7, |e| u32::from(e.perm));
            for e in entries {
                let perm = u32::from(e.perm) & mask;
                match e.tag {
                    Tag::GroupObj => push(Grantee::Group(gid), perm, "mode"),
                    Tag::Group => push(Grantee::Group(e.id), perm, "ACL"),
                    Tag::User => push(Grantee::User(e.id), perm, "ACL"),
                    _ => {}
                }
            }
        }
    }
    found
}

/// One store as root sees it.
#[derive(Debug, Clone)]
pub struct SecretFile {
    pub path: PathBuf,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub acl: Option<Vec<AclEntry>>,
}

impl SecretFile {
    pub fn read(path: &Path) -> Result<Self> {
        let meta =
            std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(SecretFile {
            path: path.to_owned(),
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            acl: read_acl(path)?,
        })
    }

    pub fn grants(&self) -> Vec<Grant> {
        grants(self.mode, self.gid, self.acl.as_deref())
    }
}

fn describe(file: &SecretFile, accounts: &Accounts) -> String {
    let acl = match &file.acl {
        None => "no ACL".to_owned(),
        Some(entries) => {
            let list: Vec<String> = entries
                .iter()
                .map(|e| {
                    let who = match e.tag {
                        Tag::UserObj => "user::".to_owned(),
                        Tag::User => format!("user:{}:", accounts.user_name(e.id)),
                        Tag::GroupObj => "group::".to_owned(),
                        Tag::Group => format!("group:{}:", accounts.group_name(e.id)),
                        Tag::Mask => "mask::".to_owned(),
                        Tag::Other => "other::".to_owned(),
                    };
                    format!("{who}{}", rwx(u32::from(e.perm)))
                })
                .collect();
            format!("ACL {}", list.join(","))
        }
    };
    format!(
        "{}: mode {:04o}, owner {}, group {}, {acl}",
        file.path.display(),
        file.mode,
        accounts.user_name(file.uid),
        accounts.group_name(file.gid)
    )
}

fn rwx(perm: u32) -> String {
    [(4, 'r'), (2, 'w'), (1, 'x')]
        .iter()
        .map(|&(bit, c)| if perm & bit != 0 { c } else { '-' })
        .collect()
}

fn accesses(read: bool, write: bool) -> Vec<Access> {
    let mut list = Vec::new();
    if read {
        list.push(Access::Read);
    }
    if write {
        list.push(Access::Write);
    }
    list
}

/// What `user` could open of `accesses` on `path` (the verbs allowed), each
/// attempt in the evidence; the data itself is never read.
fn tried(
    ev: &Evidence,
    user: &TestUser,
    path: &Path,
    accesses: &[Access],
) -> Result<Vec<&'static str>> {
    let mut allowed = Vec::new();
    for &access in accesses {
        match try_open(ev, user, path, access)? {
            Opened::Allowed => allowed.push(access.verb()),
            Opened::Denied(message) => ev.ok(format!(
                "{} for {} as {}: denied ({message})",
                path.display(),
                access.verb(),
                user.name()
            )),
        }
    }
    Ok(allowed)
}

/// Try every store as `plain` (an unprivileged user in no extra group) and
/// as a throw-away member of every group the store's mode or ACL grants
/// access to, and judge the grants. Each file is a step of `findings`, so a
/// file that cannot be checked never hides a violation found in another;
/// each violation names the file and who can get at it.
pub fn check_stores(ev: &Evidence, plain: &TestUser, stores: &[Store], findings: &mut Findings) {
    let accounts = match Accounts::read() {
        Ok(accounts) => accounts,
        Err(e) => return findings.step(Err(e)),
    };
    // One throw-away member per group, shared by the files of that group;
    // removed when this returns.
    let mut members: BTreeMap<u32, TestUser> = BTreeMap::new();
    for store in stores {
        let checked = check_store(ev, plain, store, &accounts, &mut members)
            .with_context(|| format!("checking {}", store.path.display()))
            .map(|violations| {
                violations
                    .into_iter()
                    .map(|v| format!("{v}; it holds {}", store.holds))
                    .collect()
            });
        findings.step(checked);
    }
}

fn check_store(
    ev: &Evidence,
    plain: &TestUser,
    store: &Store,
    accounts: &Accounts,
    members: &mut BTreeMap<u32, TestUser>,
) -> Result<Vec<String>> {
    let mut violations = Vec::new();
    let path = &store.path;
    let file = SecretFile::read(path)?;
    ev.note(format!(
        "{} (holds {})",
        describe(&file, accounts),
        store.holds
    ));
    if accounts.is_human(file.uid) && !own_key(store, file.uid) {
        violations.push(format!(
            "{} is owned by the human account {}",
            path.display(),
            accounts.user_name(file.uid)
        ));
    }
    violations.extend(try_as_any_user(ev, plain, &file)?);
    for grant in file.grants() {
        let violation = match grant.to {
            Grantee::Other => None,
            Grantee::User(uid) => judge_user_grant(ev, path, &grant, uid, accounts),
            Grantee::Group(gid) => try_group_grant(ev, store, &grant, gid, accounts, members)?,
        };
        violations.extend(violation);
    }
    Ok(violations)
}

/// Open the store as `plain`, a user in no extra group: a violation when
/// it can.
fn try_as_any_user(ev: &Evidence, plain: &TestUser, file: &SecretFile) -> Result<Option<String>> {
    let path = &file.path;
    let allowed = tried(ev, plain, path, &[Access::Read, Access::Write])?;
    if !allowed.is_empty() {
        return Ok(Some(format!(
            "{} is open to any user: {} (in no extra group) could open it for {} (mode {:04o})",
            path.display(),
            plain.name(),
            allowed.join(" and "),
            file.mode
        )));
    }
    if file.mode & 0o6 != 0 {
        ev.note(format!(
            "{}: the mode grants others {}, yet {} was refused (a directory on the path denies it)",
            path.display(),
            rwx(file.mode & 0o7),
            plain.name()
        ));
    }
    Ok(None)
}

/// An ACL entry for one account: a violation when the account is human.
/// Never tried as that account: the suite does not act as accounts it did
/// not create. The ACL entry is the evidence.
fn judge_user_grant(
    ev: &Evidence,
    path: &Path,
    grant: &Grant,
    uid: u32,
    accounts: &Accounts,
) -> Option<String> {
    let what = rwx_words(grant.read, grant.write);
    let name = accounts.user_name(uid);
    if accounts.is_human(uid) {
        return Some(format!(
            "{} grants the human account {name} {what} access through an {} entry (user:{name})",
            path.display(),
            grant.via
        ));
    }
    ev.note(format!(
        "{}: the {} grants {name} {what} (not a human account)",
        path.display(),
        grant.via
    ));
    None
}

/// Is `group` one made to read `store` ([`Store::designed_group`])? Root's
/// group always is.
fn designed_group(store: &Store, group: &str) -> bool {
    group == "root" || store.designed_group() == Some(group)
}

/// A private key that a person keeps in their own home directory (their
/// SSH client key): theirs to own. A copy of password hashes there is not.
fn own_key(store: &Store, uid: u32) -> bool {
    let home = match nix::unistd::User::from_uid(uid.into()) {
        Ok(Some(user)) => user.dir,
        _ => return false,
    };
    store.kind == Kind::PrivateKey && home != Path::new("/") && store.path.starts_with(home)
}

/// A grant to a group, tried as a throw-away member of it. A violation
/// when the member could open the store and either the group is not the
/// one the distribution made for it (now or later, a member reads it) or
/// an account that can log in is in it.
fn try_group_grant(
    ev: &Evidence,
    store: &Store,
    grant: &Grant,
    gid: u32,
    accounts: &Accounts,
    members: &mut BTreeMap<u32, TestUser>,
) -> Result<Option<String>> {
    let path = &store.path;
    let what = rwx_words(grant.read, grant.write);
    let group = accounts.group_name(gid);
    let member = member_of(ev, members, gid, &group)?;
    let humans = accounts.human_members(gid);
    let allowed = tried(ev, member, path, &accesses(grant.read, grant.write))?;
    let could = if allowed.is_empty() {
        "nothing (refused)".to_owned()
    } else {
        format!("open it for {}", allowed.join(" and "))
    };
    let designed = designed_group(store, &group);
    ev.note(format!(
        "{}: the {} grants group {group} {what} ({}); members that can log in: {}; the throw-away member {} could {could}",
        path.display(),
        grant.via,
        if designed {
            "the group the distribution made for it"
        } else {
            "not a group made for this file"
        },
        if humans.is_empty() {
            "none".to_owned()
        } else {
            humans.join(", ")
        },
        member.name()
    ));
    if allowed.is_empty() {
        return Ok(None);
    }
    if !designed {
        return Ok(Some(format!(
            "{} is open to group {group} ({}), which is not the group made for it: a throw-away member ({}) could open it for {}{}",
            path.display(),
            grant.via,
            member.name(),
            allowed.join(" and "),
            if humans.is_empty() {
                " (no member can log in today; any account put in the group later can)".to_owned()
            } else {
                format!("; members that can log in: {}", humans.join(", "))
            }
        )));
    }
    if humans.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "{} is open to the human account(s) {} through group {group} ({}): a throw-away member ({}) could open it for {}",
        path.display(),
        humans.join(", "),
        grant.via,
        member.name(),
        allowed.join(" and ")
    )))
}

/// The throw-away member of group `gid`, created the first time a store
/// grants that group access.
fn member_of<'m>(
    ev: &Evidence,
    members: &'m mut BTreeMap<u32, TestUser>,
    gid: u32,
    group: &str,
) -> Result<&'m TestUser> {
    match members.entry(gid) {
        btree_map::Entry::Occupied(known) => Ok(known.into_mut()),
        btree_map::Entry::Vacant(slot) => {
            let member = TestUser::create(ev)?;
            member.join_group(group)?;
            Ok(slot.insert(member))
        }
    }
}

/// A password store as it was before this run changed any account.
#[derive(Debug, Clone)]
pub struct BeforeRun {
    pub path: PathBuf,
    /// Mode, owner, group and ACL, as [`describe`] words them.
    pub state: String,
    /// What an unprivileged identity could open it for ("reading", …), or
    /// why the attempt proves nothing.
    pub opened: Result<Vec<&'static str>, String>,
    /// The group grants a member could use then (the identity given only
    /// that group), where the group is not the one made for the file or a
    /// member can log in: each a violation, worded.
    pub group_grants: Vec<String>,
}

/// The shadow tools rewrite `shadow-` and `gshadow-` with the mode and
/// owner of the live file whenever they change an account, and every test
/// case creates accounts: a backup that the image ships readable is
/// repaired by the suite's own first `useradd`. So the stores are read, and
/// tried as an unprivileged identity, once before any test case runs.
static BEFORE_RUN: OnceLock<(String, Vec<BeforeRun>)> = OnceLock::new();

/// Record the password stores before the first test case (see
/// [`BEFORE_RUN`]). The identity is a UID and GID that no account or group
/// has, with no supplementary group: no account is created or touched.
pub fn record_before_run() -> Result<()> {
    record_walk()?;
    let accounts = Accounts::read()?;
    let free = (0..1000u32)
        .map(|i| 2_000_000_000 - i)
        .find(|&id| {
            !accounts.has_uid(id)
                && !accounts.has_gid(id)
                && matches!(nix::unistd::User::from_uid(id.into()), Ok(None))
                && matches!(nix::unistd::Group::from_gid(id.into()), Ok(None))
        })
        .context("no free UID for an unprivileged identity")?;
    let identity = format!("uid {free}, gid {free}, no supplementary group, no account");
    let ev = Evidence::new("password stores before the run");
    let mut records = Vec::new();
    for store in password_stores() {
        let path = &store.path;
        let state = match SecretFile::read(path) {
            Ok(file) => describe(&file, &accounts),
            Err(e) => format!("{}: {e:#}", path.display()),
        };
        let opened = open_as(&ev, free, Groups::None, path);
        let group_grants = match SecretFile::read(path) {
            Ok(file) => group_grants_before_run(&ev, free, &store, &file, &accounts),
            Err(_) => Vec::new(),
        };
        records.push(BeforeRun {
            path: store.path,
            state,
            opened,
            group_grants,
        });
    }
    // A second call (there is none in a run) keeps the first record.
    let _ = BEFORE_RUN.set((identity, records));
    Ok(())
}

/// What the identity `id` (UID and GID, with `groups`) could open `path`
/// for, or why the attempt proves nothing.
fn open_as(
    ev: &Evidence,
    id: u32,
    groups: Groups,
    path: &Path,
) -> Result<Vec<&'static str>, String> {
    let mut opened = Ok(Vec::new());
    for access in [Access::Read, Access::Write] {
        let mut shell = Setpriv::new(id, id, groups).command("sh");
        shell
            .current_dir("/")
            .env_clear()
            .env("PATH", "/usr/bin:/bin");
        match (try_open_with(ev, shell, path, access), &mut opened) {
            (Ok(Opened::Allowed), Ok(allowed)) => allowed.push(access.verb()),
            (Ok(Opened::Denied(_)), _) | (_, Err(_)) => {}
            (Err(e), _) => opened = Err(format!("{e:#}")),
        }
    }
    opened
}

/// The group grants of `file` before the run, each tried as identity `id`
/// given only that group: a violation where it opens the file and the
/// group is not the one made for it, or has a member that can log in.
fn group_grants_before_run(
    ev: &Evidence,
    id: u32,
    store: &Store,
    file: &SecretFile,
    accounts: &Accounts,
) -> Vec<String> {
    let mut violations = Vec::new();
    for grant in file.grants() {
        let Grantee::Group(gid) = grant.to else {
            continue;
        };
        let group = accounts.group_name(gid);
        let humans = accounts.human_members(gid);
        if designed_group(store, &group) && humans.is_empty() {
            continue;
        }
        if let Ok(allowed) = open_as(ev, id, Groups::Only(gid), &file.path) {
            if !allowed.is_empty() {
                violations.push(format!(
                    "before the run changed any account, {} was open to group {group} ({}{}): an identity in that group only could open it for {}",
                    file.path.display(),
                    grant.via,
                    if humans.is_empty() {
                        ", not the group made for it, no member today".to_owned()
                    } else {
                        format!(", members that can log in: {}", humans.join(", "))
                    },
                    allowed.join(" and ")
                ));
            }
        }
    }
    violations
}

/// The record made by [`record_before_run`]: the identity it used and
/// each store; `None` when the run did not make one.
pub fn before_run() -> Option<&'static (String, Vec<BeforeRun>)> {
    BEFORE_RUN.get()
}

fn rwx_words(read: bool, write: bool) -> &'static str {
    match (read, write) {
        (true, true) => "read and write",
        (true, false) => "read",
        (false, true) => "write",
        (false, false) => "nothing",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl_bytes(entries: &[(u16, u16, u32)]) -> Vec<u8> {
        let mut v = 2u32.to_le_bytes().to_vec();
        for &(tag, perm, id) in entries {
            v.extend(tag.to_le_bytes());
            v.extend(perm.to_le_bytes());
            v.extend(id.to_le_bytes());
        }
        v
    }

    #[test]
    fn parses_an_acl_with_a_named_user() {
        let raw = acl_bytes(&[
            (0x01, 6, u32::MAX),
            (0x02, 4, 1001),
            (0x04, 0, u32::MAX),
            (0x10, 4, u32::MAX),
            (0x20, 0, u32::MAX),
        ]);
        let acl = parse_acl(&raw).unwrap();
        assert_eq!(acl.len(), 5);
        assert_eq!(
            acl[1],
            AclEntry {
                tag: Tag::User,
                perm: 4,
                id: 1001
            }
        );
        assert_eq!(acl[3].tag, Tag::Mask);
    }

    #[test]
    fn rejects_a_malformed_acl() {
        assert!(parse_acl(&[2, 0]).is_err());
        assert!(parse_acl(&acl_bytes(&[])[..3]).is_err());
        let mut bad_version = acl_bytes(&[(0x01, 6, 0)]);
        bad_version[0] = 1;
        assert!(parse_acl(&bad_version).is_err());
        let mut truncated = acl_bytes(&[(0x01, 6, 0)]);
        truncated.pop();
        assert!(parse_acl(&truncated).is_err());
        assert!(parse_acl(&acl_bytes(&[(0x40, 6, 0)])).is_err());
    }

    #[test]
    fn mode_grants_without_acl() {
        // Debian's /etc/shadow: root:shadow 0640.
        assert_eq!(
            grants(0o640, 42, None),
            vec![Grant {
                to: Grantee::Group(42),
                read: true,
                write: false,
                via: "mode"
            }]
        );
        assert!(grants(0o600, 0, None).is_empty());
        let world = grants(0o646, 0, None);
        assert_eq!(world[0].to, Grantee::Other);
        assert!(world[0].read && world[0].write);
    }

    #[test]
    fn acl_mask_limits_named_and_group_entries() {
        let acl = [
            AclEntry {
                tag: Tag::UserObj,
                perm: 6,
                id: 0,
            },
            AclEntry {
                tag: Tag::User,
                perm: 6,
                id: 1001,
            },
            AclEntry {
                tag: Tag::GroupObj,
                perm: 4,
                id: 0,
            },
            AclEntry {
                tag: Tag::Group,
                perm: 7,
                id: 50,
            },
            AclEntry {
                tag: Tag::Mask,
                perm: 0,
                id: 0,
            },
            AclEntry {
                tag: Tag::Other,
                perm: 0,
                id: 0,
            },
        ];
        assert!(grants(0o600, 0, Some(&acl)).is_empty());
        let mut open = acl;
        open[4].perm = 4;
        let found = grants(0o640, 0, Some(&open));
        assert_eq!(
            found
                .iter()
                .map(|g| (g.to, g.read, g.write))
                .collect::<Vec<_>>(),
            vec![
                (Grantee::User(1001), true, false),
                (Grantee::Group(0), true, false),
                (Grantee::Group(50), true, false),
            ]
        );
    }
}
