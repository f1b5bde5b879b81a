//! Random secrets for throw-away accounts.
//!
//! Generated passwords carry all four character classes and 16 characters,
//! so they satisfy any sane configured quality policy without the test
//! having to relax it.

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
    let bytes = random_bytes(32)?;
    let classes = [LOWER, UPPER, DIGIT, PUNCT];
    let mut chars: Vec<char> = (0..16)
        .map(|i| pick(classes[i % classes.len()], bytes[i]))
        .collect();
    // Shuffle so the class pattern is not predictable (Fisher-Yates).
    for i in (1..chars.len()).rev() {
        let j = usize::from(bytes[16 + i]) % (i + 1);
        chars.swap(i, j);
    }
    Ok(chars.into_iter().collect())
}

/// `len` random lowercase letters and digits (for account names).
pub fn random_token(len: usize) -> Result<String> {
    const SET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    Ok(random_bytes(len)?
        .into_iter()
        .map(|b| pick(SET, b))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

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
