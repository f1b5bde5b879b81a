//! What a TCP service is, told by what it says on the wire: a short,
//! read-only conversation with a listening socket of the device, and a
//! classifier over the bytes it answered.
//!
//! The probes only open the conversation: a greeting is read; an FTP server
//! is given `USER` with an unknown random name (never `PASS`); an SMTP
//! server `EHLO`; an IMAP server `CAPABILITY`; a silent service a TLS
//! ClientHello, then a plain `GET /` (an HTTP server's pages reachable from
//! `/` are then read, [`crate::facts::http_crawl`]), then an MQTT CONNECT
//! without credentials. Nothing is ever authenticated. Whatever the
//! protocol, an answer that ends in a login or password prompt is a login
//! in clear.
//!
//! Every wait is bounded by a [`Pace`]: at least [`WAIT`], longer on a
//! device whose measured round trip (a connection answered by the test's
//! own listener, and a process started, as inetd starts a server) is slow,
//! so a slow board's server is heard rather than taken for a silent one.

use crate::facts::http_crawl::{self, Finding};
use crate::facts::services::Service;
use anyhow::{Context, Result};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long a connect, or the first byte of an answer, is waited for at
/// least (a [`Pace`] on a slow device waits longer).
pub const WAIT: Duration = Duration::from_secs(2);

/// The longest a [`Pace`] waits for one answer.
const MAX_WAIT: Duration = Duration::from_secs(20);

/// After the first bytes of an answer: the pause that ends it, at least.
const QUIET: Duration = Duration::from_millis(250);

/// At most this much of an answer is read.
const MAX_ANSWER: usize = 4096;

/// At most this much of an HTTP page is read (its links are followed).
const MAX_PAGE: usize = 256 * 1024;

/// The waits of a probe, derived from how fast this device answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// For a connect, or the first byte of an answer.
    pub wait: Duration,
    /// The pause after some bytes that ends an answer.
    pub quiet: Duration,
    /// What it was derived from: a connection's round trip plus a
    /// process start (zero for the default pace).
    pub measured: Duration,
}

impl Default for Pace {
    fn default() -> Self {
        Pace {
            wait: WAIT,
            quiet: QUIET,
            measured: Duration::ZERO,
        }
    }
}

impl Pace {
    /// From a measured round trip: 50 times it, at least [`WAIT`] (quiet:
    /// an eighth of that, at least [`QUIET`]), at most 20 s.
    pub fn from_round_trip(measured: Duration) -> Pace {
        let wait = (measured * 50).clamp(WAIT, MAX_WAIT);
        Pace {
            wait,
            quiet: (wait / 8).max(QUIET),
            measured,
        }
    }

    /// Measure: connect to `own` (a listener of the test's own that speaks
    /// first) until its first byte, and start and reap `/bin/sh -c :` (a
    /// service inetd starts per connection pays a process start before it
    /// says anything).
    pub fn measure(own: SocketAddr) -> Result<Pace> {
        let started = Instant::now();
        let mut c = Connection::open(own, Pace::default())?;
        let first = c.answer()?;
        anyhow::ensure!(
            !first.is_empty(),
            "the test's own listener at {own} said nothing: no round trip to measure"
        );
        let round_trip = started.elapsed();
        let started = Instant::now();
        std::process::Command::new("/bin/sh")
            .args(["-c", ":"])
            .status()
            .context("starting /bin/sh -c : to time a process start")?;
        Ok(Pace::from_round_trip(round_trip + started.elapsed()))
    }
}

impl std::fmt::Display for Pace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "waits {:.1} s for an answer, {:.2} s of quiet ends one (measured round trip and process start {:.1} ms)",
            self.wait.as_secs_f64(),
            self.quiet.as_secs_f64(),
            self.measured.as_secs_f64() * 1000.0
        )
    }
}

