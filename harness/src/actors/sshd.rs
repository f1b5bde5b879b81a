//! A private sshd that enforces the system's own policy.
//!
//! The remote-login test cases must exercise the image's sshd policy and
//! PAM stack, but must never edit or restart the system sshd (a test run
//! over ssh would cut its own connection, and a failed test could leave the
//! device unreachable). [`PrivateSshd`] therefore starts a second
//! `/usr/sbin/sshd` on 127.0.0.1 (plus, on request, an address the test
//! created itself, such as its end of a veth pair) and a free port, with:
//!
//! - a private copy of `/etc/ssh/sshd_config` in which only the top-level
//!   `Port`, `ListenAddress`, `HostKey` and `PidFile` lines are commented
//!   out. Its `Include` lines stay, so the image's drop-ins in
//!   `/etc/ssh/sshd_config.d/` (on a CIP image: `AuthenticationMethods
//!   keyboard-interactive`) still apply;
//! - its own port, listen address, host key and pid file, given on the
//!   command line: sshd keeps the first value it sees for a keyword, and
//!   command-line options are seen before the file;
//! - `UsePAM yes`, so authentication goes through `/etc/pam.d/sshd`;
//! - optionally, extra `-o` settings chosen by the test
//!   ([`PrivateSshdBuilder::option`]), e.g. publickey-only or a
//!   `TrustedUserCAKeys` file. They configure this private instance only.
//!
//! Everything it needs lives in a private temporary directory (mode 0700):
//! config copy, host key, pid file, `known_hosts` for the client, and
//! sshd's own log, which goes into the evidence when the server is dropped
//! (unless the test has it log through syslog, like the system sshd, for
//! the system's log readers).

use crate::actors::net::free_port;
use crate::actors::server::{ServerProcess, Startup};
use crate::actors::sshd_match::SSHD;
use crate::runtime::case::skip;
use crate::runtime::command::{command_line, find_program, path_str, run, run_ok};
use crate::runtime::journal::{self, Undo};
use crate::Evidence;
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The system configuration whose policy the private sshd enforces.
pub use crate::facts::sshd_instances::SYSTEM_CONFIG;
/// The only address the private sshd listens on.
pub const HOST: &str = "127.0.0.1";
/// sshd's privilege-separation directory: it must exist, or sshd refuses to
/// start. On a booted image systemd creates it only while ssh.service runs.
const PRIVSEP_DIR: &str = "/run/sshd";

/// How long sshd may take to listen: key loading and PAM set-up are fast,
/// but a loaded armhf board is slow.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Another program may take the port between our probe bind and sshd's.
const START_ATTEMPTS: usize = 5;

/// Keywords the private sshd sets itself. They are commented out in the
/// config copy (`Port`, `ListenAddress`, `HostKey` and `PidFile` would make
/// it listen where the system sshd does, present the system's host key, or
/// overwrite the system's pid file), and a test cannot override them (the
/// first value wins, so the override would be silently ignored).
const OWN_KEYWORDS: [&str; 4] = ["port", "listenaddress", "hostkey", "pidfile"];
const RESERVED_OVERRIDES: [&str; 5] = ["port", "listenaddress", "hostkey", "pidfile", "usepam"];

/// Prefix of the lines commented out in the config copy, so the copy shows
/// which lines were the system's and which were disabled.
const DISABLED: &str = "#fr1-private-sshd# ";

/// Settings of the effective configuration worth quoting in the evidence:
/// the authentication policy the test is about.
const POLICY_KEYWORDS: [&str; 9] = [
    "usepam",
    "authenticationmethods",
    "passwordauthentication",
    "kbdinteractiveauthentication",
    "permitemptypasswords",
    "pubkeyauthentication",
    "permitrootlogin",
    "maxauthtries",
    "logingracetime",
];

