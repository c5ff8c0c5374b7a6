//! The serde_json fast path for the hot line type, `{"push":{"channel":"room:…","pub":{…}}}`,
//! decoded straight into borrowed, typed fields (no `serde_json::Value`, no second decode of
//! `data`). Lines in the server's exact shape are read before this by the hand-written
//! [`push_line`](crate::push_line); this path takes the other publication pushes.
//! It accepts a subset of what the generic [`Reply`](confab_protocol::Reply) path accepts, with the same meaning:
//! no other keys in the line or the push (`deny_unknown_fields`), the publication's fields
//! typed as in [`Publication`](confab_protocol::Publication) (`info` as [`confab_protocol::ClientInfo`], `tags` a string map)
//! and `data` a valid [`ChatMessage`](confab_protocol::ChatMessage). Anything else fails here and goes the generic way, so
//! errors and edge cases behave exactly as before.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PushLine<'a> {
    #[serde(borrow)]
    pub push: PubPush<'a>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PubPush<'a> {
    #[serde(borrow)]
    pub channel: Cow<'a, str>,
    #[serde(rename = "pub", borrow)]
    pub publication: Pub<'a>,
}

#[derive(Deserialize)]
pub(crate) struct Pub<'a> {
    #[serde(borrow)]
    pub data: Chat<'a>,
    #[serde(default, borrow)]
    #[allow(dead_code)] // validated like the generic path, not used
    info: Option<Info<'a>>,
    #[serde(default)]
    pub offset: u64,
    #[serde(default, borrow)]
    #[allow(dead_code)]
    tags: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
    #[serde(default)]
    #[allow(dead_code)]
    time: i64,
}

/// Mirrors `ClientInfo` (all fields default; the JSON ones accept any value).
#[derive(Deserialize, Default)]
#[serde(default)]
#[allow(dead_code)]
struct Info<'a> {
    #[serde(borrow)]
    user: Cow<'a, str>,
    #[serde(borrow)]
    client: Cow<'a, str>,
    conn_info: Option<IgnoredAny>,
    chan_info: Option<IgnoredAny>,
}

/// Mirrors `ChatMessage`.
#[derive(Deserialize)]
pub(crate) struct Chat<'a> {
    pub id: Uuid,
    #[serde(default, borrow)]
    pub author: Cow<'a, str>,
    #[serde(default, borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub text: Cow<'a, str>,
    pub ts: i64,
}

impl<'a> From<PubPush<'a>> for crate::push_line::PubLine<'a> {
    fn from(push: PubPush<'a>) -> Self {
        let p = push.publication;
        Self {
            channel: push.channel,
            publication: crate::push_line::PubData {
                offset: p.offset,
                id: p.data.id,
                author: p.data.author,
                name: p.data.name.unwrap_or(Cow::Borrowed("")),
                text: p.data.text,
                ts: p.data.ts,
            },
        }
    }
}
