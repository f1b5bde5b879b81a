//! Where a plain-HTTP server asks for a password: the pages reachable from
//! `/` (links, form actions, frames, redirects) on the same server, read
//! with at most [`MAX_REQUESTS`] requests, and each answer judged: a
//! `WWW-Authenticate: Basic` challenge, or a form with a password field
//! whose action is not an `https://` address, puts the password on the
//! wire in clear.
//!
//! Only the parsing and the walk are here; the caller fetches (one GET per
//! path, over its own connection), so the walk is tested without a
//! network. Only GET is ever sent: a form is read, never submitted.

use std::collections::{BTreeSet, VecDeque};

/// The most requests one server gets, `/` included.
pub const MAX_REQUESTS: usize = 20;

/// An HTTP answer, as far as the crawl needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case, values trimmed.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// `None` when the bytes are not an HTTP answer.
    pub fn parse(bytes: &[u8]) -> Option<Response> {
        let text = String::from_utf8_lossy(bytes);
        let rest = text.strip_prefix("HTTP/")?;
        let (head, body) = rest
            .split_once("\r\n\r\n")
            .or_else(|| rest.split_once("\n\n"))?;
        let mut lines = head.lines();
        let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Some(Response {
            status,
            headers,
            body: body.to_owned(),
        })
    }

    fn header<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Does it challenge for Basic authentication?
    pub fn asks_basic(&self) -> bool {
        self.header("www-authenticate")
            .any(|v| v.to_ascii_lowercase().starts_with("basic"))
    }
}

/// What the crawl found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// `WWW-Authenticate: Basic` at this path.
    Basic(String),
    /// A form with a password field at this path, posting to a plain
    /// address (its action, resolved).
    PasswordForm { page: String, action: String },
}

/// The crawl's result: what it found (at most one of each kind is needed
/// to judge, all are kept), and the paths it asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Crawl {
    pub findings: Vec<Finding>,
    pub requested: Vec<String>,
    /// Paths found but not asked for: the request budget ran out.
    pub not_requested: usize,
}

/// Walk the server from `/`, whose answer is `root`. `fetch(path)` returns
/// the raw answer to `GET path` (an error counts as no answer).
/// `authority` is the server's `host:port` as the crawl addresses it: an
/// absolute link elsewhere is not followed.
pub fn crawl(
    root: &[u8],
    authority: &str,
    mut fetch: impl FnMut(&str) -> Option<Vec<u8>>,
) -> Crawl {
    let mut result = Crawl {
        requested: vec!["/".to_owned()],
        ..Crawl::default()
    };
    let mut seen: BTreeSet<String> = BTreeSet::from(["/".to_owned()]);
    let mut queue: VecDeque<String> = VecDeque::new();
    let mut judge =
        |path: &str, answer: &[u8], queue: &mut VecDeque<String>, result: &mut Crawl| {
            let Some(response) = Response::parse(answer) else {
                return;
            };
            if response.asks_basic() {
                result.findings.push(Finding::Basic(path.to_owned()));
            }
            for action in password_forms(&response.body) {
                match resolve(path, &action, authority) {
                    Some(Target::Here(plain)) => result.findings.push(Finding::PasswordForm {
                        page: path.to_owned(),
                        action: plain,
                    }),
                    Some(Target::Elsewhere(address)) if !address.starts_with("https://") => {
                        result.findings.push(Finding::PasswordForm {
                            page: path.to_owned(),
                            action: address,
                        })
                    }
                    _ => {}
                }
            }
            let redirect = (300..400)
                .contains(&response.status)
                .then(|| response.header("location").next().map(str::to_owned))
                .flatten();
            for link in redirect.into_iter().chain(links(&response.body)) {
                if let Some(Target::Here(next)) = resolve(path, &link, authority) {
                    if seen.insert(next.clone()) {
                        queue.push_back(next);
                    }
                }
            }
        };
    judge("/", root, &mut queue, &mut result);
    while let Some(path) = queue.pop_front() {
        if result.requested.len() >= MAX_REQUESTS {
            result.not_requested = queue.len() + 1;
            break;
        }
        result.requested.push(path.clone());
        if let Some(answer) = fetch(&path) {
            judge(&path, &answer, &mut queue, &mut result);
        }
    }
    result
}

/// Where a link leads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A path on this server over plain HTTP.
    Here(String),
    /// An absolute address on another server or scheme.
    Elsewhere(String),
}