/// Extra settings for one private sshd. Start with [`PrivateSshd::builder`].
#[derive(Debug, Clone, Default)]
pub struct PrivateSshdBuilder {
    overrides: Vec<(String, String)>,
    /// Set only if this sshd knows the keyword (e.g. an option of a newer
    /// OpenSSH than the image's).
    optional: Vec<(String, String)>,
    extra_addresses: Vec<IpAddr>,
    syslog: bool,
}

impl PrivateSshdBuilder {
    /// Add `-o KEYWORD=VALUE` for this private sshd, e.g.
    /// `.option("AuthenticationMethods", "publickey")`. It takes precedence
    /// over the system's configuration (the first value wins).
    pub fn option(mut self, keyword: &str, value: impl Into<String>) -> Self {
        self.overrides.push((keyword.to_owned(), value.into()));
        self
    }

    /// Like [`Self::option`], but only if this sshd knows `keyword`
    /// (checked with `sshd -t`); otherwise the evidence says it was left
    /// out. For options of newer OpenSSH releases, such as
    /// `PerSourcePenaltyExemptList` (9.8).
    pub fn option_if_supported(mut self, keyword: &str, value: impl Into<String>) -> Self {
        self.optional.push((keyword.to_owned(), value.into()));
        self
    }

    /// Listen on `address` too (same port), e.g. the host side of a veth
    /// pair that a test's own network namespace connects through. It must
    /// be an address the test created: the private sshd never listens
    /// where the system's does.
    pub fn listen_also(mut self, address: IpAddr) -> Self {
        self.extra_addresses.push(address);
        self
    }

    /// Log through syslog, as the system sshd does, instead of into the
    /// private log file: for a test that needs the system's log readers
    /// (fail2ban) to see this sshd. [`PrivateSshd::log`] is then empty.
    pub fn log_to_syslog(mut self) -> Self {
        self.syslog = true;
        self
    }

    /// Start the private sshd and wait until it listens. Skips the case
    /// when sshd (openssh-server) or ssh-keygen (openssh-client) is missing.
    pub fn start(self, ev: &Evidence) -> Result<PrivateSshd> {
        PrivateSshd::start_with(ev, self)
    }
}

/// A running private sshd. Dropping it kills it and every process of its
/// sessions, removes its directory, and puts its log into the evidence.
pub struct PrivateSshd {
    // Declaration order is drop order: the server must be gone before the
    // privilege-separation directory and the temporary directory go.
    server: Option<ServerProcess>,
    _privsep: PrivsepDir,
    dir: Option<TempDir>,
    dir_path: PathBuf,
    dir_journal: journal::Entry,
    port: u16,
    addresses: Vec<IpAddr>,
    known_hosts: PathBuf,
    known_hosts_line: String,
    log: PathBuf,
    syslog: bool,
    effective_config: String,
    ev: Evidence,
}

impl PrivateSshd {
    /// A private sshd with extra settings.
    pub fn builder() -> PrivateSshdBuilder {
        PrivateSshdBuilder::default()
    }

    /// A private sshd with the system's policy and nothing else.
    pub fn start(ev: &Evidence) -> Result<Self> {
        Self::builder().start(ev)
    }

    fn start_with(ev: &Evidence, wanted: PrivateSshdBuilder) -> Result<Self> {
        let PrivateSshdBuilder {
            overrides,
            optional,
            extra_addresses,
            syslog,
        } = wanted;
        // A bad override is a defect of the test, so it fails everywhere,
        // also where sshd is missing and the case would be skipped.
        check_overrides(&overrides)?;
        check_overrides(&optional)?;
        let addresses = listen_addresses(extra_addresses)?;
        if !Path::new(SSHD).is_file() {
            return skip(format!("{SSHD} is not installed (package openssh-server)"));
        }
        let Some(keygen) = find_program("ssh-keygen") else {
            return skip("ssh-keygen is not installed (package openssh-client)");
        };

        ev.step("start a private sshd on 127.0.0.1 with the system's sshd policy and PAM stack");
        let mut setup = Setup::prepare(ev, &keygen, addresses, overrides, syslog)?;
        let supported = setup.host_key.supported_options(ev, optional)?;
        setup.overrides.extend(supported);
        setup.write_config(ev)?;
        let privsep = PrivsepDir::acquire(ev)?;
        for attempt in 1..=START_ATTEMPTS {
            if let Some(running) = setup.try_start(ev, attempt)? {
                return Ok(setup.into_sshd(ev, privsep, running));
            }
        }
        bail!("sshd could not be started in {START_ATTEMPTS} attempts")
    }