/// What a service turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// Telnet's option negotiation (IAC WILL/WONT/DO/DONT).
    Telnet,
    /// An FTP server that answered `USER` with 331: the password would
    /// follow in clear.
    FtpPasswordInClear,
    /// An FTP server that did not ask for a password (reply shown).
    Ftp,
    /// POP3 (`+OK`): USER/PASS in clear.
    Pop3,
    /// IMAP (`* OK`) that allows LOGIN before STARTTLS.
    Imap,
    /// IMAP advertising LOGINDISABLED: no login before TLS.
    ImapLoginDisabled,
    /// SMTP offering AUTH (mechanisms listed) on the plain connection.
    SmtpAuthInClear(String),
    /// SMTP without AUTH before TLS.
    Smtp,
    /// HTTP asking for Basic authentication over plain TCP (at this path).
    HttpBasic(String),
    /// HTTP serving a form with a password field that posts over plain
    /// HTTP.
    HttpPasswordForm { page: String, action: String },
    /// A service of any protocol whose answer ends in a login or password
    /// prompt (the prompt as it said it).
    LoginPrompt(String),
    /// An MQTT broker that wants a user name and password (CONNACK return
    /// code 4 or 5) on a plain connection.
    MqttLoginInClear(u8),
    /// An MQTT broker that accepted a client without credentials.
    MqttAnonymous,
    /// HTTP that asked for no Basic authentication at `/`.
    Http,
    /// VNC's RFB: an unencrypted remote console.
    Vnc,
    /// SSH (encrypted).
    Ssh,
    /// TLS (encrypted): the ClientHello was answered with a TLS record.
    Tls,
    /// An rlogin/rsh/rexec server, told by its program (they say nothing
    /// first).
    RService(String),
    /// Said nothing and answered neither TLS nor HTTP.
    Silent,
    /// Said something this classifier does not know.
    Unknown,
}

/// As the evidence names it: "telnet", "SMTP offering AUTH PLAIN in clear".
impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Protocol::Telnet => f.write_str("telnet"),
            Protocol::FtpPasswordInClear => f.write_str("FTP asking for the password in clear"),
            Protocol::Ftp => f.write_str("FTP without a password request"),
            Protocol::Pop3 => f.write_str("POP3"),
            Protocol::Imap => f.write_str("IMAP allowing LOGIN without TLS"),
            Protocol::ImapLoginDisabled => f.write_str("IMAP with LOGINDISABLED"),
            Protocol::SmtpAuthInClear(m) => write!(f, "SMTP offering AUTH {m} in clear"),
            Protocol::Smtp => f.write_str("SMTP without AUTH before TLS"),
            Protocol::HttpBasic(path) => {
                write!(f, "HTTP asking for Basic authentication at {path}")
            }
            Protocol::HttpPasswordForm { page, action } => {
                write!(
                    f,
                    "HTTP page {page} with a password form posting to {action}"
                )
            }
            Protocol::LoginPrompt(prompt) => write!(f, "a login prompt ({prompt:?})"),
            Protocol::MqttLoginInClear(code) => {
                write!(f, "MQTT asking for credentials (CONNACK {code})")
            }
            Protocol::MqttAnonymous => f.write_str("MQTT accepting a client without credentials"),
            Protocol::Http => f.write_str("HTTP without Basic authentication"),
            Protocol::Vnc => f.write_str("VNC (RFB)"),
            Protocol::Ssh => f.write_str("SSH"),
            Protocol::Tls => f.write_str("TLS"),
            Protocol::RService(program) => write!(f, "the r-service {program}"),
            Protocol::Silent => f.write_str("silent (no TLS, no HTTP)"),
            Protocol::Unknown => f.write_str("unknown"),
        }
    }
}

impl Protocol {
    /// Why the service carries a login secret in clear, or `None`.
    pub fn cleartext_login(&self) -> Option<String> {
        Some(match self {
            Protocol::Telnet => "telnet: the login and password cross the network in clear".into(),
            Protocol::FtpPasswordInClear => {
                "FTP: USER was answered with 331, the password (PASS) would follow in clear".into()
            }
            Protocol::Pop3 => "POP3: USER/PASS in clear".into(),
            Protocol::Imap => "IMAP: LOGIN allowed without TLS (no LOGINDISABLED)".into(),
            Protocol::SmtpAuthInClear(m) => format!("SMTP: AUTH {m} offered without TLS"),
            Protocol::HttpBasic(path) => format!(
                "HTTP: Basic authentication at {path} over plain TCP (the password is base64, not encrypted)"
            ),
            Protocol::HttpPasswordForm { page, action } => format!(
                "HTTP: the page {page} has a password field whose form posts to {action} without TLS"
            ),
            Protocol::LoginPrompt(prompt) => format!(
                "it asks for a login or password ({prompt:?}) on a plain connection: what is typed crosses the network in clear"
            ),
            Protocol::MqttLoginInClear(code) => format!(
                "MQTT: the broker wants a user name and password (CONNACK return code {code}) on a plain connection, where they cross in clear"
            ),
            Protocol::Vnc => "VNC (RFB): an unencrypted remote console".into(),
            Protocol::RService(program) => {
                format!(
                    "{program}: an r-service, authenticates by host name or a password in clear"
                )
            }
            _ => return None,
        })
    }
}

