//! [`AccountId`]: which account something belongs to.

use uuid::Uuid;

/// Namespace of [`AccountId::dir_name`] (a UUIDv5 of `issuer \n subject`). Fixed forever: the
/// chat data of existing accounts lives in directories named with it.
const DIR_NAME_NAMESPACE: Uuid = Uuid::from_u128(0x6c0f_8d5e_3b1a_4c55_9a57_0e3c_c0fa_b0a1);

/// An account: the OpenID issuer and the subject (`sub`) at that issuer. Two accounts are the
/// same exactly when both strings are equal, byte for byte (OpenID Connect Core §5.7: `sub` is
/// unique only within its issuer). Several accounts coexist on one device; their secrets and
/// data never mix.
///
/// Not secret: it may be logged and shown. What is stored per account derives from it: the
/// vault's record keys (confab-vault) and the chat directory ([`AccountId::dir_name`],
/// confab-client).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId {
    /// Issuer URL, exactly as in the ID token's `iss`.
    pub issuer: String,
    /// Subject identifier, exactly as in the ID token's `sub`.
    pub subject: String,
}

impl AccountId {
    /// Builds an account id.
    pub fn new(issuer: impl Into<String>, subject: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            subject: subject.into(),
        }
    }

    /// A stable name for this account that is safe as a file name on every platform: the
    /// UUIDv5 of `issuer \n subject` in a fixed namespace, hyphenated lower-case hex (an
    /// issuer URL holds no newline, so distinct accounts get distinct names). The chat hub keeps
    /// each account's data in `chat/<dir_name>/`. Never change how it is computed: existing
    /// data would no longer be found.
    pub fn dir_name(&self) -> String {
        let name = format!("{}\n{}", self.issuer, self.subject);
        Uuid::new_v5(&DIR_NAME_NAMESPACE, name.as_bytes()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_name_is_pinned() {
        // Computed with the code this replaced (confab-client's chat hub, `account_dir`):
        // directories of existing installs must keep their names.
        assert_eq!(
            AccountId::new("https://idp.example", "alice").dir_name(),
            "69740ebb-bbb9-52ee-a796-f33ed7330832",
            "the chat directory name of a fixed account never changes"
        );
        assert_eq!(
            AccountId::new("http://127.0.0.1:8400", "alice").dir_name(),
            "81b9d050-e7fd-5a4e-a183-58edc602dc4c",
            "the chat directory name of a fixed account never changes"
        );
    }

    #[test]
    fn accounts_differ_by_issuer_and_by_subject() {
        let a = AccountId::new("https://idp.example", "alice");
        assert_eq!(
            a,
            AccountId::new("https://idp.example".to_owned(), "alice".to_owned()),
            "same issuer and subject: same account"
        );
        let other_issuer = AccountId::new("https://other.example", "alice");
        let other_subject = AccountId::new("https://idp.example", "bob");
        assert_ne!(
            a, other_issuer,
            "the subject alone does not identify an account"
        );
        assert_ne!(a, other_subject, "another subject is another account");
        assert_ne!(
            a.dir_name(),
            other_issuer.dir_name(),
            "another issuer gets another directory"
        );
        assert_ne!(
            a.dir_name(),
            other_subject.dir_name(),
            "another subject gets another directory"
        );
    }
}
