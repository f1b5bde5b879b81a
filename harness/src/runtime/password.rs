//! Passwords the suite types: random secrets for throw-away accounts, and
//! passwords of a chosen shape for trying a quality policy.
//!
//! Generated secrets carry all four character classes and 16 characters,
//! so they satisfy any sane configured quality policy without the test
//! having to relax it. Shaped passwords ([`shaped_password`]) lack exactly
//! what they are made to lack (classes, length) and nothing else.

use anyhow::{Context, Result};
use std::io::Read;

const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const DIGIT: &[u8] = b"23456789";
// No quote, backslash, dollar or space: the password is typed on a PTY and
// sometimes passed through `chpasswd`, and must mean the same everywhere.
const PUNCT: &[u8] = b"%+,-./:=@_#!";

/// `n` bytes from the kernel's CSPRNG.
pub fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("cannot read /dev/urandom")?;
    Ok(buf)
}

fn pick(set: &[u8], byte: u8) -> char {
    char::from(set[usize::from(byte) % set.len()])
}

/// A 16-character password with lower, upper, digit and punctuation.
pub fn strong_password() -> Result<String> {
    strong_password_of_len(16)
}

/// A random password of `len` (at least 8) characters with lower, upper,
/// digit and punctuation, at least two of each. It never starts with an
/// upper-case letter nor ends with a digit: pam_passwdqc does not count
/// those towards the classes, and the password must have all four for
/// every module.
pub fn strong_password_of_len(len: usize) -> Result<String> {
    anyhow::ensure!(len >= 8, "a strong password needs at least 8 characters");
    let bytes = random_bytes(2 * len)?;
    let classes = [LOWER, UPPER, DIGIT, PUNCT];
    let mut chars: Vec<char> = (0..len)
        .map(|i| pick(classes[i % classes.len()], bytes[i]))
        .collect();
    // Shuffle so the class pattern is not predictable (Fisher-Yates).
    for i in (1..len).rev() {
        let j = usize::from(bytes[len + i]) % (i + 1);
        chars.swap(i, j);
    }
    // Move a lowercase letter to the front and to the end if needed: a
    // swap between two inner positions keeps every class present.
    if !chars[0].is_ascii_lowercase() {
        if let Some(i) = (1..len - 1).find(|&i| chars[i].is_ascii_lowercase()) {
            chars.swap(0, i);
        }
    }
    if chars[len - 1].is_ascii_digit() {
        if let Some(i) = (1..len - 1).find(|&i| !chars[i].is_ascii_digit()) {
            chars.swap(len - 1, i);
        }
    }
    Ok(chars.into_iter().collect())
}

/// The character classes that password-quality modules count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CharClass {
    Lower,
    Digit,
    Upper,
    Other,
}

impl CharClass {
    /// The order in which [`shaped_password`] adds classes.
    pub const ALL: [CharClass; 4] = [
        CharClass::Lower,
        CharClass::Digit,
        CharClass::Upper,
        CharClass::Other,
    ];

    pub fn of(c: char) -> CharClass {
        if c.is_ascii_lowercase() {
            CharClass::Lower
        } else if c.is_ascii_uppercase() {
            CharClass::Upper
        } else if c.is_ascii_digit() {
            CharClass::Digit
        } else {
            CharClass::Other
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CharClass::Lower => "lowercase",
            CharClass::Digit => "digits",
            CharClass::Upper => "uppercase",
            CharClass::Other => "punctuation",
        }
    }

    /// The characters [`shaped_password`] takes for this class, in order.
    /// Letters are consonants only (no word can form) and no three
    /// neighbours are an alphabet, keyboard or digit run, so a module has
    /// no reason to refuse a shaped password other than its shape.
    fn shaped_alphabet(self) -> &'static [u8] {
        match self {
            CharClass::Lower => b"tkzmqrwbxpnvdgcfsjlh",
            CharClass::Digit => b"7395160482",
            CharClass::Upper => b"RWBXPNVDGCFSJLHTKZMQ",
            CharClass::Other => b"%=+,:_/.",
        }
    }
}

/// The classes `password` uses, in [`CharClass::ALL`] order.
pub fn classes_in(password: &str) -> Vec<CharClass> {
    let mut used: Vec<CharClass> = password.chars().map(CharClass::of).collect();
    used.sort();
    used.dedup();
    used
}

