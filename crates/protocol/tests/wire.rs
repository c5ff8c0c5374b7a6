//! Wire-format tests: JSON shapes match the reference encoding; decoding garbage never panics.

use confab_protocol::*;
use proptest::prelude::*;
use serde_json::json;

#[test]
fn connect_command_decodes_and_token_is_redacted_in_debug() {
    let cmds = decode_commands(
        br#"{"id":1,"connect":{"token":"secret.jwt.value","name":"js"}}"#,
        1024,
    )
    .expect("valid connect frame decodes");
    let incoming = cmds[0]
        .clone()
        .into_incoming()
        .expect("one method is a valid command");
    let Incoming::Request {
        id,
        request: Request::Connect(c),
    } = incoming
    else {
        panic!("connect command must decode to Request::Connect");
    };
    assert_eq!(id, 1, "command id is kept");
    assert_eq!(
        c.token.expose_secret(),
        "secret.jwt.value",
        "token is readable through expose_secret()"
    );
    assert!(
        !format!("{c:?}").contains("secret.jwt.value"),
        "Debug never shows the token"
    );
}

#[test]
fn batch_frames_split_on_newlines_and_skip_blank_lines() {
    let frame = b"{\"id\":1,\"subscribe\":{\"channel\":\"room:a\"}}\n{\"id\":2,\"history\":{\"channel\":\"room:a\",\"limit\":-1}}\n";
    let cmds = decode_commands(frame, 1024).expect("two-command batch decodes");
    assert_eq!(cmds.len(), 2, "both commands of a batch are returned");
    assert_eq!(
        cmds[1].history.as_ref().map(|h| h.limit),
        Some(-1),
        "history limit -1 is kept"
    );
}

#[test]
fn pong_is_an_empty_object_and_ping_reply_is_empty() {
    let cmds = decode_commands(b"{}", 16).expect("pong decodes");
    assert_eq!(
        cmds[0].clone().into_incoming().ok(),
        Some(Incoming::Pong),
        "{{}} is a pong"
    );
    assert_eq!(
        encode_frame(&[Reply::ping()]).ok().as_deref(),
        Some("{}"),
        "server ping is {{}}"
    );
}

#[test]
fn commands_without_id_or_with_two_methods_are_rejected() {
    let no_id: Command =
        serde_json::from_value(json!({"publish":{"channel":"room:a","data":{}}})).expect("parses");
    assert_eq!(
        no_id.into_incoming(),
        Err(CommandError::MissingId),
        "publish needs an id"
    );
    let send: Command = serde_json::from_value(json!({"send":{"data":{"x":1}}})).expect("parses");
    assert!(
        matches!(
            send.into_incoming(),
            Ok(Incoming::Request {
                id: 0,
                request: Request::Send(_)
            })
        ),
        "send needs no id"
    );
    let two: Command = serde_json::from_value(
        json!({"id":3,"presence":{"channel":"a"},"history":{"channel":"a"}}),
    )
    .expect("parses");
    assert_eq!(
        two.into_incoming(),
        Err(CommandError::MultipleMethods),
        "one method per command"
    );
    let none: Command = serde_json::from_value(json!({"id":4})).expect("parses");
    assert_eq!(
        none.into_incoming(),
        Err(CommandError::NoMethod),
        "an id needs a method"
    );
}

