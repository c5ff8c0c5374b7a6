//! A long conversation between two signed-in apps, for the tests that check that short-lived
//! tokens are renewed without the person noticing: no chat error (`#chat-error` data-count
//! stays 0), no connection line (`#connection` data-episodes stays 0), every message arrives in
//! order, exactly once.

use std::time::{Duration, Instant};

use crate::AppUnderTest;

/// Every app in `apps` (`(who, app)`) opens `room` and is connected to the chat server.
pub async fn open_and_connect(apps: &[(&str, &AppUnderTest)], room: &str) {
    for (who, app) in apps {
        app.open_room(room)
            .await
            .unwrap_or_else(|e| panic!("{who} opens {room}: {e}"));
    }
    for (who, app) in apps {
        app.wait_for_connection("connected")
            .await
            .unwrap_or_else(|e| panic!("{who}'s app connects to the chat server: {e}"));
    }
}

/// No error and no reconnect line so far, for every app in `apps` (`(who, app)`).
pub async fn assert_quiet(apps: &[(&str, &AppUnderTest)], when: &str) {
    for (who, app) in apps {
        assert_eq!(
            app.chat_error_count().await.expect("read #chat-error"),
            0,
            "{who} ({when}): token refresh never surfaces an error (#chat-error data-count stays 0; text: {:?})",
            app.chat_error_text().await.unwrap_or_default()
        );
        assert_eq!(
            app.connection_episodes().await.expect("read #connection"),
            0,
            "{who} ({when}): token refresh never shows the connection line (#connection data-episodes stays 0, state now {:?})",
            app.connection_state().await.unwrap_or_default()
        );
    }
}

/// `a` and `b` (named `names`) take turns sending a message every `every` for `length`, in the
/// room both have open; each message must show as sent for its sender and arrive for the other,
/// and both stay quiet ([`assert_quiet`]) after every message. Returns the texts sent, in order.
pub async fn converse(
    (a, b): (&AppUnderTest, &AppUnderTest),
    names: (&str, &str),
    length: Duration,
    every: Duration,
) -> Vec<String> {
    let start = Instant::now();
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent = Vec::new();
    let mut n = 0;
    while start.elapsed() < length {
        // The conversation's rhythm (not a wait for a condition).
        ticker.tick().await;
        n += 1;
        let (who, from, to) = if n % 2 == 1 {
            (names.0, a, b)
        } else {
            (names.1, b, a)
        };
        let text = format!("message {n} from {who} at {} s", start.elapsed().as_secs());
        from.send_message(&text).await.expect("the message is sent");
        from.wait_for_message(&text, Some("sent"))
            .await
            .expect("the sender sees it sent");
        to.wait_for_message(&text, None)
            .await
            .expect("the other user receives it");
        sent.push(text);
        assert_quiet(&[(names.0, a), (names.1, b)], &format!("after message {n}")).await;
    }
    sent
}

/// Both apps hold every message of `sent`, in order, exactly once (a full sweep of the history).
pub async fn assert_all_arrived(apps: &[(&str, &AppUnderTest)], sent: &[String]) {
    for (who, app) in apps {
        let history = app.all_rows().await.expect("history");
        assert!(
            history.duplicates.is_empty(),
            "{who}: no row is rendered twice"
        );
        assert_eq!(
            history.texts(),
            sent,
            "{who} has every message of the conversation, in order, exactly once"
        );
    }
}
