//! Request bodies that carry a secret (a password, a refresh token): JSON written straight into
//! a buffer that is wiped when the HTTP client lets go of it.

use confab_types::SecretString;

use crate::error::{Error, Result};

/// A JSON object of `fields` plus `name: secret`, written straight into a buffer that is wiped
/// when the HTTP client lets go of it (its own copies, e.g. TLS records, are its own). The
/// buffer is reserved for the worst case of escaping up front, so it never reallocates and
/// leaves no unwiped copy behind.
pub fn secret_body(
    fields: &[(&str, &str)],
    name: &str,
    secret: &SecretString,
) -> Result<reqwest::Body> {
    // Escaping grows a character to at most six bytes (`\u001f`); two quotes and `:,{}` each.
    let worst = |s: &str| 6 * s.len() + 4;
    let size = fields
        .iter()
        .map(|(k, v)| worst(k) + worst(v))
        .sum::<usize>()
        + worst(name)
        + worst(secret.expose_secret())
        + 2;
    let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(size));
    let write = |buf: &mut Vec<u8>, key: &str, value: &str| {
        serde_json::to_writer(&mut *buf, key)?;
        buf.push(b':');
        serde_json::to_writer(&mut *buf, value)?;
        buf.push(b',');
        Ok::<_, serde_json::Error>(())
    };
    buf.push(b'{');
    for (key, value) in fields {
        write(&mut buf, key, value).map_err(|e| Error::Config(format!("request body: {e}")))?;
    }
    write(&mut buf, name, secret.expose_secret())
        .map_err(|e| Error::Config(format!("request body: {e}")))?;
    if let Some(last) = buf.last_mut() {
        *last = b'}';
    }
    Ok(reqwest::Body::from(bytes::Bytes::from_owner(ZeroOnDrop(
        buf,
    ))))
}

/// A body buffer handed to the HTTP client, wiped when its last reference goes.
struct ZeroOnDrop(zeroize::Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for ZeroOnDrop {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn the_secret_body_is_the_json_with_the_secret_in_it() {
        let secret = SecretString::from("p\"w\\ö\u{1}");
        let body = secret_body(&[("email", "a\"lice")], "password", &secret).unwrap();
        let bytes = body.as_bytes().unwrap();
        let v: Value = serde_json::from_slice(bytes).unwrap();
        assert_eq!(v["email"], "a\"lice");
        assert_eq!(v["password"], "p\"w\\ö\u{1}", "quotes and escapes survive");
        let body = secret_body(&[], "refresh", &SecretString::from("r")).unwrap();
        assert_eq!(body.as_bytes().unwrap(), br#"{"refresh":"r"}"#);
        assert_eq!(v.as_object().unwrap().len(), 2);
    }
}