/// A probed service: what it is and what it said (escaped).
#[derive(Debug, Clone)]
pub struct Probe {
    pub target: SocketAddr,
    pub protocol: Protocol,
    pub said: String,
}

/// Programs of the r-services, which wait silently for the client.
const R_SERVICES: [&str; 6] = [
    "in.rlogind",
    "in.rshd",
    "in.rexecd",
    "rlogind",
    "rshd",
    "rexecd",
];

/// Where to connect to reach a listener: its own address, with the
/// wildcard addresses replaced by loopback.
pub fn target_of(service: &Service) -> SocketAddr {
    let ip = match service.address {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    };
    SocketAddr::new(ip, service.port)
}

/// What a TCP service says first, within [`WAIT`] (escaped), when it
/// greets like an SSH server (`SSH-2.0-…`): SSH servers speak first, so
/// nothing is sent.
pub fn ssh_greeting(target: SocketAddr) -> Result<Option<String>> {
    let greeting = Connection::open(target, Pace::default())?.answer()?;
    // The identification line only: the server's key exchange offer
    // follows it at once.
    let line = greeting.split(|b| *b == b'\n').next().unwrap_or_default();
    Ok((classify_greeting(&greeting) == Greeting::Ssh)
        .then(|| escape(line).trim_end_matches("\\r").to_owned()))
}

/// Probe a listening TCP service at `pace`. `unknown_user` is the name an
/// FTP server is offered (an account that does not exist).
pub fn probe(service: &Service, unknown_user: &str, pace: Pace) -> Result<Probe> {
    let target = target_of(service);
    let r_service = service.owners.iter().find_map(|o| {
        let exe_name = o.exe.rsplit('/').next().unwrap_or_default();
        R_SERVICES
            .iter()
            .find(|r| **r == o.comm || **r == exe_name)
            .map(|r| (*r).to_owned())
    });
    let (protocol, said) = Prober { target, pace }.converse(unknown_user)?;
    let protocol = match (protocol, r_service) {
        (Protocol::Silent | Protocol::Unknown, Some(program)) => Protocol::RService(program),
        (p, _) => p,
    };
    Ok(Probe {
        target,
        protocol,
        said,
    })
}

/// The conversations with one service.
struct Prober {
    target: SocketAddr,
    pace: Pace,
}

impl Prober {
    fn open(&self) -> Result<Connection> {
        Connection::open(self.target, self.pace)
    }

    fn converse(&self, unknown_user: &str) -> Result<(Protocol, String)> {
        let mut c = self.open()?;
        let greeting = c.answer()?;
        let said = escape(&greeting);
        Ok(match classify_greeting(&greeting) {
            Greeting::Telnet => (Protocol::Telnet, said),
            Greeting::Ssh => (Protocol::Ssh, said),
            Greeting::Vnc => (Protocol::Vnc, said),
            Greeting::Pop3 => (Protocol::Pop3, said),
            Greeting::Imap if mentions(&greeting, "LOGINDISABLED") => {
                (Protocol::ImapLoginDisabled, said)
            }
            Greeting::Imap => {
                let caps = c.ask(b"a1 CAPABILITY\r\n")?;
                let _ = c.ask(b"a2 LOGOUT\r\n");
                let said = format!("{said} | CAPABILITY -> {}", escape(&caps));
                if mentions(&caps, "LOGINDISABLED") {
                    (Protocol::ImapLoginDisabled, said)
                } else {
                    (Protocol::Imap, said)
                }
            }
            Greeting::Ready if mentions(&greeting, "SMTP") => smtp(c, said)?,
            Greeting::Ready => {
                // FTP and SMTP both greet with 220; FTP is asked first.
                let reply = c.ask(format!("USER {unknown_user}\r\n").as_bytes())?;
                let _ = c.ask(b"QUIT\r\n");
                let said = format!("{said} | USER {unknown_user} -> {}", escape(&reply));
                if reply.starts_with(b"331") {
                    (Protocol::FtpPasswordInClear, said)
                } else if mentions(&greeting, "FTP") {
                    (Protocol::Ftp, said)
                } else {
                    // One connection at a time: a single-threaded server
                    // would not answer the next while this one is open.
                    drop(c);
                    smtp(self.open()?.after_greeting()?, said)?
                }
            }
            Greeting::Silent => {
                drop(c);
                self.silent()?
            }
            Greeting::Other => match login_prompt(&greeting) {
                Some(prompt) => (Protocol::LoginPrompt(prompt), said),
                None => (Protocol::Unknown, said),
            },
        })
    }

