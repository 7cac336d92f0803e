//! htpasswd entries (`user:hash`) and password checks for the hash formats
//! Traefik accepts: bcrypt (`$2y$`, `$2a$`, `$2b$`, `$2x$`), Apache MD5 (`$apr1$`)
//! and MD5-crypt (`$1$`), and SHA-1 (`{SHA}`).

use base64::Engine;
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

/// A password hash in one of the supported formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hash {
    /// bcrypt; slow to check on purpose.
    Bcrypt(String),
    /// `$apr1$` or `$1$` MD5-crypt: magic, salt, and the whole hash string.
    Md5Crypt {
        /// `$apr1$` or `$1$`.
        magic: &'static str,
        /// Up to 8 salt characters.
        salt: String,
        /// The whole hash as written.
        full: String,
    },
    /// `{SHA}` base64 of the SHA-1 digest.
    Sha1(Vec<u8>),
}

/// Why an htpasswd entry cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HtpasswdError {
    /// No `:` between user and hash.
    #[error("entry {0:?} is not `user:hash`")]
    Malformed(String),
    /// The hash is in a format wharf does not check.
    #[error("user {0:?}: unsupported hash format (use bcrypt, $apr1$ or {{SHA}}, e.g. from `htpasswd -nbB`)")]
    Unsupported(String),
}

impl Hash {
    /// Parses the hash part of an entry; `user` names it in errors.
    pub fn parse(user: &str, hash: &str) -> Result<Hash, HtpasswdError> {
        let unsupported = || HtpasswdError::Unsupported(user.to_string());
        if ["$2y$", "$2a$", "$2b$", "$2x$"]
            .iter()
            .any(|p| hash.starts_with(p))
        {
            return Ok(Hash::Bcrypt(hash.to_string()));
        }
        for magic in ["$apr1$", "$1$"] {
            if let Some(rest) = hash.strip_prefix(magic) {
                let salt = rest.split('$').next().unwrap_or("");
                let salt: String = salt.chars().take(8).collect();
                return Ok(Hash::Md5Crypt {
                    magic,
                    salt,
                    full: hash.to_string(),
                });
            }
        }
        if let Some(b64) = hash.strip_prefix("{SHA}") {
            let digest = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| unsupported())?;
            if digest.len() != 20 {
                return Err(unsupported());
            }
            return Ok(Hash::Sha1(digest));
        }
        Err(unsupported())
    }

    /// Whether checking this hash is costly enough to move off the async runtime.
    pub fn is_slow(&self) -> bool {
        matches!(self, Hash::Bcrypt(_))
    }

    /// Whether `password` matches this hash.
    pub fn verify(&self, password: &str) -> bool {
        match self {
            Hash::Bcrypt(h) => bcrypt::verify(password, h).unwrap_or(false),
            Hash::Md5Crypt { magic, salt, full } => {
                let computed = md5_crypt(password.as_bytes(), salt.as_bytes(), magic);
                computed.as_bytes().ct_eq(full.as_bytes()).into()
            }
            Hash::Sha1(expected) => {
                let d = ring::digest::digest(
                    &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
                    password.as_bytes(),
                );
                d.as_ref().ct_eq(expected.as_slice()).into()
            }
        }
    }
}

/// Parses `user:hash` entries; blank lines and `#` comments are skipped.
pub fn parse_entries<'a>(
    lines: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<(String, Hash)>, HtpasswdError> {
    let mut out = Vec::new();
    for line in lines {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (user, hash) = line
            .split_once(':')
            .ok_or_else(|| HtpasswdError::Malformed(redact(line)))?;
        out.push((user.to_string(), Hash::parse(user, hash)?));
    }
    Ok(out)
}

/// An entry for error messages, without its hash.
fn redact(line: &str) -> String {
    line.chars().take(3).chain("…".chars()).collect()
}

/// The characters of crypt's base-64 alphabet.
const CRYPT64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Poul-Henning Kamp's MD5-based crypt, as Apache's `$apr1$` and glibc's `$1$`.
fn md5_crypt(password: &[u8], salt: &[u8], magic: &str) -> String {
    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut ctx = Md5::new()
        .chain_update(password)
        .chain_update(magic.as_bytes())
        .chain_update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alternate[..n]);
        left -= n;
    }
    let mut bits = password.len();
    while bits != 0 {
        if bits & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        bits >>= 1;
    }
    let mut digest = ctx.finalize();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(digest);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(digest);
        } else {
            c.update(password);
        }
        digest = c.finalize();
    }
    let d = digest;
    let mut out = String::with_capacity(magic.len() + salt.len() + 23);
    out.push_str(magic);
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    let groups = [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)];
    for (a, b, c) in groups {
        let v = (u32::from(d[a]) << 16) | (u32::from(d[b]) << 8) | u32::from(d[c]);
        push64(&mut out, v, 4);
    }
    push64(&mut out, u32::from(d[11]), 2);
    out
}

fn push64(out: &mut String, mut v: u32, n: usize) {
    for _ in 0..n {
        out.push(char::from(CRYPT64[(v & 0x3f) as usize]));
        v >>= 6;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apr1_md5crypt_and_sha1_match_reference_hashes() {
        // Reference values from `openssl passwd -apr1 / -1` and `openssl dgst -sha1`.
        let h = Hash::parse("test", "$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/").unwrap();
        assert!(h.verify("test"));
        assert!(!h.verify("tesT"));
        let h = Hash::parse("u", "$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1").unwrap();
        assert!(h.verify("secret"));
        assert!(!h.verify(""));
        let h = Hash::parse("u", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=").unwrap();
        assert!(h.verify("secret"));
        assert!(!h.verify("secrets"));
        assert!(!h.is_slow());
    }

    #[test]
    fn bcrypt_prefixes() {
        let b = bcrypt::hash("pw", 4).unwrap();
        for prefix in ["$2y$", "$2a$", "$2b$"] {
            let h = Hash::parse("u", &format!("{prefix}{}", &b[4..])).unwrap();
            assert!(h.is_slow());
            assert!(h.verify("pw"), "{prefix}");
            assert!(!h.verify("pW"), "{prefix}");
        }
    }

    #[test]
    fn entries_and_errors() {
        let e = parse_entries(["# admins", "", " a:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ= "]).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, "a");
        assert_eq!(
            parse_entries(["nocolon"]).unwrap_err(),
            HtpasswdError::Malformed("noc…".into())
        );
        assert_eq!(
            parse_entries(["bob:plain"]).unwrap_err(),
            HtpasswdError::Unsupported("bob".into())
        );
        assert!(Hash::parse("x", "{SHA}AAAA").is_err());
    }
}
