//! `new_secret_type!` used from outside the crate, the way other Confab crates use it: the
//! expansion needs nothing but `confab_types` in scope.

confab_types::new_secret_type! {
    /// A secret defined the way confab-session's `Secret` and confab-protocol's `Token` are.
    pub struct ApiKey(String);
}

mod private {
    confab_types::new_secret_type! {
        /// Restricted visibility is passed through.
        pub(crate) struct Inner(String);
    }
}

#[test]
fn debug_never_contains_the_value() {
    let key = ApiKey::new("k-very-secret".to_owned());
    let text = format!("{key:?} {key:#?} {:?}", vec![key.clone()]);
    assert!(
        !text.contains("very-secret"),
        "Debug never prints the value: {text}"
    );
    assert_eq!(
        format!("{key:?}"),
        "ApiKey([redacted])",
        "Debug prints the type's name and a redaction"
    );
    assert_eq!(
        format!("{:?}", private::Inner::from("x")),
        "Inner([redacted])",
        "every type made with the macro redacts"
    );
}

#[test]
fn expose_secret_len_and_equality() {
    let key = ApiKey::from("k-1");
    assert_eq!(
        key.expose_secret(),
        "k-1",
        "expose_secret returns the value"
    );
    assert_eq!(key.len(), 3, "len is the byte length");
    assert!(ApiKey::default().is_empty(), "the default secret is empty");
    assert_eq!(key, ApiKey::from("k-1"), "equal values compare equal");
    assert_ne!(key, ApiKey::from("k-2"), "different values differ");
}