    /// A service that waits for the client: TLS first, then HTTP, then
    /// MQTT. A server that only now says what it is (a slow greeting, a
    /// prompt in answer to a line it took for a user name) is told by that.
    fn silent(&self) -> Result<(Protocol, String)> {
        let mut c = self.open()?;
        let answer = c.ask(&client_hello())?;
        let tls_said = format!("(nothing) | TLS ClientHello -> {}", escape(&answer));
        if is_tls_record(&answer) {
            return Ok((Protocol::Tls, tls_said));
        }
        if let Some(protocol) = late_greeting(&answer) {
            return Ok((protocol, tls_said));
        }
        drop(c);
        let authority = self.target.to_string();
        let answer = self.get("/")?;
        let said = format!("{tls_said} | GET / -> {}", escape(&answer));
        if http_crawl::Response::parse(&answer).is_some() {
            let crawl = http_crawl::crawl(&answer, &authority, |path| self.get(path).ok());
            let said = format!(
                "{said} | {} page(s) read: {}{}",
                crawl.requested.len(),
                crawl.requested.join(" "),
                if crawl.not_requested > 0 {
                    format!(
                        " ({} more not read: at most {} requests)",
                        crawl.not_requested,
                        http_crawl::MAX_REQUESTS
                    )
                } else {
                    String::new()
                }
            );
            return Ok(match crawl.findings.into_iter().next() {
                Some(Finding::Basic(path)) => (Protocol::HttpBasic(path), said),
                Some(Finding::PasswordForm { page, action }) => {
                    (Protocol::HttpPasswordForm { page, action }, said)
                }
                None => (Protocol::Http, said),
            });
        }
        if let Some(protocol) = late_greeting(&answer) {
            return Ok((protocol, said));
        }
        if !answer.is_empty() {
            return Ok((Protocol::Unknown, said));
        }
        let mut c = self.open()?;
        let answer = c.ask(&mqtt_connect())?;
        let said = format!(
            "{said} | MQTT CONNECT (no credentials) -> {}",
            escape(&answer)
        );
        Ok(match answer.as_slice() {
            [0x20, 0x02, _, 0] => {
                // Accepted: leave as a client should.
                let _ = c.stream.write_all(&[0xe0, 0x00]);
                (Protocol::MqttAnonymous, said)
            }
            [0x20, 0x02, _, code @ (4 | 5)] => (Protocol::MqttLoginInClear(*code), said),
            [] => (Protocol::Silent, said),
            _ => (Protocol::Unknown, said),
        })
    }

    /// `GET path` over a connection of its own, the whole page up to
    /// [`MAX_PAGE`].
    fn get(&self, path: &str) -> Result<Vec<u8>> {
        let mut c = self.open()?;
        let request = format!(
            "GET {path} HTTP/1.0\r\nHost: {}\r\nUser-Agent: cip-iec-fr1-tests\r\nConnection: close\r\n\r\n",
            self.target
        );
        c.stream
            .write_all(request.as_bytes())
            .context("sending a probe")?;
        c.answer_up_to(MAX_PAGE)
    }
}

/// An answer to something else that still says what the service is: a
/// telnet negotiation, an SSH identification, or a login prompt.
fn late_greeting(answer: &[u8]) -> Option<Protocol> {
    match classify_greeting(answer) {
        Greeting::Telnet => Some(Protocol::Telnet),
        Greeting::Ssh => Some(Protocol::Ssh),
        Greeting::Vnc => Some(Protocol::Vnc),
        _ => login_prompt(answer).map(Protocol::LoginPrompt),
    }
}

/// The prompt an answer ends with when it asks for a login, a user name or
/// a password (`vm login: `, `Password:`, `User Name :`), as said.
fn login_prompt(answer: &[u8]) -> Option<String> {
    const ASKED: [&str; 7] = [
        "login",
        "username",
        "user name",
        "user",
        "password",
        "passcode",
        "passphrase",
    ];
    let text = String::from_utf8_lossy(answer);
    let last = text.lines().map(str::trim).rev().find(|l| !l.is_empty())?;
    let lower = last.to_ascii_lowercase();
    let asked = lower.strip_suffix(':')?.trim_end();
    ASKED
        .iter()
        .any(|word| asked.ends_with(word))
        .then(|| last.to_owned())
}

