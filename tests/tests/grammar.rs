//! Every codec enforces the grammar the spec gives it: whatever a codec
//! accepts matches its regular expression, and the spec's own examples of
//! valid and invalid values land on the right side. The registry and the
//! generated runtime also agree on the codec table.

use durable_streams_api::codec;
use proptest::prelude::*;
use regex::Regex;

fn pattern(name: &str) -> Regex {
    let (_, pattern) = codec::CODECS.iter().find(|(n, _)| *n == name).expect("codec exists");
    Regex::new(pattern).expect("pattern compiles")
}

#[test]
fn registry_headers_use_known_codecs_and_the_generated_table_matches() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let spec = ds_codegen::Spec::load(&root.join("spec")).unwrap();
    assert_eq!(spec.registry.headers.len(), durable_streams_api::headers::REGISTRY.len());
    for (spec_header, generated) in spec.registry.headers.iter().zip(durable_streams_api::headers::REGISTRY) {
        assert_eq!(spec_header.name, generated.name);
        assert_eq!(spec_header.pattern, generated.pattern);
        assert!(codec::accepts(&spec_header.codec, "x").is_some(), "{} has no runtime codec", spec_header.name);
    }
}

#[test]
fn examples_from_the_protocol() {
    let accepted = [
        ("decimal", "0"),
        ("decimal", "3600"),
        ("decimal53", "9007199254740991"),
        ("offset", "0000000000000000_0000000000000000"),
        ("read-offset", "-1"),
        ("read-offset", "now"),
        ("read-offset", "0000000000000001_0000000000000042"),
        ("timestamp", "2030-01-01T00:00:00Z"),
        ("timestamp", "2030-01-01T00:00:00.123+05:30"),
        ("timestamp", "2024-02-29T23:59:60-08:00"),
        ("token", "producer-1"),
        ("media-type", "application/json"),
        ("media-type", "application/json; charset=utf-8"),
        ("media-type", "APPLICATION/JSON"),
        ("flag", "true"),
        ("flag", "TRUE"),
    ];
    let rejected = [
        ("decimal", "03600"),
        ("decimal", "+3600"),
        ("decimal", "3600.0"),
        ("decimal", "3.6e3"),
        ("decimal", "-1"),
        ("decimal", ""),
        ("decimal", "99999999999999999999999"),
        ("decimal53", "9007199254740992"),
        ("decimal53", "1abc"),
        ("decimal53", "0xyz"),
        ("decimal53", "1e3"),
        ("offset", "0,1"),
        ("offset", "0 1"),
        ("offset", "9999999999999999_999999999999999"),
        ("read-offset", ""),
        ("read-offset", "../"),
        ("read-offset", "\0"),
        ("read-offset", "0000000000000000_000000000000000\n"),
        ("timestamp", "2030-02-30T00:00:00Z"),
        ("timestamp", "2030-01-01 00:00:00Z"),
        ("timestamp", "2030-01-01T00:00:00"),
        ("timestamp", "not a date"),
        ("token", ""),
        ("token", "a b"),
        ("media-type", "json"),
        ("media-type", "/json"),
        ("flag", "yes"),
        ("flag", "1"),
        ("flag", ""),
    ];
    for (name, value) in accepted {
        assert_eq!(codec::accepts(name, value), Some(true), "{name} must accept {value:?}");
        assert!(pattern(name).is_match(value), "{name}'s pattern must match {value:?}");
    }
    for (name, value) in rejected {
        assert_eq!(codec::accepts(name, value), Some(false), "{name} must reject {value:?}");
    }
}

fn check_sound(name: &str, value: &str) -> Result<(), TestCaseError> {
    if codec::accepts(name, value) == Some(true) {
        prop_assert!(pattern(name).is_match(value), "{} accepted {:?} outside its grammar", name, value);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Codecs never accept a value outside their grammar (and never panic).
    #[test]
    fn codecs_accept_only_their_grammar(value in "[ -~\\t\\n\\r\\x00]{0,40}") {
        for (name, _) in codec::CODECS {
            check_sound(name, &value)?;
        }
    }

    /// Grammar-shaped inputs: codecs that mirror their regex exactly accept
    /// every match (timestamp and the decimals are stricter: calendar and range).
    #[test]
    fn exact_codecs_accept_their_whole_grammar(
        digits in "(0|[1-9][0-9]{0,17})",
        offset in "[0-9]{16}_[0-9]{16}",
        token in "[!-~]{1,30}",
        text in "[ -~]{0,30}",
    ) {
        prop_assert_eq!(codec::accepts("decimal", &digits), Some(true));
        prop_assert_eq!(codec::accepts("offset", &offset), Some(true));
        prop_assert_eq!(codec::accepts("read-offset", &offset), Some(true));
        prop_assert_eq!(codec::accepts("token", &token), Some(true));
        prop_assert_eq!(codec::accepts("text", &text), Some(true));
    }
}
