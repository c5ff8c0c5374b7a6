//! Property tests of the pure callback parser: whatever arrives (a hostile web page can send any
//! URL to the app's scheme or loopback port), it never panics and either yields exactly the
//! parameters of a well-formed callback or a typed "malformed / wrong redirect" error.

use confab_auth::{parse_callback, ErrorCode, RedirectTarget};
use proptest::prelude::*;

fn private_use() -> RedirectTarget {
    RedirectTarget::private_use("dev.confab.chat:/oauth/callback").expect("valid redirect")
}

fn loopback() -> RedirectTarget {
    RedirectTarget::loopback(43_210).expect("valid redirect")
}

fn rejection_codes() -> [ErrorCode; 2] {
    [ErrorCode::MalformedCallback, ErrorCode::RedirectMismatch]
}

/// Percent-encode every byte that is not unreserved.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(input in any::<String>()) {
        for target in [private_use(), loopback()] {
            if let Err(e) = parse_callback(&input, &target) {
                prop_assert!(
                    rejection_codes().contains(&e.code()),
                    "arbitrary input is refused only as malformed or misaddressed, got {:?}", e.code()
                );
            }
        }
    }

    #[test]
    fn odd_queries_on_the_right_redirect_are_typed(query in "[a-z=&%+#0-9A-F\u{0}-\u{7f}\u{e9}\u{202e}\u{1F600}]{0,300}") {
        let url = format!("dev.confab.chat:/oauth/callback?{query}");
        match parse_callback(&url, &private_use()) {
            Ok(p) => {
                prop_assert!(!p.state.expose_secret().is_empty(), "an accepted callback has a state");
                prop_assert!(
                    p.state.expose_secret().bytes().all(|b| (0x20..=0x7e).contains(&b)),
                    "an accepted state is printable ASCII"
                );
            }
            Err(e) => prop_assert!(
                rejection_codes().contains(&e.code()),
                "odd queries are refused as malformed, got {:?}", e.code()
            ),
        }
    }

    #[test]
    fn huge_inputs_are_refused(len in 8_193usize..40_000, c in any::<char>()) {
        let url = format!("dev.confab.chat:/oauth/callback?code=a&state={}", c.to_string().repeat(len));
        let e = parse_callback(&url, &private_use()).err();
        prop_assert_eq!(
            e.map(|e| e.code()), Some(ErrorCode::MalformedCallback),
            "callbacks beyond the length cap are malformed"
        );
    }

    #[test]
    fn well_formed_values_round_trip(state in "[ -~]{1,200}", code in "[ -~]{1,200}") {
        let url = format!(
            "http://127.0.0.1:43210/callback?code={}&state={}", encode(&code), encode(&state)
        );
        let p = parse_callback(&url, &loopback()).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(p.state.expose_secret(), state.as_str(), "state round-trips through percent-encoding");
        prop_assert_eq!(
            p.code.as_ref().map(|c| c.expose_secret()), Some(code.as_str()),
            "code round-trips through percent-encoding"
        );
    }

    #[test]
    fn non_ascii_state_or_code_is_refused(prefix in "[a-z]{0,10}", c in "[\u{80}-\u{10FFFF}]") {
        let value = format!("{prefix}{c}");
        for url in [
            format!("dev.confab.chat:/oauth/callback?code=x&state={}", encode(&value)),
            format!("dev.confab.chat:/oauth/callback?code={}&state=s", encode(&value)),
        ] {
            let e = parse_callback(&url, &private_use()).err();
            prop_assert_eq!(
                e.map(|e| e.code()), Some(ErrorCode::MalformedCallback),
                "state and code must be printable ASCII (RFC 6749 VSCHAR)"
            );
        }
    }

    #[test]
    fn duplicated_security_parameters_are_refused(
        name in prop::sample::select(vec!["state", "code", "iss", "error"]),
        a in "[a-z]{1,8}", b in "[a-z]{1,8}",
    ) {
        let url = format!("dev.confab.chat:/oauth/callback?state=s&code=c&{name}={a}&{name}={b}");
        let e = parse_callback(&url, &private_use()).err();
        prop_assert_eq!(
            e.map(|e| e.code()), Some(ErrorCode::MalformedCallback),
            "a repeated state/code/iss/error makes the callback ambiguous and is refused"
        );
    }
}

#[test]
fn bad_percent_encodings_are_refused() {
    for q in [
        "state=%",
        "state=%4",
        "state=%G0",
        "state=%C3%28",
        "state=%ED%A0%80",
        "state=%F0%9F",
    ] {
        let url = format!("dev.confab.chat:/oauth/callback?code=c&{q}");
        assert_eq!(
            parse_callback(&url, &private_use()).err().map(|e| e.code()),
            Some(ErrorCode::MalformedCallback),
            "broken or non-UTF-8 percent-encoding is malformed: {q}"
        );
    }
}
