//! The room list as the UI shows it: names, membership and unread counts (pure logic).
//!
//! Unread counts come from what the core has seen: every member room is subscribed, so each new
//! message passes through here. A room's count is the number of other people's messages after
//! the read position among those seen since the room's last reset. A reset only carries the
//! latest page, so when the oldest message of that page is itself unread and older ones exist,
//! the count is a lower bound and `unread_more` says so (the UI shows "50+").

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// A room in the UI's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomView {
    /// Room id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Whether the user is a member.
    pub member: bool,
    /// Only members and invited users see it.
    pub private: bool,
    /// The user is invited (may join).
    pub invited: bool,
    /// Other people's unread messages (a lower bound when `unread_more`).
    pub unread: usize,
    /// There may be more unread messages than `unread`.
    pub unread_more: bool,
}

#[derive(Debug, Default)]
struct Track {
    name: String,
    member: bool,
    private: bool,
    invited: bool,
    read: u64,
    unread: BTreeSet<u64>,
    more: bool,
}

/// All rooms the user knows of.
#[derive(Debug, Default)]
pub struct RoomBook {
    rooms: BTreeMap<String, Track>,
}

impl RoomBook {
    /// Takes the server's room list (names, membership); read positions come from `read_of`.
    pub fn set_list(
        &mut self,
        list: impl IntoIterator<Item = confab_relay::RoomInfo>,
        read_of: impl Fn(&str) -> u64,
    ) {
        let mut next = BTreeMap::new();
        for r in list {
            let mut track = self.rooms.remove(&r.id).unwrap_or_else(|| Track {
                read: read_of(&r.id),
                ..Track::default()
            });
            track.name = r.name;
            track.member = r.member;
            track.private = r.private;
            track.invited = r.invited && !r.member;
            next.insert(r.id, track);
        }
        self.rooms = next;
    }

    /// Adds or updates one room the user is now a member of (after create or join).
    pub fn upsert(&mut self, room: &confab_relay::RoomInfo, read: u64) {
        let track = self.rooms.entry(room.id.clone()).or_insert_with(|| Track {
            read,
            ..Track::default()
        });
        track.name.clone_from(&room.name);
        track.member = true;
        track.private = room.private;
        track.invited = false;
    }

    /// The user no longer belongs to `room` (left, removed): a private room leaves the list,
    /// a public one stays as one to join.
    pub fn close(&mut self, room: &str) {
        let private = self.rooms.get(room).is_some_and(|t| t.private);
        if private {
            self.rooms.remove(room);
        } else if let Some(t) = self.rooms.get_mut(room) {
            t.member = false;
            t.unread.clear();
            t.more = false;
        }
    }

    /// A new message in `room`. Returns true when the room's count changed. The user's own
    /// message means they have read everything before it.
    pub fn on_message(&mut self, room: &str, offset: u64, own: bool) -> bool {
        let Some(t) = self.rooms.get_mut(room) else {
            return false;
        };
        if own {
            return mark(t, offset);
        }
        offset > t.read && t.unread.insert(offset)
    }

    /// A reset of `room` to its latest page `(offset, own)` (oldest first). Returns true when
    /// the count changed.
    pub fn on_reset(&mut self, room: &str, page: &[(u64, bool)], has_older: bool) -> bool {
        let Some(t) = self.rooms.get_mut(room) else {
            return false;
        };
        let before = (t.unread.len(), t.more);
        if let Some(&(last_own, _)) = page.iter().rev().find(|(_, own)| *own) {
            t.read = t.read.max(last_own);
        }
        t.unread = page
            .iter()
            .filter(|&&(offset, own)| !own && offset > t.read)
            .map(|&(offset, _)| offset)
            .collect();
        t.more = has_older && page.first().is_some_and(|&(first, _)| first > t.read + 1);
        before != (t.unread.len(), t.more)
    }

    /// The user has read `room` up to `offset`. Returns the new read position when it moved.
    pub fn mark_read(&mut self, room: &str, offset: u64) -> Option<u64> {
        let t = self.rooms.get_mut(room)?;
        let moved = offset > t.read;
        mark(t, offset);
        moved.then_some(t.read)
    }

    /// The read position of `room` (0 when unknown).
    pub fn read_position(&self, room: &str) -> u64 {
        self.rooms.get(room).map_or(0, |t| t.read)
    }

