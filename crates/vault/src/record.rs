//! How an entry of an account is named in a store: the record key, a function of the
//! [`AccountId`] and the entry name. The format is on disk (Stronghold record keys): never
//! change it, or stored secrets are no longer found.

use crate::AccountId;

/// Unambiguous storage key for `(issuer, subject, name)`: `confab/v1/` followed by every part
/// length-prefixed (`<len>:<bytes>`), so no choice of issuer/subject/name can collide with
/// another account's entry.
pub(crate) fn record_key(account: &AccountId, name: &str) -> Vec<u8> {
    let mut key =
        Vec::with_capacity(16 + account.issuer.len() + account.subject.len() + name.len());
    key.extend_from_slice(b"confab/v1/");
    for part in [account.issuer.as_str(), account.subject.as_str(), name] {
        key.extend_from_slice(part.len().to_string().as_bytes());
        key.push(b':');
        key.extend_from_slice(part.as_bytes());
    }
    key
}

/// Prefix shared by all record keys of `account` (and by no other account's keys).
pub(crate) fn record_prefix(account: &AccountId) -> Vec<u8> {
    let mut key = record_key(account, "");
    // drop the trailing "0:" of the empty name
    key.truncate(key.len() - 2);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_are_pinned() {
        // Computed with the code this replaced (`AccountId::record_key` in confab-vault):
        // existing vaults must keep finding their entries.
        let alice = AccountId::new("https://idp.example", "alice");
        assert_eq!(
            record_key(&alice, "refresh_token"),
            b"confab/v1/19:https://idp.example5:alice13:refresh_token".to_vec(),
            "the record key of a fixed account and entry never changes"
        );
        assert_eq!(
            record_prefix(&alice),
            b"confab/v1/19:https://idp.example5:alice".to_vec(),
            "the record prefix of a fixed account never changes"
        );
    }

    #[test]
    fn record_keys_never_collide_across_accounts() {
        let a = AccountId::new("https://i/a", "b:c");
        let b = AccountId::new("https://i/a:b", "c");
        assert_ne!(
            record_key(&a, "x"),
            record_key(&b, "x"),
            "length prefixes keep (issuer, subject) pairs apart"
        );
        assert!(
            record_key(&a, "refresh_token").starts_with(&record_prefix(&a)),
            "every key of an account starts with its prefix"
        );
        assert!(
            !record_key(&b, "x").starts_with(&record_prefix(&a)),
            "another account's keys never match this account's prefix (sign-out wipes only it)"
        );
        let short = AccountId::new("https://i", "1");
        let longer = AccountId::new("https://i", "12");
        assert!(
            !record_key(&longer, "x").starts_with(&record_prefix(&short)),
            "a subject that extends another subject is not matched by its prefix"
        );
    }
}
