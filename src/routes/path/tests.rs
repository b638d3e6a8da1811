use super::*;
use proptest::prelude::*;

#[test]
fn normalizes_spellings_of_the_same_path() {
    let cases = [
        ("/", "/"),
        ("/api/catalog/entities", "/api/catalog/entities"),
        ("/api//catalog///entities", "/api/catalog/entities"),
        ("/api/catalog/entities/", "/api/catalog/entities"),
        ("/api/./catalog/entities", "/api/catalog/entities"),
        ("/api/x/../catalog/entities", "/api/catalog/entities"),
        ("/api/x/%2e%2e/catalog", "/api/catalog"),
        ("/api/x/%2E%2e/catalog", "/api/catalog"),
        ("/api/x/.%2e/catalog", "/api/catalog"),
        ("/../../etc/passwd", "/etc/passwd"),
        ("/api/%63atalog", "/api/catalog"),
        ("/api/cat%7ealog", "/api/cat~alog"),
        ("/a/b%20c", "/a/b%20c"),
        ("/a/b%3ac", "/a/b%3Ac"),
        ("/a/caf%c3%a9", "/a/caf%C3%A9"),
        ("/a/..", "/"),
        ("/.", "/"),
        ("//", "/"),
        ("/a/.", "/a"),
    ];
    for (input, expected) in cases {
        assert_eq!(normalize(input).as_deref(), Ok(expected), "input {input}");
    }
}

#[test]
fn refuses_dangerous_paths() {
    let cases: [(&str, PathError); 19] = [
        // Found by fuzzing: a character split across segments or around a raw byte.
        ("/%C3/../%A9", PathError::InvalidUtf8),
        ("/%C3/%A9", PathError::InvalidUtf8),
        ("/%CA1%A1", PathError::InvalidUtf8),
        ("/a/%e0%80%ae%e0%80%ae/x", PathError::InvalidUtf8),
        ("/a/%f0%80%80%ae", PathError::InvalidUtf8),
        ("/a/%ed%a0%80", PathError::InvalidUtf8),
        ("/admin%3bx=1", PathError::Semicolon),
        ("/a/\u{e9}", PathError::NonAscii),
        ("/api%2fcatalog", PathError::EncodedSeparator("2F".into())),
        ("/api%2Fcatalog", PathError::EncodedSeparator("2F".into())),
        ("/api%5ccatalog", PathError::EncodedSeparator("5C".into())),
        ("/api\\catalog", PathError::Backslash),
        ("/api%00", PathError::EncodedControl("00".into())),
        ("/api%0a", PathError::EncodedControl("0A".into())),
        ("/api%zz", PathError::InvalidEscape),
        ("/api%4", PathError::InvalidEscape),
        ("/api%c0%ae%c0%ae/x", PathError::InvalidUtf8),
        ("/api/catalog;x=1/entities", PathError::Semicolon),
        ("*", PathError::NotAbsolute),
    ];
    for (input, expected) in cases {
        assert_eq!(normalize(input), Err(expected), "input {input}");
    }
}

#[test]
fn borrows_paths_that_are_already_normal() {
    assert!(matches!(normalize("/api/catalog/entities"), Ok(Cow::Borrowed(_))));
    assert!(matches!(normalize("/api/catalog/"), Ok(Cow::Owned(_))));
    assert!(matches!(normalize("/api/catalog/.."), Ok(Cow::Owned(_))));
}

#[test]
fn decodes_params_fully() {
    assert_eq!(decode_param("my%20name").as_deref(), Some("my name"));
    assert_eq!(decode_param("plain").as_deref(), Some("plain"));
    assert_eq!(decode_param("%FF"), None);
}

proptest! {
    #[test]
    fn normalized_paths_are_clean_and_stable(segments in proptest::collection::vec(
        prop_oneof![
            Just("".to_string()), Just(".".to_string()), Just("..".to_string()),
            Just("%2e".to_string()), Just("%2E%2e".to_string()), Just("%2f".to_string()),
            Just("%41".to_string()), Just("%20".to_string()), Just("%C3".to_string()), Just("%A9".to_string()),
            Just("%C3%A9".to_string()), "[a-zA-Z0-9._~-]{1,6}",
        ], 0..12)) {
        let path = format!("/{}", segments.join("/"));
        if let Ok(normal) = normalize(&path) {
            prop_assert!(normal.starts_with('/'));
            prop_assert!(!normal.contains("//"));
            prop_assert!(!normal.split('/').any(|s| s == ".." || s == "."));
            prop_assert!(!normal.to_ascii_lowercase().contains("%2f"));
            prop_assert!(normal.len() == 1 || !normal.ends_with('/'));
            let again = normalize(&normal).map(|p| p.into_owned());
            prop_assert_eq!(again.as_deref(), Ok(&*normal));
        }
    }
}