    /// The port it listens on (on [`HOST`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address it listens on, always [`HOST`].
    pub fn host(&self) -> &'static str {
        HOST
    }

    /// Every address it listens on: [`HOST`] first, then those given with
    /// [`PrivateSshdBuilder::listen_also`].
    pub fn addresses(&self) -> &[IpAddr] {
        &self.addresses
    }

    /// The PID of the listener (to find its lines in a shared log).
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(|s| s.pid().as_raw() as u32)
    }

    /// A `known_hosts` file that lists exactly this server's host key, for
    /// `ssh -o UserKnownHostsFile=… -o StrictHostKeyChecking=yes`.
    pub fn known_hosts(&self) -> &Path {
        &self.known_hosts
    }

    /// The `known_hosts` line: `[127.0.0.1]:PORT ssh-ed25519 AAAA…`.
    pub fn known_hosts_line(&self) -> &str {
        &self.known_hosts_line
    }

    /// The private directory (mode 0700, removed on drop), for files a test
    /// points its settings at.
    pub fn dir(&self) -> &Path {
        &self.dir_path
    }

    /// `sshd -T` of this instance: the policy it really enforces.
    pub fn effective_config(&self) -> &str {
        &self.effective_config
    }

    /// One setting of the effective configuration, lower-case keyword
    /// (`"permitemptypasswords"`); all values of a repeated keyword, joined
    /// by newlines.
    pub fn effective(&self, keyword: &str) -> Option<String> {
        let values: Vec<&str> = self
            .effective_config
            .lines()
            .filter_map(|l| l.strip_prefix(keyword)?.strip_prefix(' '))
            .collect();
        (!values.is_empty()).then(|| values.join("\n"))
    }

    /// What sshd logged so far (e.g. `Accepted keyboard-interactive/pam for …`).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for PrivateSshd {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop();
        }
        let log = self.log();
        let mut block = format!("private sshd log ({HOST}:{}):", self.port);
        for line in log.lines() {
            let _ = write!(block, "\n  | {line}");
        }
        if self.syslog {
            block.push_str(" (it logged through syslog)");
        } else if log.trim().is_empty() {
            block.push_str(" (empty)");
        }
        self.ev.note(block);
        if let Some(dir) = self.dir.take() {
            match dir.close() {
                Ok(()) => {
                    self.dir_journal.done();
                    self.ev
                        .cleanup(format!("removed {}", self.dir_path.display()))
                }
                Err(e) => self
                    .ev
                    .cleanup(format!("FAILED to remove {}: {e}", self.dir_path.display())),
            }
        }
        // `privsep` is released after this, with the server already gone.
    }
}

/// One private sshd before it runs: its private directory with host key
/// and configuration, and what every start attempt passes on the command
/// line.
struct Setup {
    dir: TempDir,
    dir_path: PathBuf,
    dir_journal: journal::Entry,
    host_key: HostKey,
    config: PathBuf,
    pid_file: PathBuf,
    known_hosts: PathBuf,
    log: PathBuf,
    addresses: Vec<IpAddr>,
    overrides: Vec<(String, String)>,
    syslog: bool,
}

/// A start attempt whose sshd listens.
struct Running {
    server: ServerProcess,
    port: u16,
    effective: String,
    known_hosts_line: String,
}