#[test]
fn replies_and_pushes_use_reference_field_names() {
    let push = Reply::push(Push {
        channel: "room:a".into(),
        publication: Some(Publication {
            data: json!({"text":"hi"}),
            offset: 7,
            ..Default::default()
        }),
        ..Default::default()
    });
    assert_eq!(
        serde_json::to_value(&push).expect("serializes"),
        json!({"push":{"channel":"room:a","pub":{"data":{"text":"hi"},"offset":7}}}),
        "publication push uses `pub` and omits defaults"
    );
    let err = Reply::error(5, ErrorReply::from_code(ErrorCode::PERMISSION_DENIED));
    assert_eq!(
        serde_json::to_value(&err).expect("serializes"),
        json!({"id":5,"error":{"code":103,"message":"permission denied"}}),
        "error reply shape and reference message"
    );
    let sub = Reply {
        id: 2,
        subscribe: Some(SubscribeResult {
            recoverable: true,
            epoch: "e".into(),
            offset: 3,
            recovered: true,
            was_recovering: true,
            positioned: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&sub).expect("serializes"),
        json!({"id":2,"subscribe":{"recoverable":true,"epoch":"e","recovered":true,"offset":3,"positioned":true,"was_recovering":true}}),
        "subscribe result field names follow client.proto"
    );
}

#[test]
fn reference_codes_are_exact() {
    assert_eq!(ErrorCode::TOKEN_EXPIRED, 109, "token expired is 109");
    assert_eq!(
        ErrorCode::UNRECOVERABLE_POSITION,
        112,
        "unrecoverable position is 112"
    );
    assert_eq!(
        Disconnect::INVALID_TOKEN.code,
        3500,
        "invalid token is 3500"
    );
    assert_eq!(Disconnect::EXPIRED.code, 3005, "connection expired is 3005");
    assert_eq!(Disconnect::SHUTDOWN.code, 3001, "shutdown is 3001");
    assert_eq!(Disconnect::BAD_REQUEST.code, 3501, "bad request is 3501");
    assert!(
        Disconnect::SHUTDOWN.reconnect(),
        "shutdown asks clients to reconnect"
    );
    assert!(
        !Disconnect::INVALID_TOKEN.reconnect(),
        "invalid token is terminal"
    );
}

#[test]
fn oversize_and_malformed_frames_are_typed_errors() {
    assert!(
        matches!(
            decode_commands(&[b' '; 100], 10),
            Err(FrameError::TooLarge { size: 100, max: 10 })
        ),
        "size limit applies before parsing"
    );
    assert!(
        matches!(decode_commands(b"\n\n", 10), Err(FrameError::Empty)),
        "blank frame is empty"
    );
    assert!(
        matches!(
            decode_commands(b"{}\n{nope", 100),
            Err(FrameError::InvalidJson { line: 2, .. })
        ),
        "bad line is reported with its number"
    );
    assert!(
        matches!(
            decode_commands(&[0xff, 0xfe], 100),
            Err(FrameError::NotUtf8)
        ),
        "binary garbage is not UTF-8"
    );
}

#[test]
fn batches_respect_the_size_limit() {
    let replies: Vec<Reply> = (0..50)
        .map(|i| Reply::error(i + 1, ErrorReply::from_code(ErrorCode::BAD_REQUEST)))
        .collect();
    let frames = encode_batches(&replies, 200).expect("encodes");
    assert!(
        frames.len() > 1,
        "many replies are split into several frames"
    );
    let mut total = 0;
    for f in &frames {
        assert!(f.len() <= 200, "every frame respects the limit");
        total += decode_replies(f.as_bytes(), 200)
            .expect("own frames decode")
            .len();
    }
    assert_eq!(total, 50, "no reply is lost when batching");
}

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(cmds) = decode_commands(&bytes, 4096) {
            for c in cmds {
                let _ = c.into_incoming();
            }
        }
    }

    #[test]
    fn decoding_json_like_text_never_panics(s in "[{}\\[\\]\":,0-9a-z_ \\n-]{0,200}") {
        if let Ok(cmds) = decode_commands(s.as_bytes(), 4096) {
            for c in cmds {
                let _ = c.into_incoming();
            }
        }
    }

    #[test]
    fn publish_commands_round_trip(id in 1u32.., channel in "room:[a-z0-9_-]{1,20}", text in ".{0,40}") {
        let cmd = Command { id, publish: Some(PublishRequest { channel, data: json!({"text": text}) }), ..Default::default() };
        let frame = encode_frame(std::slice::from_ref(&cmd)).expect("encodes");
        let back = decode_commands(frame.as_bytes(), 1 << 20).expect("own frame decodes");
        prop_assert_eq!(back, vec![cmd]);
    }
}

/// The token is a plain JSON string on the wire (Centrifugo's `connect`/`refresh`/`subscribe`/
/// `sub_refresh` `token` field), and an empty one is left out where the schema allows it. The
/// expected frames are pinned byte for byte.
#[test]
fn tokens_encode_as_plain_json_strings() {
    let token = || Token::from("eyJ.a\"b\\c/é");
    let connect = Command {
        id: 1,
        connect: Some(ConnectRequest {
            token: token(),
            name: "confab-app".into(),
            ..ConnectRequest::default()
        }),
        ..Command::default()
    };
    let refresh = Command {
        id: 2,
        refresh: Some(RefreshRequest { token: token() }),
        ..Command::default()
    };
    let subscribe = Command {
        id: 3,
        subscribe: Some(SubscribeRequest {
            channel: "room:a".into(),
            ..SubscribeRequest::default()
        }),
        ..Command::default()
    };
    let sub_refresh = Command {
        id: 4,
        sub_refresh: Some(SubRefreshRequest {
            channel: "room:a".into(),
            token: token(),
        }),
        ..Command::default()
    };
    let empty_refresh = Command {
        id: 5,
        refresh: Some(RefreshRequest::default()),
        ..Command::default()
    };
    let frame = encode_frame(&[connect, refresh, subscribe, sub_refresh, empty_refresh])
        .expect("commands encode");
    assert_eq!(
        frame,
        concat!(
            r#"{"id":1,"connect":{"token":"eyJ.a\"b\\c/é","name":"confab-app"}}"#,
            "\n",
            r#"{"id":2,"refresh":{"token":"eyJ.a\"b\\c/é"}}"#,
            "\n",
            r#"{"id":3,"subscribe":{"channel":"room:a"}}"#,
            "\n",
            r#"{"id":4,"sub_refresh":{"channel":"room:a","token":"eyJ.a\"b\\c/é"}}"#,
            "\n",
            r#"{"id":5,"refresh":{"token":""}}"#,
        ),
        "a token is serialized as its plain string; empty ones are omitted where optional"
    );
    let back = decode_commands(frame.as_bytes(), 4096).expect("the frame decodes");
    assert_eq!(
        back[0].connect.as_ref().map(|c| c.token.clone()),
        Some(token()),
        "the token decodes to the same value"
    );
}