/// An MQTT 3.1.1 CONNECT with a clean session and a client identifier of
/// the suite's, no user name, no password.
fn mqtt_connect() -> Vec<u8> {
    let client_id = b"cip-iec-fr1-probe";
    let mut variable = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x0a];
    variable.extend(u16_bytes(client_id.len()));
    variable.extend_from_slice(client_id);
    let mut packet = vec![0x10, u8::try_from(variable.len()).unwrap_or(0x7f)];
    packet.extend(variable);
    packet
}

/// EHLO on an SMTP connection whose greeting was read.
fn smtp(mut c: Connection, said: String) -> Result<(Protocol, String)> {
    let reply = c.ask(b"EHLO fr1-probe.invalid\r\n")?;
    let _ = c.ask(b"QUIT\r\n");
    let said = format!("{said} | EHLO -> {}", escape(&reply));
    Ok(match smtp_auth(&reply) {
        Some(mechanisms) => (Protocol::SmtpAuthInClear(mechanisms), said),
        None => (Protocol::Smtp, said),
    })
}

/// One TCP conversation with bounded waits.
struct Connection {
    stream: TcpStream,
    pace: Pace,
}

impl Connection {
    fn open(target: SocketAddr, pace: Pace) -> Result<Self> {
        let stream = TcpStream::connect_timeout(&target, pace.wait)
            .with_context(|| format!("connecting to {target}"))?;
        stream.set_write_timeout(Some(pace.wait))?;
        Ok(Connection { stream, pace })
    }

    /// For a second connection to a server that greets: read it and go on.
    fn after_greeting(mut self) -> Result<Self> {
        self.answer()?;
        Ok(self)
    }

    /// Send `request`, read the answer.
    fn ask(&mut self, request: &[u8]) -> Result<Vec<u8>> {
        self.stream.write_all(request).context("sending a probe")?;
        self.answer()
    }

    /// What the peer sends within the pace's wait, until it pauses for the
    /// pace's quiet, closes, or [`MAX_ANSWER`] bytes.
    fn answer(&mut self) -> Result<Vec<u8>> {
        self.answer_up_to(MAX_ANSWER)
    }

    fn answer_up_to(&mut self, limit: usize) -> Result<Vec<u8>> {
        let started = Instant::now();
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        while got.len() < limit && started.elapsed() < self.pace.wait * 2 {
            let wait = if got.is_empty() {
                self.pace.wait
            } else {
                self.pace.quiet
            };
            self.stream.set_read_timeout(Some(wait))?;
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                // A server that resets the connection said all it will.
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) => return Err(e).context("reading the answer"),
            }
        }
        got.truncate(limit);
        Ok(got)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// What the first bytes of a service say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Greeting {
    Telnet,
    Ssh,
    Vnc,
    Pop3,
    Imap,
    /// `220 …`: FTP or SMTP.
    Ready,
    Silent,
    Other,
}

fn classify_greeting(bytes: &[u8]) -> Greeting {
    match bytes {
        [] => Greeting::Silent,
        // IAC followed by WILL, WONT, DO or DONT.
        [0xff, 0xfb..=0xfe, ..] => Greeting::Telnet,
        b if b.starts_with(b"SSH-") => Greeting::Ssh,
        b if b.starts_with(b"RFB ") => Greeting::Vnc,
        b if b.starts_with(b"+OK") => Greeting::Pop3,
        b if b.starts_with(b"* OK") => Greeting::Imap,
        b if b.starts_with(b"220") => Greeting::Ready,
        _ => Greeting::Other,
    }
}

/// Case-insensitive: does the text contain `word`?
fn mentions(bytes: &[u8], word: &str) -> bool {
    String::from_utf8_lossy(bytes)
        .to_ascii_uppercase()
        .contains(&word.to_ascii_uppercase())
}

/// The AUTH mechanisms of an EHLO reply (`250-AUTH PLAIN LOGIN`), if any.
fn smtp_auth(reply: &[u8]) -> Option<String> {
    String::from_utf8_lossy(reply).lines().find_map(|l| {
        let keyword = l.get(4..)?.trim();
        let (first, rest) = keyword.split_once([' ', '=']).unwrap_or((keyword, ""));
        (l.starts_with("250") && first.eq_ignore_ascii_case("AUTH")).then(|| rest.trim().to_owned())
    })
}