/// A deterministic password of exactly `len` characters from the first
/// `classes` (1 to 4) of lowercase, digits, uppercase, punctuation, each
/// class used about equally often. The digits and punctuation come first,
/// then the letters as one run that ends with a lowercase letter, so:
/// pam_passwdqc's discounts (an upper-case first letter, a digit last)
/// never apply, and the password is a single "word" to passwdqc, never
/// mistaken for a passphrase (passwdqc counts a word at each letter that
/// follows a non-letter). Needs `len >= classes`.
pub fn shaped_password(classes: usize, len: usize) -> Result<String> {
    anyhow::ensure!(
        (1..=4).contains(&classes),
        "a password has 1 to 4 character classes, not {classes}"
    );
    anyhow::ensure!(
        len >= classes,
        "{len} characters cannot carry {classes} classes"
    );
    // How many characters of each class in CharClass::ALL order.
    let mut count = [0usize; 4];
    for i in 0..len {
        count[i % classes] += 1;
    }
    let [lower, digit, upper, other] = count;
    let mut out: String = interleave(CharClass::Digit, digit, CharClass::Other, other);
    out.push_str(&interleave(
        CharClass::Lower,
        lower,
        CharClass::Upper,
        upper,
    ));
    Ok(out)
}

/// `a_count` characters of class `a` and `b_count` of `b` (`a_count >=
/// b_count`), alternating, the last one of class `a`.
fn interleave(a: CharClass, a_count: usize, b: CharClass, b_count: usize) -> String {
    let mut backwards = Vec::with_capacity(a_count + b_count);
    let (mut left_a, mut left_b) = (a_count, b_count);
    while left_a + left_b > 0 {
        if left_a > 0 {
            backwards.push(a);
            left_a -= 1;
        }
        if left_b > 0 {
            backwards.push(b);
            left_b -= 1;
        }
    }
    backwards.reverse();
    let mut next = [0usize; 4];
    backwards
        .into_iter()
        .map(|class| {
            let alphabet = class.shaped_alphabet();
            let slot = &mut next[class as usize];
            let c = char::from(alphabet[*slot % alphabet.len()]);
            *slot += 1;
            c
        })
        .collect()
}

/// A deterministic passphrase of exactly `len` characters: `words` words of
/// lowercase consonants (no dictionary word can form) separated by single
/// spaces, so two classes (lowercase, and the space as punctuation). Needs
/// `len >= 2 * words - 1`.
pub fn shaped_passphrase(words: usize, len: usize) -> Result<String> {
    anyhow::ensure!(words >= 1, "a passphrase has at least one word");
    anyhow::ensure!(
        len + 1 >= 2 * words,
        "{len} characters cannot carry {words} words separated by spaces"
    );
    let letters = len - (words - 1);
    let alphabet = CharClass::Lower.shaped_alphabet();
    let mut out = String::with_capacity(len);
    let mut used = 0;
    for w in 0..words {
        if w > 0 {
            out.push(' ');
        }
        let in_word = letters / words + usize::from(w < letters % words);
        for _ in 0..in_word {
            out.push(char::from(alphabet[used % alphabet.len()]));
            used += 1;
        }
    }
    Ok(out)
}

/// `len` random lowercase letters and digits (for account names).
pub fn random_token(len: usize) -> Result<String> {
    const SET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    Ok(random_bytes(len)?
        .into_iter()
        .map(|b| pick(SET, b))
        .collect())
}

// libxcrypt, the crypt(3) that PAM's pam_unix and the shadow tools use on
// Debian (package libcrypt1): the one implementation that knows every
// hash method the image may store (yescrypt, sha512crypt, bcrypt, …).
#[link(name = "crypt")]
extern "C" {
    fn crypt_rn(
        phrase: *const libc::c_char,
        setting: *const libc::c_char,
        data: *mut libc::c_void,
        size: libc::c_int,
    ) -> *mut libc::c_char;
}

/// libxcrypt's `struct crypt_data` is 32 KiB; crypt_rn is told the size it
/// is given, so a larger buffer is safe and a smaller one an error.
const CRYPT_DATA_SIZE: usize = 32 * 1024;

/// `phrase` hashed with `setting` (a stored hash, whose method, cost and
/// salt are reused), as the system's crypt(3) computes it: a stored hash
/// `h` is the hash of `p` exactly when `crypt(p, h) == h`. Thread-safe
/// (crypt_rn with a buffer of its own), unlike crypt(3).
pub fn crypt(phrase: &str, setting: &str) -> Result<String> {
    let phrase = std::ffi::CString::new(phrase).context("a password with a NUL byte")?;
    let setting_c = std::ffi::CString::new(setting).context("a hash with a NUL byte")?;
    let mut data = vec![0u8; CRYPT_DATA_SIZE];
    let size = libc::c_int::try_from(data.len()).context("crypt buffer size")?;
    // SAFETY: both strings are NUL-terminated and live across the call;
    // `data` is a writable buffer of `size` bytes that crypt_rn writes
    // within (it fails with ERANGE when the size is too small). The result
    // points into `data` and is copied out before `data` is dropped.
    let hashed = unsafe {
        let out = crypt_rn(
            phrase.as_ptr(),
            setting_c.as_ptr(),
            data.as_mut_ptr().cast(),
            size,
        );
        if out.is_null() {
            None
        } else {
            Some(std::ffi::CStr::from_ptr(out).to_string_lossy().into_owned())
        }
    };
    // libxcrypt returns "*0" or "*1" (a string no hash can equal) for a
    // setting it cannot use, with some configurations instead of NULL.
    match hashed {
        Some(h) if !h.starts_with('*') => Ok(h),
        _ => anyhow::bail!(
            "the system's crypt(3) cannot hash with the method of this setting ({})",
            setting.split('$').nth(1).unwrap_or("DES or unknown")
        ),
    }
}