impl Setup {
    /// The private directory (journaled, mode 0700) and the host key in it.
    fn prepare(
        ev: &Evidence,
        keygen: &Path,
        addresses: Vec<IpAddr>,
        overrides: Vec<(String, String)>,
        syslog: bool,
    ) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("fr1-sshd-")
            .tempdir()
            .context("creating the private sshd's directory")?;
        let dir_path = dir.path().to_path_buf();
        let dir_journal = journal::record(&Undo::RemoveTree {
            path: dir_path.clone(),
        })?;
        // Host key, config and log are nobody else's business; sshd also
        // refuses a host key that others can read.
        fs::set_permissions(&dir_path, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod 0700 {}", dir_path.display()))?;
        let host_key = HostKey::create(ev, keygen, &dir_path)?;
        Ok(Setup {
            config: dir_path.join("sshd_config"),
            pid_file: dir_path.join("sshd.pid"),
            known_hosts: dir_path.join("known_hosts"),
            log: dir_path.join("sshd.log"),
            dir,
            dir_path,
            dir_journal,
            host_key,
            addresses,
            overrides,
            syslog,
        })
    }

    /// The private copy of the system's configuration, and what the
    /// evidence needs to say about it and about the test's own settings.
    fn write_config(&self, ev: &Evidence) -> Result<()> {
        let system = match fs::read_to_string(SYSTEM_CONFIG) {
            Ok(text) => text,
            // sshd compiled-in defaults are then the system's policy too.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                ev.note(format!(
                    "{SYSTEM_CONFIG} does not exist: sshd's built-in defaults apply"
                ));
                String::new()
            }
            Err(e) => return Err(e).with_context(|| format!("reading {SYSTEM_CONFIG}")),
        };
        let (config_text, disabled) = private_config(&system);
        let config = &self.config;
        fs::write(config, config_text).with_context(|| format!("writing {}", config.display()))?;
        ev.note(format!(
            "private config {} = copy of {SYSTEM_CONFIG} (Include lines and drop-ins kept); lines disabled in the copy: {}",
            config.display(),
            if disabled.is_empty() { "none".to_owned() } else { disabled.join(" | ") }
        ));
        if !self.overrides.is_empty() {
            let shown: Vec<String> = self
                .overrides
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            ev.note(format!(
                "settings of this test's private sshd only: {}",
                shown.join(", ")
            ));
        }
        Ok(())
    }

    /// One attempt on a free port: `None` when another program took the
    /// port before sshd could bind it, so the caller tries another.
    fn try_start(&self, ev: &Evidence, attempt: usize) -> Result<Option<Running>> {
        let port = free_port()?;
        let args = self.args(port)?;
        // The configuration is the same on every attempt: checked once.
        if attempt == 1 {
            let checked = run(ev, Command::new(SSHD).arg("-t").args(&args), None)?;
            if !checked.success {
                bail!(
                    "sshd -t rejects the private sshd's configuration: {}",
                    checked.all_output().trim()
                );
            }
        }
        let effective = run_ok(
            ev,
            crate::actors::sshd_match::sshd_test_mode()?.args(&args),
            None,
        )
        .context("reading the private sshd's effective configuration (sshd -T)")?
        .stdout;
        check_listens_only_on(&effective, port, &self.addresses)?;

        // Written before sshd starts, so nothing can fail between "it
        // listens" and handing out the PrivateSshd that stops it.
        let known_hosts_line = self.host_key.known_hosts_line(HOST, port);
        let all_lines: String = self
            .addresses
            .iter()
            .map(|a| self.host_key.known_hosts_line(a, port) + "\n")
            .collect();
        fs::write(&self.known_hosts, all_lines)
            .with_context(|| format!("writing {}", self.known_hosts.display()))?;
        let mut server = self.spawn(ev, &args)?;
        let started = Instant::now();
        match server.wait_listening(port, START_TIMEOUT)? {
            Startup::Listening => {
                self.note_listening(ev, &server, port, started, &effective);
                Ok(Some(Running {
                    server,
                    port,
                    effective,
                    known_hosts_line,
                }))
            }
            Startup::Exited(status) => {
                let text = fs::read_to_string(&self.log).unwrap_or_default();
                if !text.contains("Address already in use") {
                    bail!(
                        "the private sshd exited ({status}) before it listened on {HOST}:{port}; its log:\n{}",
                        text.trim_end()
                    );
                }
                // Someone took the port we picked meanwhile.
                if attempt == START_ATTEMPTS {
                    bail!("sshd could not bind a free port in {START_ATTEMPTS} attempts; last log:\n{text}");
                }
                ev.note(format!(
                    "port {port} was taken before sshd could bind it (attempt {attempt}); trying another. sshd said: {}",
                    text.trim()
                ));
                Ok(None)
            }
            Startup::TimedOut => {
                let text = fs::read_to_string(&self.log).unwrap_or_default();
                bail!(
                    "the private sshd (pid {}) did not listen on {HOST}:{port} within {} s; its log:\n{}",
                    server.pid(),
                    START_TIMEOUT.as_secs(),
                    text.trim_end()
                );
            }
        }
    }

    /// sshd's command line for `port`, without `-D`/`-e`.
    fn args(&self, port: u16) -> Result<Vec<String>> {
        let mut args: Vec<String> = vec![
            "-f".into(),
            path_str(&self.config)?,
            // -p rather than -o Port: ports given with -p make sshd ignore
            // every Port line, also those in drop-ins, which -o would not.
            "-p".into(),
            port.to_string(),
            "-o".into(),
            format!("HostKey={}", path_str(&self.host_key.path)?),
            "-o".into(),
            format!("PidFile={}", path_str(&self.pid_file)?),
            "-o".into(),
            "UsePAM=yes".into(),
        ];
        for a in &self.addresses {
            args.push("-o".into());
            args.push(format!("ListenAddress={}", listen_address(*a)));
        }
        for (k, v) in &self.overrides {
            args.push("-o".into());
            args.push(format!("{k}={v}"));
        }
        Ok(args)
    }

    /// Start sshd in the foreground as our child, its output in the
    /// private log file.
    fn spawn(&self, ev: &Evidence, args: &[String]) -> Result<ServerProcess> {
        let log_file = fs::File::create(&self.log)
            .with_context(|| format!("creating {}", self.log.display()))?;
        let mut cmd = Command::new(SSHD);
        // -D: stay in the foreground (our child); -e: log to stderr,
        // i.e. the private log file, unless the test wants syslog.
        cmd.arg("-D");
        if !self.syslog {
            cmd.arg("-e");
        }
        cmd.args(args)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LANG", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                log_file.try_clone().context("duplicating the log handle")?,
            ))
            .stderr(Stdio::from(log_file));
        // No PR_SET_PDEATHSIG: if the suite is killed, the listener must
        // stay alive until the journal replay kills it with its whole
        // process tree; dying on its own would orphan the per-connection
        // sshd processes, which then nothing could find.
        ev.step(format!("$ {}", command_line(&cmd)));
        // Journaled by its configuration's path, before it starts (see
        // Undo::KillByCommandLine): no PID is needed, so no SIGKILL can
        // fall between the start and the entry.
        ServerProcess::spawn_journaled(
            ev,
            "the private sshd",
            &mut cmd,
            &Undo::KillByCommandLine {
                needle: path_str(&self.config)?,
            },
        )
    }

    fn note_listening(
        &self,
        ev: &Evidence,
        server: &ServerProcess,
        port: u16,
        started: Instant,
        effective: &str,
    ) {
        let shown: Vec<String> = self
            .addresses
            .iter()
            .map(|a| format!("{a}:{port}"))
            .collect();
        ev.note(format!(
            "private sshd (pid {}) listens on {} after {:.3} s{}",
            server.pid(),
            shown.join(", "),
            started.elapsed().as_secs_f64(),
            if self.syslog {
                "; it logs through syslog, like the system sshd"
            } else {
                ""
            }
        ));
        ev.note(format!(
            "effective authentication policy: {}",
            policy_lines(effective).join("; ")
        ));
    }

    fn into_sshd(self, ev: &Evidence, privsep: PrivsepDir, running: Running) -> PrivateSshd {
        PrivateSshd {
            server: Some(running.server),
            _privsep: privsep,
            dir: Some(self.dir),
            dir_path: self.dir_path,
            dir_journal: self.dir_journal,
            port: running.port,
            addresses: self.addresses,
            known_hosts: self.known_hosts,
            known_hosts_line: running.known_hosts_line,
            log: self.log,
            syslog: self.syslog,
            effective_config: running.effective,
            ev: ev.clone(),
        }
    }
}