/// A TLS record: handshake (0x16) or alert (0x15), version 3.x. An alert
/// is the answer of a TLS server that accepts none of the offer: still TLS.
fn is_tls_record(answer: &[u8]) -> bool {
    matches!(answer, [0x15 | 0x16, 0x03, ..])
}

/// A TLS 1.2 ClientHello with the usual modern suites, groups and
/// signature algorithms, enough for a TLS server to answer.
fn client_hello() -> Vec<u8> {
    let suites: &[u16] = &[
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0x009c, 0x009d,
        0x002f, 0x0035,
    ];
    let groups: &[u16] = &[0x001d, 0x0017, 0x0018];
    let signatures: &[u16] = &[
        0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601,
    ];
    let list = |items: &[u16]| -> Vec<u8> {
        let mut v = u16_bytes(items.len() * 2);
        v.extend(items.iter().flat_map(|i| i.to_be_bytes()));
        v
    };
    let extension = |kind: u16, body: Vec<u8>| -> Vec<u8> {
        let mut v = kind.to_be_bytes().to_vec();
        v.extend(u16_bytes(body.len()));
        v.extend(body);
        v
    };
    let mut extensions = extension(0x000a, list(groups));
    extensions.extend(extension(0x000b, vec![1, 0]));
    extensions.extend(extension(0x000d, list(signatures)));

    let mut hello = vec![0x03, 0x03];
    hello.extend((0u8..32).map(|i| i.wrapping_mul(37).wrapping_add(11)));
    hello.push(0); // no session id
    hello.extend(list(suites));
    hello.extend([1, 0]); // compression: null only
    hello.extend(u16_bytes(extensions.len()));
    hello.extend(extensions);

    let mut handshake = vec![0x01];
    handshake.extend(&u32::try_from(hello.len()).unwrap_or(0).to_be_bytes()[1..]);
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend(u16_bytes(handshake.len()));
    record.extend(handshake);
    record
}

fn u16_bytes(n: usize) -> Vec<u8> {
    u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes().to_vec()
}