    /// Ids of the rooms the user is a member of.
    pub fn member_rooms(&self) -> Vec<String> {
        self.rooms
            .iter()
            .filter(|(_, t)| t.member)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Whether the user is a member of `room`.
    pub fn is_member(&self, room: &str) -> bool {
        self.rooms.get(room).is_some_and(|t| t.member)
    }

    /// The display name of `room`.
    pub fn name(&self, room: &str) -> Option<&str> {
        self.rooms.get(room).map(|t| t.name.as_str())
    }

    /// The list for the UI: member rooms first, then by name.
    pub fn views(&self) -> Vec<RoomView> {
        let mut v: Vec<RoomView> = self
            .rooms
            .iter()
            .map(|(id, t)| RoomView {
                id: id.clone(),
                name: t.name.clone(),
                member: t.member,
                private: t.private,
                invited: t.invited,
                unread: t.unread.len(),
                unread_more: t.more,
            })
            .collect();
        v.sort_by(|a, b| {
            b.member
                .cmp(&a.member)
                .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
                .then_with(|| a.id.cmp(&b.id))
        });
        v
    }

    /// The view of one room.
    pub fn view(&self, room: &str) -> Option<RoomView> {
        self.views().into_iter().find(|v| v.id == room)
    }
}

/// Moves the read position forward to `offset`; true when the count changed.
fn mark(t: &mut Track, offset: u64) -> bool {
    let before = (t.unread.len(), t.more);
    t.read = t.read.max(offset);
    let read = t.read;
    t.unread.retain(|&o| o > read);
    if t.unread.is_empty() {
        t.more = false;
    }
    before != (t.unread.len(), t.more)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> RoomBook {
        let mut b = RoomBook::default();
        let room = |id: &str, name: &str, member: bool, private: bool| confab_relay::RoomInfo {
            id: id.to_owned(),
            name: name.to_owned(),
            member,
            private,
            invited: false,
        };
        b.set_list(
            [
                room("general", "General", true, false),
                room("ops", "Ops", false, false),
                room("secret", "Secret", true, true),
            ],
            |id| if id == "general" { 3 } else { 0 },
        );
        b
    }

    #[test]
    fn others_messages_after_the_read_position_are_unread_once() {
        let mut b = book();
        assert!(
            !b.on_message("general", 2, false),
            "already-read offsets do not count"
        );
        assert!(
            b.on_message("general", 4, false),
            "a new message from someone else counts"
        );
        assert!(
            !b.on_message("general", 4, false),
            "the same message never counts twice"
        );
        assert!(b.on_message("general", 5, false), "the next one counts too");
        assert_eq!(b.view("general").map(|v| v.unread), Some(2), "two unread");
        assert_eq!(
            b.mark_read("general", 4),
            Some(4),
            "reading moves the position"
        );
        assert_eq!(
            b.view("general").map(|v| v.unread),
            Some(1),
            "one left after reading up to 4"
        );
        assert_eq!(
            b.mark_read("general", 2),
            None,
            "the read position never moves back"
        );
        assert!(
            b.on_message("general", 6, true),
            "the user's own message marks the room read"
        );
        assert_eq!(
            b.view("general").map(|v| v.unread),
            Some(0),
            "nothing unread after writing"
        );
    }

    #[test]
    fn a_reset_page_counts_what_it_shows_and_flags_a_lower_bound() {
        let mut b = book();
        let page: Vec<(u64, bool)> = (51..=100).map(|o| (o, false)).collect();
        assert!(
            b.on_reset("general", &page, true),
            "a reset with unread messages changes the count"
        );
        let v = b.view("general").expect("known room");
        assert_eq!(
            (v.unread, v.unread_more),
            (50, true),
            "50 seen, and older ones are unread too"
        );
        let page: Vec<(u64, bool)> = vec![(1, false), (2, true), (3, false), (4, false)];
        b.on_reset("general", &page, false);
        let v = b.view("general").expect("known room");
        assert_eq!(
            (v.unread, v.unread_more),
            (1, false),
            "the read position (3) and own messages bound what is unread; nothing older exists"
        );
    }

    #[test]
    fn member_rooms_come_first_and_unknown_rooms_are_ignored() {
        let mut b = book();
        assert!(
            !b.on_message("nowhere", 1, false),
            "messages of unknown rooms change nothing"
        );
        let ids: Vec<_> = b.views().into_iter().map(|v| v.id).collect();
        assert_eq!(ids, ["general", "secret", "ops"], "member rooms first");
        assert_eq!(
            b.member_rooms(),
            ["general", "secret"],
            "only member rooms are subscribed"
        );
        let ops = confab_relay::RoomInfo {
            id: "ops".into(),
            name: "Ops".into(),
            member: false,
            private: false,
            invited: false,
        };
        b.upsert(&ops, 0);
        assert!(b.is_member("ops"), "joining makes the user a member");
    }

    #[test]
    fn closing_a_room_hides_a_private_one_and_keeps_a_public_one_to_join() {
        let mut b = book();
        b.on_message("general", 9, false);
        b.close("general");
        let g = b.view("general").expect("a public room stays listed");
        assert_eq!((g.member, g.unread), (false, 0));
        b.close("secret");
        assert!(
            b.view("secret").is_none(),
            "a private room is gone from the list"
        );
        assert!(!b.is_member("secret"));
    }
}