/// The private sshd's ed25519 host key.
struct HostKey {
    path: PathBuf,
    key_type: String,
    key_blob: String,
}

impl HostKey {
    fn create(ev: &Evidence, keygen: &Path, dir: &Path) -> Result<Self> {
        let path = dir.join("ssh_host_ed25519_key");
        run_ok(
            ev,
            Command::new(keygen)
                .args([
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "fr1-private-sshd",
                    "-f",
                ])
                .arg(&path),
            None,
        )
        .context("creating the private sshd's host key")?;
        let public = fs::read_to_string(path.with_extension("pub"))
            .context("reading the private sshd's public host key")?;
        let mut fields = public.split_whitespace();
        let (Some(key_type), Some(key_blob)) = (fields.next(), fields.next()) else {
            bail!("ssh-keygen wrote an unreadable public key: {public:?}");
        };
        Ok(HostKey {
            key_type: key_type.to_owned(),
            key_blob: key_blob.to_owned(),
            path,
        })
    }

    /// `[HOST]:PORT TYPE BLOB`, without a newline.
    fn known_hosts_line(&self, host: impl std::fmt::Display, port: u16) -> String {
        format!("[{host}]:{port} {} {}", self.key_type, self.key_blob)
    }

    /// The settings of `optional` this sshd knows, in their order; the
    /// evidence says which were left out.
    fn supported_options(
        &self,
        ev: &Evidence,
        optional: Vec<(String, String)>,
    ) -> Result<Vec<(String, String)>> {
        let mut supported = Vec::new();
        for (keyword, value) in optional {
            // Against an empty config with only our host key: does this
            // sshd know the keyword at all?
            let probe = run(
                ev,
                Command::new(SSHD)
                    .args(["-t", "-f", "/dev/null", "-o"])
                    .arg(format!("HostKey={}", path_str(&self.path)?))
                    .arg("-o")
                    .arg(format!("{keyword}={value}")),
                None,
            )?;
            if probe.success {
                supported.push((keyword, value));
            } else {
                ev.note(format!(
                    "this sshd does not know {keyword}; left out ({})",
                    probe.all_output().trim()
                ));
            }
        }
        Ok(supported)
    }
}

