//! [`Token`]: a connection or subscription token on the wire, kept out of Debug output and
//! wiped on drop.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

confab_types::new_secret_type! {
    /// A bearer token (the IdP's JWT access token), made with confab-types'
    /// `new_secret_type!`: `Debug` prints `Token([redacted])`, no `Display`, `==` is
    /// constant-time, the bytes are zeroized when dropped. Read it with
    /// [`Token::expose_secret`], for the verifier or the socket only.
    ///
    /// Unlike the other secret types it is `Serialize`/`Deserialize`, because it is part of the
    /// protocol: the `token` field of `connect`, `refresh`, `subscribe` and `sub_refresh` is the
    /// token as a plain JSON string (`"token":"eyJ…"`), exactly as Centrifugo's JSON encoding
    /// has it. An empty token is `""`; the requests whose schema makes the token optional skip
    /// it with `#[serde(skip_serializing_if = "Token::is_empty")]`. Serialization is the one
    /// place a token's value leaves this type other than `expose_secret`; it happens only
    /// when a frame is encoded for the socket.
    pub struct Token(String);
}

/// The token as a plain JSON string (see [`Token`]).
impl Serialize for Token {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose_secret())
    }
}

/// A plain JSON string as a token (see [`Token`]).
impl<'de> Deserialize<'de> for Token {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Token::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_a_plain_string_and_back() {
        let token = Token::from("eyJ.a\"b\\c/é");
        let json = serde_json::to_string(&token).expect("a token serializes");
        assert_eq!(json, r#""eyJ.a\"b\\c/é""#, "a token is a plain JSON string");
        let back: Token = serde_json::from_str(&json).expect("a JSON string deserializes");
        assert_eq!(back, token, "the value survives the round trip");
        assert_eq!(
            format!("{back:?}"),
            "Token([redacted])",
            "Debug never shows the token"
        );
        assert!(
            serde_json::from_str::<Token>("42").is_err(),
            "only a string is a token"
        );
    }
}
