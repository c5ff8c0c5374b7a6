//! The one implementation of a secret string: the [`new_secret_type!`](crate::new_secret_type)
//! macro, the general-purpose [`SecretString`] it defines, and [`constant_time_eq`].

/// Defines a secret string type. Every secret in Confab (tokens, codes, passphrases) is a type
/// made with this macro, in the style of oauth2-rs's `new_secret_type!`:
///
/// ```
/// confab_types::new_secret_type! {
///     /// An API key for the example.
///     pub struct ApiKey(String);
/// }
///
/// let key = ApiKey::new("k-123".to_owned());
/// assert_eq!(key.expose_secret(), "k-123");
/// assert_eq!(format!("{key:?}"), "ApiKey([redacted])");
/// assert_eq!(key, ApiKey::from("k-123"));
/// ```
///
/// The type wraps a `zeroize::Zeroizing<String>` and gets:
///
/// - `new(String)` and `From<String>`, which move the string in (no plain copy stays behind),
///   and `From<&str>`, which copies a borrowed one;
/// - `expose_secret(&self) -> &str`, the only way to read the value: call it exactly where the
///   secret has to leave the process (an HTTP request, the socket, the vault), never to log it;
/// - `len()` and `is_empty()` (the length is not treated as secret);
/// - `Debug` printing `Name([redacted])`, never the value;
/// - `PartialEq`/`Eq` comparing the values in constant time ([`constant_time_eq`]; only the
///   length can leak);
/// - `Clone` and `Default` (the empty secret);
/// - zeroization of the bytes on drop (`ZeroizeOnDrop`).
///
/// Deliberately **not** generated: `Display`, `Serialize`/`Deserialize`, `Hash`, `Deref`. A type
/// that has to be serialized (confab-protocol's `Token`, which goes on the wire) implements that
/// by hand, next to its definition, with the reason documented there.
///
/// Only doc comments are accepted above the struct: another attribute (a `#[derive(Serialize)]`,
/// say) does not match the macro, so no secret type can be given a way out by accident.
///
/// ```compile_fail
/// // Any attribute but a doc comment is refused, even a harmless one (a derive would be too).
/// confab_types::new_secret_type! {
///     /// A secret.
///     #[allow(dead_code)]
///     pub struct Refused(String);
/// }
/// ```
#[macro_export]
macro_rules! new_secret_type {
    (
        $(#[doc = $doc:expr])*
        $vis:vis struct $name:ident(String);
    ) => {
        $(#[doc = $doc])*
        #[derive(Clone, Default)]
        $vis struct $name($crate::__private::Zeroizing<::std::string::String>);

        impl $name {
            #[doc = concat!(
                "Wraps a secret in a `", stringify!($name), "`. The string is moved, not ",
                "copied, so no plain copy stays behind."
            )]
            pub fn new(secret: ::std::string::String) -> Self {
                Self($crate::__private::Zeroizing::new(secret))
            }

            #[doc = concat!(
                "The secret inside this `", stringify!($name), "`. Call it only where the ",
                "secret has to leave the process (a request, the socket, the vault); keep the ",
                "borrow short and never log it."
            )]
            pub fn expose_secret(&self) -> &str {
                ::std::string::String::as_str(&self.0)
            }

            /// Length of the secret in bytes (checks that must not print the value).
            pub fn len(&self) -> usize {
                self.0.len()
            }

            /// True for the empty secret.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl ::core::convert::From<::std::string::String> for $name {
            fn from(secret: ::std::string::String) -> Self {
                Self::new(secret)
            }
        }

        impl ::core::convert::From<&str> for $name {
            fn from(secret: &str) -> Self {
                Self::new(::std::borrow::ToOwned::to_owned(secret))
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl ::core::cmp::PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                $crate::constant_time_eq(self.expose_secret(), other.expose_secret())
            }
        }

        impl ::core::cmp::Eq for $name {}

        impl $crate::__private::ZeroizeOnDrop for $name {}
    };
}

/// Compares two strings in time that does not depend on where they differ (`subtle`); only
/// their lengths can be told apart by timing. Use it for every comparison with a secret
/// (the OAuth `state`, an `at_hash`, ...): the secret types made with
/// [`new_secret_type!`](crate::new_secret_type) compare with it.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

new_secret_type! {
    /// A secret string with no more specific name: refresh, access and ID tokens in
    /// confab-auth, authorization codes and `state`s, vault entries and the vault passphrase
    /// in confab-vault (both crates re-export it). Made with
    /// [`new_secret_type!`](crate::new_secret_type): `Debug` prints `SecretString([redacted])`,
    /// no `Display`, no `Serialize`, zeroized on drop, constant-time `==`, read with
    /// [`SecretString::expose_secret`].
    pub struct SecretString(String);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_contains_the_value() {
        let s = SecretString::new("super-secret-refresh-token".to_owned());
        let dbg = format!("{s:?} {:?} {s:#?}", Some(&s));
        assert!(
            !dbg.contains("super-secret"),
            "Debug output must never contain the secret: {dbg}"
        );
        assert_eq!(
            format!("{s:?}"),
            "SecretString([redacted])",
            "Debug names the type and says the value is redacted"
        );
    }

    #[test]
    fn expose_secret_returns_the_value() {
        let s = SecretString::from("rt-1".to_owned());
        assert_eq!(s.expose_secret(), "rt-1", "expose_secret returns the value");
        assert_eq!(s.len(), 4, "len is the byte length");
        assert!(!s.is_empty(), "a non-empty secret is not empty");
        assert!(SecretString::default().is_empty(), "the default is empty");
        assert_eq!(
            s.clone().expose_secret(),
            "rt-1",
            "a clone holds the same value"
        );
    }

    #[test]
    fn equality_is_by_value() {
        assert_eq!(
            SecretString::new("abc".to_owned()),
            SecretString::from("abc"),
            "equal values are equal"
        );
        assert_ne!(
            SecretString::from("abc"),
            SecretString::from("abd"),
            "different values differ"
        );
        assert_ne!(
            SecretString::from("abc"),
            SecretString::from("ab"),
            "a prefix is not equal"
        );
        assert_eq!(
            SecretString::default(),
            SecretString::from(""),
            "empty secrets are equal"
        );
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(
            constant_time_eq("abc", "abc"),
            "equal strings compare equal"
        );
        assert!(!constant_time_eq("abc", "abd"), "different strings differ");
        assert!(!constant_time_eq("abc", "ab"), "different lengths differ");
        assert!(constant_time_eq("", ""), "empty strings are equal");
    }

    #[test]
    fn the_value_lives_in_a_zeroizing_string() {
        // Compile-time checks: the storage is `Zeroizing` (whose `Drop` wipes the bytes) and
        // the type carries the `ZeroizeOnDrop` marker.
        fn assert_zeroize_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        assert_zeroize_on_drop::<SecretString>();
        let s = SecretString::from("x");
        let inner: &zeroize::Zeroizing<String> = &s.0;
        assert_eq!(
            inner.as_str(),
            "x",
            "the value is stored in the Zeroizing wrapper"
        );
    }
}