/// 127.0.0.1 first, then the test's own addresses; never the unspecified
/// address (that is where the system sshd listens) nor one twice.
fn listen_addresses(extra: Vec<IpAddr>) -> Result<Vec<IpAddr>> {
    let mut addresses: Vec<IpAddr> = vec![IpAddr::from([127, 0, 0, 1])];
    for a in extra {
        if a.is_unspecified() || addresses.contains(&a) {
            bail!("the private sshd cannot listen on {a} as well");
        }
        addresses.push(a);
    }
    Ok(addresses)
}

/// The lines of `sshd -T` output with a keyword of [`POLICY_KEYWORDS`].
fn policy_lines(effective: &str) -> Vec<&str> {
    effective
        .lines()
        .filter(|l| POLICY_KEYWORDS.contains(&l.split_whitespace().next().unwrap_or("")))
        .collect()
}

/// /run/sshd is shared by every private sshd of the run (test cases run in
/// parallel threads) and by the system sshd: it is created when missing and
/// removed only when the last private sshd that needed it is gone, and only
/// if we created it.
struct PrivsepDir {
    ev: Evidence,
}

struct PrivsepState {
    users: usize,
    created: bool,
}

static PRIVSEP: Mutex<PrivsepState> = Mutex::new(PrivsepState {
    users: 0,
    created: false,
});