/// `link` as seen from page `base`: a path on this server, or an address
/// elsewhere; `None` for fragments, `javascript:`, `mailto:` and the like.
fn resolve(base: &str, link: &str, authority: &str) -> Option<Target> {
    let link = link.trim();
    let link = link.split('#').next().unwrap_or_default();
    if link.is_empty() {
        // A form without an action posts to its own page.
        return Some(Target::Here(base.to_owned()));
    }
    if let Some(rest) = link.strip_prefix("http://") {
        let (host, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
        let same = host.eq_ignore_ascii_case(authority)
            || (authority.ends_with(":80")
                && host.eq_ignore_ascii_case(&authority[..authority.len() - 3]));
        return Some(if same {
            Target::Here(normalise(&path))
        } else {
            Target::Elsewhere(link.to_owned())
        });
    }
    if link.starts_with("//") {
        return Some(Target::Elsewhere(format!("http:{link}")));
    }
    if let Some((scheme, _)) = link.split_once(':') {
        if scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return match scheme.to_ascii_lowercase().as_str() {
                "https" => Some(Target::Elsewhere(link.to_owned())),
                _ => None,
            };
        }
    }
    if link.starts_with('/') {
        return Some(Target::Here(normalise(link)));
    }
    if link.starts_with('?') {
        let page = base.split('?').next().unwrap_or(base);
        return Some(Target::Here(format!("{page}{link}")));
    }
    let dir = &base[..base
        .split('?')
        .next()
        .unwrap_or(base)
        .rfind('/')
        .map_or(0, |i| i + 1)];
    Some(Target::Here(normalise(&format!("{dir}{link}"))))
}

