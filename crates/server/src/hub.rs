//! In-memory registry of sockets, users and channel subscribers; fan-out of pushes.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use confab_protocol::{ClientInfo, Disconnect, Join, Leave, Push, Reply, UnsubscribePush};
use tokio::sync::{mpsc, watch};

/// A pre-encoded JSON reply line, shared between all receivers of a broadcast.
pub type Line = Arc<str>;

struct Socket {
    user: Option<String>,
    addr: Option<IpAddr>,
    tx: mpsc::Sender<Line>,
    kill: watch::Sender<Option<Disconnect>>,
}

struct Subscriber {
    info: ClientInfo,
    join_leave: bool,
}

#[derive(Default)]
struct Inner {
    sockets: HashMap<String, Socket>,
    users: HashMap<String, usize>,
    /// Sockets not authenticated yet.
    pending: usize,
    /// Sockets per peer address.
    addresses: HashMap<IpAddr, usize>,
    channels: HashMap<String, HashMap<String, Subscriber>>,
}

/// Why a socket or user could not be admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Too many sockets in total, or shutting down.
    TotalLimit,
    /// Too many connections for this user.
    UserLimit,
    /// Too many sockets that have not authenticated yet.
    PendingLimit,
    /// Too many sockets from this address.
    AddressLimit,
}

/// The hub's admission limits.
#[derive(Debug, Clone, Copy)]
pub struct HubLimits {
    /// Sockets in total.
    pub total: usize,
    /// Authenticated connections per user.
    pub per_user: usize,
    /// Sockets that have not sent a valid `connect` yet.
    pub pending: usize,
    /// Sockets per peer IP address (0: no limit, e.g. behind a reverse proxy).
    pub per_address: usize,
}

/// Shared registry. All methods are short and never await while holding the lock.
pub struct Hub {
    inner: Mutex<Inner>,
    limits: HubLimits,
    shutting_down: AtomicBool,
}

fn encode(reply: &Reply) -> Line {
    // Replies are plain data (strings, numbers, JSON values): serialization cannot fail.
    Arc::from(serde_json::to_string(reply).unwrap_or_else(|_| "{}".to_owned()))
}

impl Hub {
    /// An empty hub with connection limits.
    pub fn new(limits: HubLimits) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            limits,
            shutting_down: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock would be a bug elsewhere; keep serving with the data.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new socket from `addr`; refused during shutdown and over the total, the
    /// not-yet-authenticated or the per-address limit.
    pub fn open(
        &self,
        client: &str,
        addr: Option<IpAddr>,
        tx: mpsc::Sender<Line>,
        kill: watch::Sender<Option<Disconnect>>,
    ) -> Result<(), Admission> {
        let mut inner = self.lock();
        if self.shutting_down.load(Ordering::SeqCst) || inner.sockets.len() >= self.limits.total {
            return Err(Admission::TotalLimit);
        }
        if inner.pending >= self.limits.pending {
            return Err(Admission::PendingLimit);
        }
        if let Some(ip) = addr.filter(|_| self.limits.per_address > 0) {
            let n = inner.addresses.entry(ip).or_insert(0);
            if *n >= self.limits.per_address {
                return Err(Admission::AddressLimit);
            }
            *n += 1;
        }
        inner.pending += 1;
        inner.sockets.insert(
            client.to_owned(),
            Socket {
                user: None,
                addr: addr.filter(|_| self.limits.per_address > 0),
                tx,
                kill,
            },
        );
        Ok(())
    }

    /// Marks a socket as authenticated as `user`; refused over the per-user limit.
    pub fn authenticate(&self, client: &str, user: &str) -> Result<(), Admission> {
        let mut inner = self.lock();
        let count = inner.users.get(user).copied().unwrap_or(0);
        if count >= self.limits.per_user {
            return Err(Admission::UserLimit);
        }
        let was_pending = inner
            .sockets
            .get_mut(client)
            .map(|s| s.user.replace(user.to_owned()).is_none());
        if let Some(was_pending) = was_pending {
            if was_pending {
                inner.pending = inner.pending.saturating_sub(1);
            }
            *inner.users.entry(user.to_owned()).or_insert(0) += 1;
        }
        Ok(())
    }

