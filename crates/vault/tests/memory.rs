//! MemoryStore: the same contract as the persistent store, for unit tests of callers.

use confab_vault::{AccountId, MemoryStore, SecretStore, SecretString};

#[test]
fn memory_store_put_get_delete_and_isolation() {
    let store = MemoryStore::new();
    let alice = AccountId::new("https://idp.example", "alice");
    let bob = AccountId::new("https://idp.example", "bob");
    let s: &dyn SecretStore = &store;
    s.put(&alice, "refresh_token", &SecretString::from("A"))
        .expect("put");
    s.put(&bob, "refresh_token", &SecretString::from("B"))
        .expect("put");
    s.put(&alice, "other", &SecretString::from("A2"))
        .expect("put");
    let read = |a: &AccountId, n: &str| {
        s.get(a, n)
            .expect("get")
            .map(|v| v.expose_secret().to_owned())
    };
    assert_eq!(
        read(&alice, "refresh_token").as_deref(),
        Some("A"),
        "each account reads its own value"
    );
    assert_eq!(
        read(&bob, "refresh_token").as_deref(),
        Some("B"),
        "each account reads its own value"
    );
    assert!(
        s.delete(&bob, "refresh_token").expect("delete"),
        "delete reports an existing secret"
    );
    assert_eq!(
        read(&bob, "refresh_token"),
        None,
        "a deleted secret is gone"
    );
    assert_eq!(
        s.delete_account(&alice).expect("delete_account"),
        2,
        "sign-out removes all of alice's secrets"
    );
    assert_eq!(read(&alice, "other"), None, "nothing of alice remains");
    assert_eq!(
        format!("{store:?}"),
        "MemoryStore([redacted])",
        "Debug shows no content"
    );
}