/// Bytes for the evidence: printable ASCII as is, the rest as `\xNN`
/// (`\r`, `\n`), at most 160 bytes.
pub fn escape(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "(nothing)".to_owned();
    }
    let mut out = String::new();
    for &b in bytes.iter().take(160) {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if bytes.len() > 160 {
        out.push_str(&format!("… ({} bytes)", bytes.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::services::{Owner, Transport};
    use std::net::TcpListener;

    #[test]
    fn protocols_read_as_prose() {
        assert_eq!(Protocol::Telnet.to_string(), "telnet");
        assert_eq!(
            Protocol::SmtpAuthInClear("PLAIN LOGIN".into()).to_string(),
            "SMTP offering AUTH PLAIN LOGIN in clear"
        );
    }

    #[test]
    fn greetings_are_told_apart() {
        // inetutils/busybox telnetd: IAC DO TERMINAL-TYPE …
        assert_eq!(
            classify_greeting(&[0xff, 0xfd, 0x18, 0xff, 0xfb, 0x01]),
            Greeting::Telnet
        );
        assert_eq!(classify_greeting(&[0xff, 0xfa, 0x18]), Greeting::Other);
        assert_eq!(classify_greeting(&[0xff]), Greeting::Other);
        assert_eq!(
            classify_greeting(b"SSH-2.0-OpenSSH_10.0p2 Debian-7\r\n"),
            Greeting::Ssh
        );
        assert_eq!(classify_greeting(b"RFB 003.008\n"), Greeting::Vnc);
        assert_eq!(classify_greeting(b"+OK Dovecot ready.\r\n"), Greeting::Pop3);
        assert_eq!(
            classify_greeting(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n"),
            Greeting::Imap
        );
        assert_eq!(
            classify_greeting(b"220 (vsFTPd 3.0.3)\r\n"),
            Greeting::Ready
        );
        assert_eq!(
            classify_greeting(b"220 host ESMTP Postfix\r\n"),
            Greeting::Ready
        );
        assert_eq!(classify_greeting(b""), Greeting::Silent);
        assert_eq!(classify_greeting(b"\x00\x01junk"), Greeting::Other);
        assert!(mentions(
            b"* OK [CAPABILITY IMAP4rev1 logindisabled]",
            "LOGINDISABLED"
        ));
    }

    #[test]
    fn smtp_auth_is_read_from_the_ehlo_reply() {
        let offered = b"250-mail.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n";
        assert_eq!(smtp_auth(offered), Some("PLAIN LOGIN".to_owned()));
        assert_eq!(
            smtp_auth(b"250-x\r\n250-AUTH=LOGIN\r\n250 OK\r\n"),
            Some("LOGIN".to_owned())
        );
        assert_eq!(
            smtp_auth(b"250-x\r\n250 AUTH CRAM-MD5\r\n"),
            Some("CRAM-MD5".to_owned())
        );
        assert_eq!(smtp_auth(b"250-x\r\n250-STARTTLS\r\n250 AUTHX\r\n"), None);
        assert_eq!(smtp_auth(b"502 unknown\r\n"), None);
    }

    #[test]
    fn login_prompts_are_told_by_their_words() {
        for prompt in [
            &b"\r\nDebian GNU/Linux 12\r\n\r\nvm login: "[..],
            b"Password:",
            b"User Name :",
            b"Welcome to the maintenance port\r\nusername: ",
        ] {
            assert!(login_prompt(prompt).is_some(), "{}", escape(prompt));
        }
        for other in [
            &b"Welcome\r\n"[..],
            b"login successful\r\n",
            b"error: bad request\r\n",
            b"",
        ] {
            assert_eq!(login_prompt(other), None, "{}", escape(other));
        }
        assert_eq!(
            login_prompt(b"\r\nvm login: ").as_deref(),
            Some("vm login:")
        );
    }

    #[test]
    fn the_pace_follows_the_measured_round_trip() {
        assert_eq!(Pace::from_round_trip(Duration::from_micros(300)).wait, WAIT);
        let slow = Pace::from_round_trip(Duration::from_millis(100));
        assert_eq!(slow.wait, Duration::from_secs(5));
        assert_eq!(slow.quiet, Duration::from_millis(625));
        assert_eq!(Pace::from_round_trip(Duration::from_secs(3)).wait, MAX_WAIT);
    }

    #[test]
    fn tls_answers_and_the_client_hello() {
        assert!(is_tls_record(&[0x16, 0x03, 0x03, 0x00, 0x5a]));
        assert!(is_tls_record(&[0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46]));
        assert!(!is_tls_record(b"HTTP/1.1 400 Bad Request"));
        assert!(!is_tls_record(&[0x16]));
        let hello = client_hello();
        // Record length and handshake length agree with what follows.
        assert_eq!(&hello[..3], &[0x16, 0x03, 0x01]);
        assert_eq!(
            usize::from(u16::from_be_bytes([hello[3], hello[4]])),
            hello.len() - 5
        );
        assert_eq!(hello[5], 0x01);
        let body = u32::from_be_bytes([0, hello[6], hello[7], hello[8]]) as usize;
        assert_eq!(body, hello.len() - 9);
    }

    #[test]
    fn cleartext_verdicts() {
        for p in [
            Protocol::Telnet,
            Protocol::FtpPasswordInClear,
            Protocol::Pop3,
            Protocol::Imap,
            Protocol::SmtpAuthInClear("PLAIN".into()),
            Protocol::HttpBasic("/config/".into()),
            Protocol::HttpPasswordForm {
                page: "/".into(),
                action: "/login".into(),
            },
            Protocol::LoginPrompt("login:".into()),
            Protocol::MqttLoginInClear(5),
            Protocol::Vnc,
            Protocol::RService("in.rlogind".into()),
        ] {
            assert!(p.cleartext_login().is_some(), "{p:?}");
        }
        for p in [
            Protocol::Ssh,
            Protocol::Tls,
            Protocol::Ftp,
            Protocol::ImapLoginDisabled,
            Protocol::Smtp,
            Protocol::Http,
            Protocol::MqttAnonymous,
            Protocol::Silent,
            Protocol::Unknown,
        ] {
            assert!(p.cleartext_login().is_none(), "{p:?}");
        }
    }

    #[test]
    fn escaped_for_the_evidence() {
        assert_eq!(escape(b""), "(nothing)");
        assert_eq!(escape(b"220 ok\r\n"), "220 ok\\r\\n");
        assert_eq!(escape(&[0xff, 0xfd, 0x18]), "\\xff\\xfd\\x18");
        assert!(escape(&[b'a'; 200]).ends_with("… (200 bytes)"));
    }

    /// A one-connection server on loopback that sends `greeting` and then
    /// answers each request with the next of `replies`.
    fn server(greeting: &'static [u8], replies: &'static [&'static [u8]]) -> Service {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(greeting).unwrap();
            let mut buf = [0u8; 512];
            for reply in replies {
                if s.read(&mut buf).unwrap_or(0) == 0 {
                    return;
                }
                let _ = s.write_all(reply);
            }
        });
        Service {
            transport: Transport::Tcp,
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port,
            inode: 0,
            owners: vec![Owner {
                pid: 1,
                comm: "probe-test".into(),
                exe: "/usr/sbin/probe-test".into(),
            }],
        }
    }

    #[test]
    fn probes_over_loopback() {
        let telnet = probe(&server(&[0xff, 0xfd, 0x18], &[]), "fr1-x", Pace::default()).unwrap();
        assert_eq!(telnet.protocol, Protocol::Telnet);
        assert_eq!(telnet.target.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        let ftp = probe(
            &server(b"220 Service ready\r\n", &[b"331 Password required\r\n"]),
            "fr1-x",
            Pace::default(),
        )
        .unwrap();
        assert_eq!(ftp.protocol, Protocol::FtpPasswordInClear, "{}", ftp.said);
        let ssh = probe(
            &server(b"SSH-2.0-OpenSSH_9.2p1\r\n", &[]),
            "fr1-x",
            Pace::default(),
        )
        .unwrap();
        assert_eq!(ssh.protocol, Protocol::Ssh);
    }

    #[test]
    fn an_ssh_greeting_is_its_identification_line() {
        let dropbear = server(b"SSH-2.0-dropbear_2022.83\r\n\x00\x00\x01\xfc\x07\x14", &[]);
        assert_eq!(
            ssh_greeting(target_of(&dropbear)).unwrap().as_deref(),
            Some("SSH-2.0-dropbear_2022.83")
        );
        let ftp = server(b"220 ready\r\n", &[]);
        assert_eq!(ssh_greeting(target_of(&ftp)).unwrap(), None);
    }

    /// A server on loopback for `connections` connections: each request is
    /// read and answered by `answer` (nothing: the connection closes).
    fn answering(connections: usize, answer: fn(&[u8]) -> Vec<u8>) -> Service {
        let mut service = server(b"", &[]);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        service.port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for _ in 0..connections {
                let Ok((mut s, _)) = listener.accept() else {
                    return;
                };
                let mut buf = [0u8; 2048];
                let n = s.read(&mut buf).unwrap_or(0);
                let _ = s.write_all(&answer(&buf[..n]));
            }
        });
        service
    }

    #[test]
    fn a_silent_service_is_read_as_http_pages_then_as_mqtt() {
        let web = answering(4, |request| {
            let text = String::from_utf8_lossy(request);
            match text.split_whitespace().nth(1) {
                _ if !text.starts_with("GET ") => Vec::new(),
                Some("/") => b"HTTP/1.0 200 OK\r\n\r\n<a href=\"/config/\">cfg</a>".to_vec(),
                Some("/config/") => {
                    b"HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"d\"\r\n\r\n"
                        .to_vec()
                }
                _ => b"HTTP/1.0 404 Not Found\r\n\r\n".to_vec(),
            }
        });
        let found = probe(&web, "fr1-x", Pace::default()).unwrap();
        assert_eq!(
            found.protocol,
            Protocol::HttpBasic("/config/".into()),
            "{}",
            found.said
        );

        let broker = answering(4, |request| match request.first() {
            Some(0x10) => vec![0x20, 0x02, 0x00, 0x05],
            _ => Vec::new(),
        });
        let found = probe(&broker, "fr1-x", Pace::default()).unwrap();
        assert_eq!(
            found.protocol,
            Protocol::MqttLoginInClear(5),
            "{}",
            found.said
        );
    }

    #[test]
    fn a_prompt_in_answer_to_a_line_is_a_login_in_clear() {
        // A login service that says nothing until it reads a line, takes
        // the probe's first line for a user name and asks for the password.
        let maintenance = answering(2, |_| b"Password: ".to_vec());
        let found = probe(&maintenance, "fr1-x", Pace::default()).unwrap();
        assert_eq!(found.protocol, Protocol::LoginPrompt("Password:".into()));
        let greeter = server(b"\r\nfield-unit login: ", &[]);
        let found = probe(&greeter, "fr1-x", Pace::default()).unwrap();
        assert_eq!(
            found.protocol,
            Protocol::LoginPrompt("field-unit login:".into())
        );
    }
}