    /// Removes a socket and its subscriptions, sending leave pushes.
    pub fn close(&self, client: &str) {
        let channels: Vec<String> = {
            let mut inner = self.lock();
            if let Some(sock) = inner.sockets.remove(client) {
                if let Some(ip) = sock.addr {
                    if let Some(n) = inner.addresses.get_mut(&ip) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            inner.addresses.remove(&ip);
                        }
                    }
                }
                if sock.user.is_none() {
                    inner.pending = inner.pending.saturating_sub(1);
                }
                if let Some(user) = sock.user {
                    if let Some(n) = inner.users.get_mut(&user) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            inner.users.remove(&user);
                        }
                    }
                }
            }
            inner
                .channels
                .iter()
                .filter(|(_, subs)| subs.contains_key(client))
                .map(|(c, _)| c.clone())
                .collect()
        };
        for ch in channels {
            self.unsubscribe(&ch, client);
        }
    }

    /// Number of open sockets.
    pub fn socket_count(&self) -> usize {
        self.lock().sockets.len()
    }

    /// Adds a subscriber and tells others who asked for join/leave pushes. False (nothing
    /// added) when the socket is no longer open, so a subscribe finishing after its connection
    /// closed leaves no ghost subscriber.
    pub fn subscribe(
        &self,
        channel: &str,
        client: &str,
        info: ClientInfo,
        join_leave: bool,
    ) -> bool {
        let join = Reply::push(Push {
            channel: channel.to_owned(),
            join: Some(Join { info: info.clone() }),
            ..Push::default()
        });
        {
            let mut inner = self.lock();
            if !inner.sockets.contains_key(client) {
                return false;
            }
            inner
                .channels
                .entry(channel.to_owned())
                .or_default()
                .insert(client.to_owned(), Subscriber { info, join_leave });
        }
        // Everyone with join/leave on hears it, the new subscriber too (as in Centrifugo).
        self.fan_out(channel, &join, None, true);
        true
    }

    /// Removes a subscriber (if present) and sends a leave push.
    pub fn unsubscribe(&self, channel: &str, client: &str) {
        let removed = {
            let mut inner = self.lock();
            let removed = inner
                .channels
                .get_mut(channel)
                .and_then(|subs| subs.remove(client));
            if inner.channels.get(channel).is_some_and(|s| s.is_empty()) {
                inner.channels.remove(channel);
            }
            removed
        };
        if let Some(sub) = removed {
            let leave = Reply::push(Push {
                channel: channel.to_owned(),
                leave: Some(Leave { info: sub.info }),
                ..Push::default()
            });
            self.fan_out(channel, &leave, Some(client), true);
        }
    }

    /// Ends every subscription of `user`'s sockets to `channel` with an unsubscribe push
    /// (`code`, `reason`) to each, and leave pushes to the others. For a user who left or was
    /// removed from a room: they stop receiving it at once.
    pub fn end_subscriptions(&self, channel: &str, user: &str, code: u32, reason: &str) {
        let push = encode(&Reply::push(Push {
            channel: channel.to_owned(),
            unsubscribe: Some(UnsubscribePush {
                code,
                reason: reason.to_owned(),
            }),
            ..Push::default()
        }));
        let ended: Vec<String> = {
            let inner = self.lock();
            let Some(subs) = inner.channels.get(channel) else {
                return;
            };
            let ended: Vec<String> = subs
                .keys()
                .filter(|c| {
                    inner
                        .sockets
                        .get(*c)
                        .is_some_and(|s| s.user.as_deref() == Some(user))
                })
                .cloned()
                .collect();
            for client in &ended {
                if let Some(sock) = inner.sockets.get(client) {
                    if sock.tx.try_send(push.clone()).is_err() {
                        let _ = sock.kill.send(Some(Disconnect::SLOW));
                    }
                }
            }
            ended
        };
        for client in ended {
            self.unsubscribe(channel, &client);
        }
    }

    /// Whether socket `client` is subscribed to `channel`.
    pub fn is_subscribed(&self, channel: &str, client: &str) -> bool {
        self.lock()
            .channels
            .get(channel)
            .is_some_and(|subs| subs.contains_key(client))
    }

    /// Sends a reply (push) to every subscriber of `channel`.
    pub fn broadcast(&self, channel: &str, reply: &Reply) {
        self.fan_out(channel, reply, None, false);
    }

    fn fan_out(&self, channel: &str, reply: &Reply, except: Option<&str>, join_leave_only: bool) {
        let line = encode(reply);
        let inner = self.lock();
        let Some(subs) = inner.channels.get(channel) else {
            return;
        };
        for (client, sub) in subs {
            if Some(client.as_str()) == except || (join_leave_only && !sub.join_leave) {
                continue;
            }
            if let Some(sock) = inner.sockets.get(client) {
                if sock.tx.try_send(line.clone()).is_err() {
                    // Queue full: the client does not read fast enough.
                    let _ = sock.kill.send(Some(Disconnect::SLOW));
                }
            }
        }
    }

    /// Client id → info of everyone subscribed to `channel`.
    pub fn presence(&self, channel: &str) -> BTreeMap<String, ClientInfo> {
        let inner = self.lock();
        inner
            .channels
            .get(channel)
            .map(|subs| {
                subs.iter()
                    .map(|(c, s)| (c.clone(), s.info.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Refuses new sockets and disconnects every open one with `disconnect`.
    pub fn shutdown(&self, disconnect: Disconnect) {
        self.shutting_down.store(true, Ordering::SeqCst);
        let inner = self.lock();
        for sock in inner.sockets.values() {
            let _ = sock.kill.send(Some(disconnect));
        }
    }
}