/// `.` and `..` segments removed; always starts with `/`.
fn normalise(path: &str) -> String {
    let (path, query) = path
        .split_once('?')
        .map_or((path, None), |(p, q)| (p, Some(q)));
    let mut parts: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    if path.ends_with('/') && !parts.is_empty() {
        out.push('/');
    }
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The values of `href`, `src` and `action` attributes in an HTML text.
fn links(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for tag in tags(html) {
        for name in ["href", "src", "action"] {
            if let Some(value) = attribute(tag, name) {
                found.push(value);
            }
        }
    }
    found
}

/// The actions of the forms that have a password field (an absent action
/// is the empty string: the form's own page).
fn password_forms(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut action: Option<String> = None;
    let mut counted = false;
    for tag in tags(html) {
        let name = tag_name(tag);
        if name == "form" {
            action = Some(attribute(tag, "action").unwrap_or_default());
            counted = false;
        } else if name == "/form" {
            action = None;
        } else if name == "input"
            && attribute(tag, "type").is_some_and(|t| t.eq_ignore_ascii_case("password"))
            && !counted
        {
            // A password field outside any form is posted by a script, to
            // the page itself as far as this reading can tell.
            found.push(action.clone().unwrap_or_default());
            counted = action.is_some();
        }
    }
    found
}

/// The insides of the `<…>` tags of an HTML text.
fn tags(html: &str) -> impl Iterator<Item = &str> {
    html.split('<')
        .skip(1)
        .filter_map(|chunk| chunk.split_once('>').map(|(tag, _)| tag))
}

fn tag_name(tag: &str) -> String {
    tag.split(|c: char| c.is_whitespace())
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// The value of attribute `name` in a tag's inside, quoted or not.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find(name) {
        let start = from + at;
        from = start + name.len();
        let before_ok = start == 0 || lower.as_bytes()[start - 1].is_ascii_whitespace();
        let rest = lower[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let value_at = tag.len() - rest.len() + 1;
        let value = tag[value_at..].trim_start();
        return Some(match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or_default().to_owned(),
            _ => value
                .split(|c: char| c.is_whitespace())
                .next()
                .unwrap_or_default()
                .to_owned(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn page(status: &str, headers: &str, body: &str) -> Vec<u8> {
        format!("HTTP/1.0 {status}\r\n{headers}Content-Type: text/html\r\n\r\n{body}").into_bytes()
    }

    /// A made-up server: path -> answer.
    fn site(pages: &[(&str, Vec<u8>)]) -> BTreeMap<String, Vec<u8>> {
        pages
            .iter()
            .map(|(p, a)| ((*p).to_owned(), a.clone()))
            .collect()
    }

    #[test]
    fn finds_basic_authentication_below_the_root() {
        let pages = site(&[
            ("/about.html", page("200 OK", "", "<p>about</p>")),
            (
                "/config/",
                page(
                    "401 Unauthorized",
                    "WWW-Authenticate: Basic realm=\"cfg\"\r\n",
                    "",
                ),
            ),
        ]);
        let root = page(
            "200 OK",
            "",
            "<a href=\"about.html\">About</a> <A HREF='/config/'>Settings</A> <a href=\"https://vendor.example/\">x</a> <a href=\"mailto:a@b\">m</a>",
        );
        let result = crawl(&root, "127.0.0.1:8080", |p| pages.get(p).cloned());
        assert_eq!(result.findings, [Finding::Basic("/config/".to_owned())]);
        assert_eq!(result.requested, ["/", "/about.html", "/config/"]);
    }

    #[test]
    fn follows_redirects_and_judges_password_forms_by_their_action() {
        let pages = site(&[
            (
                "/ui/login",
                page(
                    "200 OK",
                    "",
                    "<form method=post action=\"do_login\"><input name=u><input type=\"password\" name=p></form>\
                     <form action=\"https://device.example/login\"><input type=password></form>",
                ),
            ),
        ]);
        let root = page(
            "302 Found",
            "Location: http://127.0.0.1:8080/ui/login\r\n",
            "",
        );
        let result = crawl(&root, "127.0.0.1:8080", |p| pages.get(p).cloned());
        assert_eq!(
            result.findings,
            [Finding::PasswordForm {
                page: "/ui/login".to_owned(),
                action: "/ui/do_login".to_owned()
            }]
        );
    }

    #[test]
    fn a_redirect_to_https_and_plain_pages_find_nothing() {
        let root = page("301 Moved", "Location: https://127.0.0.1/\r\n", "");
        let result = crawl(&root, "127.0.0.1:80", |_| None);
        assert!(result.findings.is_empty());
        assert_eq!(result.requested, ["/"]);
        let root = page("200 OK", "", "<a href=\"/a\">a</a>");
        let result = crawl(&root, "127.0.0.1:80", |_| {
            Some(page("200 OK", "", "<p>a</p>"))
        });
        assert!(result.findings.is_empty());
    }

    #[test]
    fn the_request_budget_bounds_the_walk() {
        let root = page("200 OK", "", "<a href=\"/p0\">0</a>");
        let mut asked = 0;
        let result = crawl(&root, "h:80", |p| {
            asked += 1;
            let n: usize = p[2..].parse().unwrap_or(0);
            Some(page(
                "200 OK",
                "",
                &format!("<a href=\"/p{}\">n</a><a href=\"/q{}\">n</a>", n + 1, n + 1),
            ))
        });
        assert_eq!(result.requested.len(), MAX_REQUESTS);
        assert_eq!(asked, MAX_REQUESTS - 1);
        assert!(result.not_requested > 0);
    }

    #[test]
    fn resolves_links_as_a_browser_would() {
        let here = |p: &str| Some(Target::Here(p.to_owned()));
        assert_eq!(resolve("/a/b.html", "c.html", "h:80"), here("/a/c.html"));
        assert_eq!(resolve("/a/b.html", "../c", "h:80"), here("/c"));
        assert_eq!(resolve("/a/", "./x/", "h:80"), here("/a/x/"));
        assert_eq!(resolve("/a/b?x=1", "?y=2", "h:80"), here("/a/b?y=2"));
        assert_eq!(resolve("/", "http://h/cfg", "h:80"), here("/cfg"));
        assert_eq!(resolve("/", "http://h:80/cfg#top", "h:80"), here("/cfg"));
        assert_eq!(
            resolve("/", "http://other/x", "h:80"),
            Some(Target::Elsewhere("http://other/x".to_owned()))
        );
        assert_eq!(resolve("/", "javascript:void(0)", "h:80"), None);
        assert_eq!(resolve("/x", "", "h:80"), here("/x"));
    }

    #[test]
    fn parses_answers_and_reads_attributes() {
        let r = Response::parse(
            b"HTTP/1.1 401 Unauthorized\r\nwww-authenticate:  Basic realm=x\r\n\r\nbody",
        )
        .expect("an HTTP answer");
        assert_eq!(r.status, 401);
        assert!(r.asks_basic());
        assert!(Response::parse(b"\x16\x03\x01").is_none());
        let digest = Response::parse(b"HTTP/1.1 401 X\r\nWWW-Authenticate: Digest realm=x\r\n\r\n")
            .expect("an HTTP answer");
        assert!(!digest.asks_basic());
        assert_eq!(
            attribute("a data-href=\"x\" href='y'", "href"),
            Some("y".to_owned())
        );
        assert_eq!(
            attribute("input type = password", "type"),
            Some("password".to_owned())
        );
        assert_eq!(attribute("br", "href"), None);
    }
}