impl PrivsepDir {
    fn acquire(ev: &Evidence) -> Result<Self> {
        let mut state = PRIVSEP.lock().unwrap_or_else(|p| p.into_inner());
        if !Path::new(PRIVSEP_DIR).is_dir() {
            fs::create_dir(PRIVSEP_DIR).with_context(|| format!("creating {PRIVSEP_DIR}"))?;
            fs::set_permissions(PRIVSEP_DIR, fs::Permissions::from_mode(0o755))
                .with_context(|| format!("chmod 0755 {PRIVSEP_DIR}"))?;
            state.created = true;
            ev.note(format!(
                "created {PRIVSEP_DIR} (sshd's privilege-separation directory; removed again afterwards)"
            ));
        }
        state.users += 1;
        Ok(PrivsepDir { ev: ev.clone() })
    }
}

impl Drop for PrivsepDir {
    fn drop(&mut self) {
        let mut state = PRIVSEP.lock().unwrap_or_else(|p| p.into_inner());
        state.users = state.users.saturating_sub(1);
        if state.users == 0 && state.created {
            state.created = false;
            // remove_dir, not remove_dir_all: if something else put files
            // there meanwhile, it is no longer only ours.
            match fs::remove_dir(PRIVSEP_DIR) {
                Ok(()) => self.ev.cleanup(format!("removed {PRIVSEP_DIR}")),
                Err(e) => self.ev.cleanup(format!("left {PRIVSEP_DIR} in place: {e}")),
            }
        }
    }
}

/// The system config with the top-level lines of [`OWN_KEYWORDS`] commented
/// out; everything else (Include lines, Match blocks, comments) verbatim.
/// Also returns the disabled lines, for the evidence.
fn private_config(system: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(system.len() + 512);
    out.push_str(
        "# Private copy of /etc/ssh/sshd_config for a test's own sshd (cip-iec-fr1-tests).\n\
         # Lines starting with \"#fr1-private-sshd# \" set where the system sshd listens,\n\
         # its host keys and pid file; the private sshd gets its own on the command line.\n",
    );
    let mut disabled = Vec::new();
    let mut in_match = false;
    for line in system.lines() {
        let keyword = line
            .trim_start()
            .split(|c: char| c.is_whitespace() || c == '=')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        // Everything after a Match line belongs to a Match block, where
        // these keywords are not allowed anyway.
        if keyword == "match" {
            in_match = true;
        }
        if !in_match && OWN_KEYWORDS.contains(&keyword.as_str()) {
            out.push_str(DISABLED);
            disabled.push(line.trim().to_owned());
        }
        out.push_str(line);
        out.push('\n');
    }
    (out, disabled)
}

fn check_overrides(overrides: &[(String, String)]) -> Result<()> {
    for (keyword, _) in overrides {
        if RESERVED_OVERRIDES.contains(&keyword.to_ascii_lowercase().as_str()) {
            bail!("the private sshd sets {keyword} itself; a test cannot override it");
        }
        if keyword.is_empty() || !keyword.chars().all(|c| c.is_ascii_alphanumeric()) {
            bail!("{keyword:?} is not an sshd_config keyword");
        }
    }
    Ok(())
}

