//! The accounts registry: what runs for each account, keyed by [`AccountId`], and which
//! account the UI shows.
//!
//! Every account has its own entry (its token manager in the sign-in flow, its relay, stores
//! and room book in the chat hub), so several accounts can run side by side; the UI of today
//! shows one, the *active* account. Each entry carries a generation: a task started for an
//! entry (event forwarding, a relay pump) checks it, so nothing from a replaced or ended entry
//! reaches a newer one of the same account or another account.

use std::collections::BTreeMap;

use confab_vault::AccountId;

/// Identifies one run of an account's entry; a newer run of the same account gets another.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Generation(u64);

#[derive(Debug)]
struct Entry<S> {
    generation: Generation,
    value: S,
}

/// Accounts with what runs for them (`S`), and the active account.
#[derive(Debug)]
pub struct Registry<S> {
    entries: BTreeMap<AccountId, Entry<S>>,
    active: Option<AccountId>,
    next: u64,
}

impl<S> Default for Registry<S> {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
            active: None,
            next: 0,
        }
    }
}

impl<S> Registry<S> {
    /// Starts a new run of `account` with `value`, replacing (and returning, for the caller to
    /// stop) what ran for it before, and makes it the active account.
    pub fn begin(&mut self, account: AccountId, value: S) -> (Generation, Option<S>) {
        self.next += 1;
        let generation = Generation(self.next);
        let old = self
            .entries
            .insert(account.clone(), Entry { generation, value });
        self.active = Some(account);
        (generation, old.map(|e| e.value))
    }

    /// Whether `generation` is still the current run of `account`.
    pub fn is_current(&self, account: &AccountId, generation: Generation) -> bool {
        self.entries
            .get(account)
            .is_some_and(|e| e.generation == generation)
    }

    /// What runs for `account` if `generation` is still its current run.
    pub fn current_mut(&mut self, account: &AccountId, generation: Generation) -> Option<&mut S> {
        self.entries
            .get_mut(account)
            .filter(|e| e.generation == generation)
            .map(|e| &mut e.value)
    }

    /// Ends `account`'s run and returns its generation and value. If it was the active
    /// account, none is active then: the caller shows another ([`Registry::set_active`]) or
    /// the sign-in screen.
    pub fn end(&mut self, account: &AccountId) -> Option<(Generation, S)> {
        if self.active.as_ref() == Some(account) {
            self.active = None;
        }
        self.entries
            .remove(account)
            .map(|e| (e.generation, e.value))
    }

    /// Ends `account`'s run only if `generation` is still its current run (a late end of a
    /// replaced run leaves the newer one alone).
    pub fn end_if_current(&mut self, account: &AccountId, generation: Generation) -> Option<S> {
        if !self.is_current(account, generation) {
            return None;
        }
        self.end(account).map(|(_, value)| value)
    }

    /// Ends every account's run (vault reset), returning them.
    pub fn end_all(&mut self) -> Vec<(AccountId, Generation, S)> {
        self.active = None;
        std::mem::take(&mut self.entries)
            .into_iter()
            .map(|(account, e)| (account, e.generation, e.value))
            .collect()
    }

    /// The account the UI shows, if any.
    pub fn active(&self) -> Option<&AccountId> {
        self.active.as_ref()
    }

    /// The active account with its generation and value.
    pub fn active_entry(&self) -> Option<(&AccountId, Generation, &S)> {
        let account = self.active.as_ref()?;
        let entry = self.entries.get(account)?;
        Some((account, entry.generation, &entry.value))
    }

    /// What runs for the active account.
    pub fn active_value(&self) -> Option<&S> {
        self.get(self.active.as_ref()?)
    }

    /// Makes `account` the active one, if it has an entry.
    pub fn set_active(&mut self, account: &AccountId) -> bool {
        let known = self.entries.contains_key(account);
        if known {
            self.active = Some(account.clone());
        }
        known
    }

    /// What runs for `account`.
    pub fn get(&self, account: &AccountId) -> Option<&S> {
        self.entries.get(account).map(|e| &e.value)
    }

    /// What runs for `account`, mutably.
    pub fn get_mut(&mut self, account: &AccountId) -> Option<&mut S> {
        self.entries.get_mut(account).map(|e| &mut e.value)
    }

    /// Every account with its value.
    pub fn iter(&self) -> impl Iterator<Item = (&AccountId, &S)> {
        self.entries.iter().map(|(a, e)| (a, &e.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> AccountId {
        AccountId::new("https://idp.example", "alice")
    }
    fn bob() -> AccountId {
        AccountId::new("https://other.example", "bob")
    }

    #[test]
    fn each_account_has_its_own_entry_and_the_last_begun_is_active() {
        let mut r = Registry::default();
        let (ga, old) = r.begin(alice(), "alice's manager");
        assert!(old.is_none());
        let (gb, _) = r.begin(bob(), "bob's manager");
        assert_ne!(ga, gb);
        assert_eq!(r.active(), Some(&bob()));
        assert_eq!(r.active_value(), Some(&"bob's manager"));
        assert_eq!(r.get(&alice()), Some(&"alice's manager"));
        assert_eq!(r.iter().count(), 2);
        assert!(r.set_active(&alice()));
        assert_eq!(r.active_entry(), Some((&alice(), ga, &"alice's manager")));
        assert!(!r.set_active(&AccountId::new("https://idp.example", "carol")));
        assert_eq!(
            r.active(),
            Some(&alice()),
            "an unknown account is not made active"
        );
    }

    #[test]
    fn a_replaced_run_is_stale_and_its_value_is_handed_back() {
        let mut r = Registry::default();
        let (first, _) = r.begin(alice(), 1);
        let (second, old) = r.begin(alice(), 2);
        assert_eq!(old, Some(1), "the caller stops what ran before");
        assert!(!r.is_current(&alice(), first));
        assert!(r.is_current(&alice(), second));
        assert_eq!(
            r.current_mut(&alice(), first),
            None,
            "a stale task changes nothing"
        );
        assert_eq!(
            r.end_if_current(&alice(), first),
            None,
            "a late end of the replaced run leaves the new one"
        );
        assert!(r.is_current(&alice(), second));
        if let Some(v) = r.current_mut(&alice(), second) {
            *v = 3;
        }
        assert_eq!(r.get(&alice()), Some(&3));
    }

    #[test]
    fn ending_one_account_leaves_the_others_running() {
        let mut r = Registry::default();
        let (ga, _) = r.begin(alice(), "a");
        let (gb, _) = r.begin(bob(), "b");
        assert_eq!(r.end(&bob()), Some((gb, "b")));
        assert_eq!(r.active(), None, "the ended account was the active one");
        assert!(!r.is_current(&bob(), gb));
        assert!(r.is_current(&alice(), ga), "alice runs on");
        assert_eq!(r.end(&bob()), None, "ending twice is harmless");
        assert_eq!(r.end_all(), vec![(alice(), ga, "a")]);
        assert_eq!(r.iter().count(), 0);
        assert!(!r.is_current(&alice(), ga));
    }
}