/// Does `stored` (a crypt hash as in /etc/shadow) hash `phrase`?
pub fn hash_matches(phrase: &str, stored: &str) -> Result<bool> {
    Ok(crypt(phrase, stored)? == stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs that pam_passwdqc (and cracklib's "simple" checks) look for;
    /// shaped passwords must contain no three neighbours of any of them,
    /// forwards or backwards.
    const RUNS: [&str; 6] = [
        "abcdefghijklmnopqrstuvwxyz",
        "01234567890",
        "`1234567890-=~!@#$%^&*()_+",
        "qwertyuiop[]\\asdfghjkl;'zxcvbnm,./",
        "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/-['=]",
        "qazwsxedcrfvtgbyhnujmikolp",
    ];

    /// No three neighbours of `pw` (lower-cased) are a run from [`RUNS`].
    fn assert_no_runs(pw: &str) {
        let chars: Vec<char> = pw.to_ascii_lowercase().chars().collect();
        for w in chars.windows(3) {
            let fwd: String = w.iter().collect();
            let back: String = w.iter().rev().collect();
            for run in RUNS {
                assert!(
                    !run.contains(&fwd) && !run.contains(&back),
                    "{pw} contains {fwd:?} from {run:?}"
                );
            }
        }
    }

    /// passwdqc's word count: a word starts at a letter after a non-letter.
    fn passwdqc_words(pw: &str) -> usize {
        let mut previous = ' ';
        let mut words = 0;
        for c in pw.chars() {
            if c.is_ascii_alphabetic() && !previous.is_ascii_alphabetic() {
                words += 1;
            }
            previous = c;
        }
        words
    }

    #[test]
    fn shaped_passwords_have_exactly_their_classes_and_no_runs() {
        for classes in 1..=4 {
            for len in [classes, classes + 1, 7, 8, 12, 24, 40] {
                if len < classes {
                    continue;
                }
                let pw = shaped_password(classes, len).unwrap();
                assert_eq!(pw.chars().count(), len, "{pw}");
                assert_eq!(classes_in(&pw), CharClass::ALL[..classes].to_vec(), "{pw}");
                // passwdqc's discounts never apply, and it sees one word.
                assert!(!pw.starts_with(|c: char| c.is_ascii_uppercase()), "{pw}");
                assert!(pw.ends_with(|c: char| c.is_ascii_lowercase()), "{pw}");
                assert_eq!(passwdqc_words(&pw), 1, "{pw}");
                assert!(!pw.chars().any(|c| "aeiouyAEIOUY".contains(c)), "{pw}");
                assert_no_runs(&pw);
            }
        }
        assert_eq!(shaped_password(4, 8).unwrap(), "%7=3RtWk");
        assert!(shaped_password(4, 3).is_err());
        assert!(shaped_password(0, 8).is_err());
    }

    #[test]
    fn shaped_passphrases_have_their_words_and_length() {
        for (words, len) in [(2, 3), (2, 8), (3, 12), (4, 40)] {
            let pp = shaped_passphrase(words, len).unwrap();
            assert_eq!(pp.len(), len, "{pp:?}");
            assert_eq!(passwdqc_words(&pp), words, "{pp:?}");
            assert_eq!(pp.split(' ').count(), words, "{pp:?}");
            assert!(pp.split(' ').all(|w| !w.is_empty()), "{pp:?}");
            assert!(!pp.chars().any(|c| "aeiouy".contains(c)), "{pp:?}");
            assert_no_runs(&pp);
        }
        assert_eq!(shaped_passphrase(2, 8).unwrap(), "tkzm qrw");
        assert!(shaped_passphrase(3, 4).is_err());
    }

    #[test]
    fn strong_passwords_of_any_length_keep_four_countable_classes() {
        for len in [8, 9, 12, 20, 40] {
            for _ in 0..50 {
                let pw = strong_password_of_len(len).unwrap();
                assert_eq!(pw.len(), len);
                assert_eq!(classes_in(&pw).len(), 4, "{pw}");
                assert!(!pw.starts_with(|c: char| c.is_ascii_uppercase()), "{pw}");
                assert!(!pw.ends_with(|c: char| c.is_ascii_digit()), "{pw}");
            }
        }
    }

    #[test]
    fn strong_passwords_have_four_classes_and_differ() {
        let a = strong_password().unwrap();
        let b = strong_password().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert!(a.chars().any(|c| c.is_ascii_lowercase()));
        assert!(a.chars().any(|c| c.is_ascii_uppercase()));
        assert!(a.chars().any(|c| c.is_ascii_digit()));
        assert!(a.chars().any(|c| PUNCT.contains(&(c as u8))));
    }
}