/// `ListenAddress` syntax: IPv6 in brackets.
fn listen_address(a: IpAddr) -> String {
    match a {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// A drop-in may add a ListenAddress, which -o cannot take away: refuse to
/// run rather than listen on an address of the system sshd.
fn check_listens_only_on(effective: &str, port: u16, addresses: &[IpAddr]) -> Result<()> {
    let mut wanted: Vec<String> = addresses
        .iter()
        .map(|a| format!("{}:{port}", listen_address(*a)))
        .collect();
    wanted.sort();
    let mut listen: Vec<&str> = effective
        .lines()
        .filter_map(|l| l.strip_prefix("listenaddress "))
        .collect();
    listen.sort_unstable();
    let ports: Vec<&str> = effective
        .lines()
        .filter_map(|l| l.strip_prefix("port "))
        .collect();
    if listen != wanted || ports != [port.to_string().as_str()] {
        bail!(
            "the private sshd would not listen on {} only (listenaddress {listen:?}, port {ports:?}): \
             a drop-in under /etc/ssh/sshd_config.d sets its own ListenAddress",
            wanted.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_top_level_listen_key_and_pid_lines_are_disabled() {
        let system = "Include /etc/ssh/sshd_config.d/*.conf\n\
                      Port 22\n  listenaddress=0.0.0.0\nHostKey /etc/ssh/ssh_host_ed25519_key\n\
                      PidFile /run/sshd.pid\n#Port 2222\nPortX yes\nUsePAM yes\n\
                      Match User backup\n  ForceCommand /bin/false\n";
        let (copy, disabled) = private_config(system);
        assert_eq!(
            disabled,
            [
                "Port 22",
                "listenaddress=0.0.0.0",
                "HostKey /etc/ssh/ssh_host_ed25519_key",
                "PidFile /run/sshd.pid"
            ]
        );
        assert!(copy.contains("\nInclude /etc/ssh/sshd_config.d/*.conf\n"));
        assert!(copy.contains(&format!("\n{DISABLED}Port 22\n")));
        assert!(copy.contains("\n#Port 2222\nPortX yes\nUsePAM yes\nMatch User backup\n"));
    }

    #[test]
    fn an_extra_listen_address_is_refused() {
        let lo = [IpAddr::from([127, 0, 0, 1])];
        let ours = "port 2200\nlistenaddress 127.0.0.1:2200\nusepam yes\n";
        assert!(check_listens_only_on(ours, 2200, &lo).is_ok());
        let extra = "port 2200\nlistenaddress 0.0.0.0:2200\nlistenaddress 127.0.0.1:2200\n";
        assert!(check_listens_only_on(extra, 2200, &lo).is_err());
        let two = [lo[0], IpAddr::from([192, 0, 2, 9])];
        let both = "port 2200\nlistenaddress 192.0.2.9:2200\nlistenaddress 127.0.0.1:2200\n";
        assert!(check_listens_only_on(both, 2200, &two).is_ok());
        assert!(check_listens_only_on(ours, 2200, &two).is_err());
    }

    #[test]
    fn the_private_sshd_listens_on_loopback_first_and_never_on_any() {
        let extra = IpAddr::from([192, 0, 2, 9]);
        let got = listen_addresses(vec![extra]).unwrap();
        assert_eq!(got, [IpAddr::from([127, 0, 0, 1]), extra]);
        assert!(listen_addresses(vec![IpAddr::from([0, 0, 0, 0])]).is_err());
        assert!(listen_addresses(vec![IpAddr::from([127, 0, 0, 1])]).is_err());
        assert!(listen_addresses(vec![extra, extra]).is_err());
    }

    #[test]
    fn only_the_authentication_policy_is_quoted() {
        let effective = "port 2200\nusepam yes\nmaxauthtries 3\nx11forwarding no\n\n";
        assert_eq!(policy_lines(effective), ["usepam yes", "maxauthtries 3"]);
    }

    #[test]
    fn the_private_sshd_settings_cannot_be_overridden() {
        let o = |k: &str| vec![(k.to_owned(), "x".to_owned())];
        assert!(check_overrides(&o("AuthenticationMethods")).is_ok());
        for k in [
            "ListenAddress",
            "port",
            "HOSTKEY",
            "PidFile",
            "UsePAM",
            "Match User",
            "",
        ] {
            assert!(check_overrides(&o(k)).is_err(), "{k}");
        }
    }
}
