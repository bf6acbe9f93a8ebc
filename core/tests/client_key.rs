//! `ClientKey`: one key per address whatever its spelling, one per IPv6 prefix, a pinned
//! encoding, and no panics on any text.

use cellgate::{
    ClientKey, ClientKeyConfig, ClientKeyError, KeyedLimiter, NoClock, PrefixLenError, Quota,
    Refill, Seed, SlotGroup,
};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const DEFAULT: ClientKeyConfig = ClientKeyConfig::DEFAULT;

fn key(text: &str) -> ClientKey {
    ClientKey::parse(text, DEFAULT).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn key_with(text: &str, config: ClientKeyConfig) -> ClientKey {
    ClientKey::parse(text, config).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn err(text: &str) -> ClientKeyError {
    match ClientKey::parse(text, DEFAULT) {
        Ok(k) => panic!("{text:?} parsed to {k}"),
        Err(e) => e,
    }
}

fn config(len: u8) -> ClientKeyConfig {
    ClientKeyConfig::new().with_ipv6_prefix_len(len).unwrap()
}

/// Every spelling of an IPv6 address, as servers and proxies write them.
fn v6_spellings(ip: Ipv6Addr) -> Vec<String> {
    let compressed = ip.to_string();
    let segments = ip.segments();
    let full: Vec<String> = segments.iter().map(|s| format!("{s:04x}")).collect();
    let bare: Vec<String> = segments.iter().map(|s| format!("{s:x}")).collect();
    let upper_full: Vec<String> = segments.iter().map(|s| format!("{s:04X}")).collect();
    let [a, b, c, d] = ip.octets()[12..] else {
        unreachable!()
    };
    let mut out = vec![
        compressed.clone(),
        compressed.to_uppercase(),
        full.join(":"),
        bare.join(":"),
        upper_full.join(":"),
        format!("{}:{a}.{b}.{c}.{d}", bare[..6].join(":")),
        format!("[{compressed}]"),
        format!("[{}]:8080", full.join(":")),
        format!("[{compressed}]:0"),
        format!("[{compressed}]:65535"),
        format!("[{compressed}%eth0]"),
        format!("[{compressed}%25eth0]:443"),
        format!("{compressed}%eth0"),
        format!("{}%3", compressed.to_uppercase()),
        format!("  {compressed}\t\n"),
        format!("\u{a0}[{compressed}]:1\u{3000}"),
    ];
    if !compressed.contains('.') {
        out.push(format!("{}%en0", full.join(":")));
    }
    out
}

fn v4_spellings(ip: Ipv4Addr) -> Vec<String> {
    let s = ip.to_string();
    let [a, b, c, d] = ip.octets();
    let [ab, cd] = [u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])];
    vec![
        s.clone(),
        format!(" {s} "),
        format!("{s}:80"),
        format!("{s}:08080"),
        format!("::ffff:{s}"),
        format!("::FFFF:{s}"),
        format!("::ffff:{ab:x}:{cd:x}"),
        format!("0:0:0:0:0:ffff:{ab:04X}:{cd:04X}"),
        format!("0000:0000:0000:0000:0000:FFFF:{s}"),
        format!("[::ffff:{s}]:443"),
        format!("[::ffff:{s}%eth0]"),
        format!("::ffff:{s}%1"),
    ]
}

#[test]
fn every_spelling_of_an_ipv6_address_is_one_key() {
    for text in [
        "2001:db8::1",
        "fe80::1",
        "::1",
        "::",
        "2001:db8:1:2:3:4:5:6",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "::1.2.3.4",
        "64:ff9b::192.0.2.1",
    ] {
        let ip: Ipv6Addr = text.parse().unwrap();
        for config in [
            DEFAULT,
            ClientKeyConfig::IPV6_64,
            ClientKeyConfig::IPV6_128,
            config(1),
        ] {
            let expected = ClientKey::from_ip(ip, config);
            for spelling in v6_spellings(ip) {
                assert_eq!(key_with(&spelling, config), expected, "{spelling:?}");
            }
        }
    }
}

#[test]
fn every_spelling_of_an_ipv4_address_is_one_key() {
    for ip in [
        Ipv4Addr::new(192, 0, 2, 1),
        Ipv4Addr::new(0, 0, 0, 0),
        Ipv4Addr::new(255, 255, 255, 255),
        Ipv4Addr::new(10, 1, 0, 20),
    ] {
        for config in [DEFAULT, ClientKeyConfig::IPV6_128] {
            let expected = ClientKey::from_ip(ip, config);
            for spelling in v4_spellings(ip) {
                assert_eq!(key_with(&spelling, config), expected, "{spelling:?}");
            }
        }
    }
}

#[test]
fn mapped_ipv4_is_the_ipv4_key() {
    let v4 = Ipv4Addr::new(203, 0, 113, 7);
    let mapped = v4.to_ipv6_mapped();
    for config in [DEFAULT, ClientKeyConfig::IPV6_64, ClientKeyConfig::IPV6_128] {
        assert_eq!(
            ClientKey::from_ip(mapped, config),
            ClientKey::from_ip(v4, config)
        );
        assert_eq!(
            ClientKey::from_ip(IpAddr::V6(mapped), config).as_bytes(),
            [4, 203, 0, 113, 7]
        );
    }
    assert!(ClientKey::from_ip(mapped, DEFAULT).is_ipv4());
}

#[test]
fn compatible_and_translated_ipv4_are_not_mapped() {
    // IPv4-compatible (deprecated): an ordinary IPv6 address in ::/96.
    let compatible = key("::203.0.113.7");
    assert!(!compatible.is_ipv4());
    assert_eq!(compatible, key("::1"));
    assert_eq!(compatible.as_bytes(), [6, 56, 0, 0, 0, 0, 0, 0, 0]);
    assert_ne!(
        key_with("::203.0.113.7", ClientKeyConfig::IPV6_128),
        key_with("203.0.113.7", ClientKeyConfig::IPV6_128)
    );
    // NAT64 and 6to4 are grouped as IPv6.
    assert_eq!(key("64:ff9b::203.0.113.7").to_string(), "64:ff9b::/56");
    assert_eq!(key("2002:cb00:7107::1").to_string(), "2002:cb00:7107::/56");
    // Mapped is exactly ::ffff:0:0/96.
    assert!(!key("::fffe:203.0.113.7").is_ipv4());
    assert!(!key("1::ffff:203.0.113.7").is_ipv4());
}

#[test]
fn one_key_per_56_by_default() {
    let a = key("2001:db8:aa:bb::1");
    for same in [
        "2001:db8:aa:0::",
        "2001:db8:aa:ff:ffff:ffff:ffff:ffff",
        "2001:db8:aa:12:5678::9",
        "2001:db8:aa::",
    ] {
        assert_eq!(key(same), a, "{same}");
    }
    for other in [
        "2001:db8:ab::",
        "2001:db8:a9:ff::",
        "2001:db8:1aa:bb::1",
        "2001:db8:aa:100::",
        "2001:db8:aa:1234::",
        "2001:db9:aa:bb::1",
        "::ffff:32.1.13.184",
    ] {
        assert_ne!(key(other), a, "{other}");
    }
    assert_eq!(a.to_string(), "2001:db8:aa::/56");
    assert_eq!(a.prefix_len(), 56);
    assert_eq!(a.ip(), "2001:db8:aa::".parse::<IpAddr>().unwrap());
}

#[test]
fn a_64_config_splits_a_56() {
    let c = ClientKeyConfig::IPV6_64;
    assert_eq!(c, config(64));
    assert_eq!(c.ipv6_prefix_len(), 64);
    let a = key_with("2001:db8:aa:bb::1", c);
    assert_eq!(a, key_with("2001:db8:aa:bb:ffff:ffff:ffff:ffff", c));
    assert_ne!(a, key_with("2001:db8:aa:bc::1", c));
    assert_eq!(a.to_string(), "2001:db8:aa:bb::/64");
    assert_eq!(
        a.as_bytes(),
        [6, 64, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0xaa, 0x00, 0xbb]
    );
    // A /56 key and a /64 key never collide, even for the same prefix bits.
    assert_ne!(
        key_with("2001:db8:aa00::", c).as_bytes(),
        key("2001:db8:aa00::").as_bytes()
    );
}

#[test]
fn prefix_len_is_validated() {
    assert_eq!(ClientKeyConfig::default(), ClientKeyConfig::DEFAULT);
    assert_eq!(ClientKeyConfig::new().ipv6_prefix_len(), 56);
    assert_eq!(ClientKeyConfig::DEFAULT_IPV6_PREFIX_LEN, 56);
    assert_eq!(ClientKeyConfig::IPV6_128.ipv6_prefix_len(), 128);
    for len in 1..=128 {
        assert_eq!(config(len).ipv6_prefix_len(), len);
    }
    for len in [0, 129, 200, 255] {
        let e: PrefixLenError = ClientKeyConfig::new()
            .with_ipv6_prefix_len(len)
            .unwrap_err();
        assert_eq!(e.prefix_len(), len);
        assert_eq!(
            e.to_string(),
            format!("IPv6 prefix length {len} is not in 1..=128")
        );
    }
}

#[test]
fn encodings_are_pinned() {
    let cases: &[(&str, ClientKeyConfig, &[u8], &str)] = &[
        ("192.0.2.1", DEFAULT, &[4, 192, 0, 2, 1], "192.0.2.1"),
        ("0.0.0.0", DEFAULT, &[4, 0, 0, 0, 0], "0.0.0.0"),
        ("::ffff:192.0.2.1", DEFAULT, &[4, 192, 0, 2, 1], "192.0.2.1"),
        (
            "2001:db8:aa:bb::1",
            DEFAULT,
            &[6, 56, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0xaa, 0x00],
            "2001:db8:aa::/56",
        ),
        (
            "2001:db8:aa:bb::1",
            config(60),
            &[6, 60, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0xaa, 0x00, 0xb0],
            "2001:db8:aa:b0::/60",
        ),
        (
            "2001:db8:aa:bb::1",
            config(57),
            &[6, 57, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0xaa, 0x00, 0x80],
            "2001:db8:aa:80::/57",
        ),
        ("ffff::", config(1), &[6, 1, 0x80], "8000::/1"),
        ("7fff::", config(1), &[6, 1, 0x00], "::/1"),
        ("2001:db8::", config(8), &[6, 8, 0x20], "2000::/8"),
        (
            "2001:db8::1",
            ClientKeyConfig::IPV6_128,
            &[
                6, 128, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
            ],
            "2001:db8::1/128",
        ),
        ("::", DEFAULT, &[6, 56, 0, 0, 0, 0, 0, 0, 0], "::/56"),
    ];
    for &(text, config, bytes, display) in cases {
        let k = key_with(text, config);
        assert_eq!(k.as_bytes(), bytes, "{text}");
        assert_eq!(AsRef::<[u8]>::as_ref(&k), bytes, "{text}");
        assert_eq!(k.to_string(), display, "{text}");
        assert_eq!(format!("{k:?}"), format!("ClientKey({display})"));
        assert!(k.as_bytes().len() <= ClientKey::MAX_LEN);
    }
    assert_eq!(ClientKey::MAX_LEN, 18);
    let k = key("192.0.2.1");
    assert_eq!(k.prefix_len(), 32);
    assert_eq!(format!("[{k:>12}]"), "[   192.0.2.1]");
    assert_eq!(format!("[{:-<20}]", key("::1")), "[::/56---------------]");
}

#[test]
fn keys_share_a_limiter_quota() {
    let limiter: KeyedLimiter<Box<[SlotGroup]>> = KeyedLimiter::with_options(
        Quota::per_second(1).unwrap(),
        Refill::Greedy,
        100,
        Seed::new(1, 2),
        NoClock,
    );
    assert!(
        limiter
            .check_at(key("2001:db8:aa:1::1"), 0, 1)
            .unwrap()
            .allowed
    );
    assert!(
        !limiter
            .check_at(key("[2001:db8:aa:2::9]:80"), 0, 1)
            .unwrap()
            .allowed
    );
    assert!(
        limiter
            .check_at(key("2001:db8:ab::1"), 0, 1)
            .unwrap()
            .allowed
    );
    assert!(limiter.check_at(key("192.0.2.1"), 0, 1).unwrap().allowed);
    assert!(
        !limiter
            .check_at(key("::ffff:192.0.2.1"), 0, 1)
            .unwrap()
            .allowed
    );
}

#[test]
fn invalid_inputs_are_typed_errors() {
    use ClientKeyError::*;
    let cases: &[(&str, ClientKeyError)] = &[
        ("", Empty),
        ("   \t\n", Empty),
        ("\u{3000}", Empty),
        ("x", Invalid { offset: 0 }),
        ("  1.2.3.x", Invalid { offset: 8 }),
        ("1.2.3", Invalid { offset: 0 }),
        ("127.1", Invalid { offset: 0 }),
        ("1.2.3.256", Invalid { offset: 0 }),
        ("010.0.0.1", Invalid { offset: 0 }),
        ("1.2.3.4.5", Invalid { offset: 0 }),
        ("1.2.3.4 5", Invalid { offset: 7 }),
        ("1.2.3.4, 5.6.7.8", Invalid { offset: 7 }),
        ("2001:db8::/56", Invalid { offset: 10 }),
        ("2001:db8:aa00::/56", Invalid { offset: 15 }),
        ("1::2::3", Invalid { offset: 0 }),
        ("1:2:3:4:5:6:7:8:9", Invalid { offset: 0 }),
        ("12345::", Invalid { offset: 0 }),
        (":::", Invalid { offset: 0 }),
        ("g::1", Invalid { offset: 0 }),
        ("[]", Invalid { offset: 1 }),
        ("[1.2.3.4]", Invalid { offset: 1 }),
        ("[1.2.3.4]:80", Invalid { offset: 1 }),
        (" [::1", UnclosedBracket { offset: 1 }),
        ("[", UnclosedBracket { offset: 0 }),
        ("[::1]x", TrailingInput { offset: 5 }),
        ("[::1][::1]", TrailingInput { offset: 5 }),
        ("[::1]:", InvalidPort { offset: 5 }),
        ("[::1]:65536", InvalidPort { offset: 5 }),
        ("[::1]:-1", InvalidPort { offset: 5 }),
        ("[::1]:+80", InvalidPort { offset: 5 }),
        ("[::1]:123456", InvalidPort { offset: 5 }),
        ("[::1]:8080:1", InvalidPort { offset: 5 }),
        ("1.2.3.4:", InvalidPort { offset: 7 }),
        ("1.2.3.4:http", InvalidPort { offset: 7 }),
        ("1.2.3.4:99999", InvalidPort { offset: 7 }),
        (":80", Invalid { offset: 0 }),
        ("fe80::1%", InvalidZone { offset: 7 }),
        ("fe80::1%eth 0", InvalidZone { offset: 7 }),
        ("[fe80::1%]", InvalidZone { offset: 8 }),
        ("[fe80::1%eth0%1]", InvalidZone { offset: 8 }),
        ("fe80::1%eth0:80", InvalidZone { offset: 7 }),
        ("%eth0", Invalid { offset: 0 }),
        ("1.2.3.4%eth0", TrailingInput { offset: 7 }),
        ("[1.2.3.4%eth0]", TrailingInput { offset: 8 }),
        ("::1]", Invalid { offset: 3 }),
        ("１.2.3.4", Invalid { offset: 0 }),
        ("1.2.3.4é", Invalid { offset: 7 }),
    ];
    for &(text, expected) in cases {
        let e = err(text);
        assert_eq!(e, expected, "{text:?}");
        match e.offset() {
            None => assert_eq!(e, Empty),
            Some(offset) => {
                assert!(
                    offset < text.len() && text.is_char_boundary(offset),
                    "{text:?}"
                );
            }
        }
        assert!(!e.to_string().is_empty());
    }
    assert_eq!(key("::1 "), key("::1"));
}

/// Checks the documented guarantees of a parse result for any text.
fn check_any(text: &str) {
    match ClientKey::parse(text, DEFAULT) {
        Ok(k) => {
            assert!(k.as_bytes().len() <= ClientKey::MAX_LEN);
            let _ = k.to_string();
        }
        Err(e) => {
            if let Some(offset) = e.offset() {
                assert!(offset < text.len(), "{text:?}: {e:?}");
                assert!(text.is_char_boundary(offset), "{text:?}: {e:?}");
            } else {
                assert!(text.trim().is_empty(), "{text:?}: {e:?}");
            }
        }
    }
}

fn any_v6() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        any::<u128>().prop_map(Ipv6Addr::from_bits),
        any::<u32>().prop_map(|v| Ipv4Addr::from_bits(v).to_ipv6_mapped()),
        // Few nonzero groups, to exercise `::` compression.
        (any::<[u16; 8]>(), any::<u8>()).prop_map(|(mut segments, zeros)| {
            for (i, s) in segments.iter_mut().enumerate() {
                if zeros & (1 << i) != 0 {
                    *s = 0;
                }
            }
            Ipv6Addr::from(segments)
        }),
    ]
}

fn expected_bytes(ip: Ipv6Addr, len: u8) -> Vec<u8> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        let mut out = vec![4];
        out.extend(v4.octets());
        return out;
    }
    let mut out = vec![6, len];
    let bits = ip.to_bits();
    let masked = if len == 128 {
        bits
    } else {
        bits & !(u128::MAX >> len)
    };
    out.extend(&masked.to_be_bytes()[..usize::from(len).div_ceil(8)]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        check_any(&text);
    }

    #[test]
    fn address_like_strings_never_panic(text in "[ 0-9a-fA-F:.%\\[\\]gx/é]{0,48}") {
        check_any(&text);
    }

    #[test]
    fn ipv6_text_and_value_agree(ip in any_v6(), len in 1u8..=128) {
        let config = config(len);
        let k = ClientKey::from_ip(ip, config);
        prop_assert_eq!(ClientKey::parse(&ip.to_string(), config), Ok(k));
        prop_assert_eq!(ClientKey::from_ip(IpAddr::V6(ip), config), k);
        let expected = expected_bytes(ip, len);
        prop_assert_eq!(k.as_bytes(), expected.as_slice());
        for spelling in v6_spellings(ip) {
            prop_assert_eq!(ClientKey::parse(&spelling, config), Ok(k), "{:?}", spelling);
        }
        // The text form is the key's address and prefix length, and that address's key is k.
        let shown = k.to_string();
        if k.is_ipv4() {
            prop_assert_eq!(shown.parse::<IpAddr>().ok(), Some(k.ip()));
        } else {
            let (address, prefix) = shown.split_once('/').unwrap();
            prop_assert_eq!(prefix.parse::<u8>().ok(), Some(len));
            prop_assert_eq!(address.parse::<IpAddr>().ok(), Some(k.ip()));
            prop_assert_eq!(k.prefix_len(), len);
        }
        prop_assert_eq!(ClientKey::from_ip(k.ip(), config), k);
    }

    #[test]
    fn ipv4_text_and_value_agree(bits in any::<u32>()) {
        let ip = Ipv4Addr::from_bits(bits);
        let k = ClientKey::from_ip(ip, DEFAULT);
        let mut expected = vec![4];
        expected.extend(ip.octets());
        prop_assert_eq!(k.as_bytes(), expected.as_slice());
        prop_assert_eq!(ClientKey::parse(&ip.to_string(), DEFAULT), Ok(k));
        prop_assert_eq!(ClientKey::from_ip(ip.to_ipv6_mapped(), DEFAULT), k);
        prop_assert_eq!(k.to_string(), ip.to_string());
        prop_assert_eq!(k.ip(), IpAddr::V4(ip));
        for spelling in v4_spellings(ip) {
            prop_assert_eq!(ClientKey::parse(&spelling, DEFAULT), Ok(k), "{:?}", spelling);
        }
    }

    #[test]
    fn same_prefix_same_key(a in any::<u128>(), b in any::<u128>(), len in 1u8..=128) {
        let config = config(len);
        let shift = 128 - u32::from(len);
        let same_prefix = a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0);
        let (ka, kb) = (
            ClientKey::from_ip(Ipv6Addr::from_bits(a), config),
            ClientKey::from_ip(Ipv6Addr::from_bits(b), config),
        );
        let mapped = |x: u128| Ipv6Addr::from_bits(x).to_ipv4_mapped().is_some();
        if !mapped(a) && !mapped(b) {
            prop_assert_eq!(ka == kb, same_prefix);
        }
        // Share the prefix and check again.
        let b2 = if len == 128 { a } else { (a & !(u128::MAX >> len)) | (b & (u128::MAX >> len)) };
        if !mapped(a) && !mapped(b2) {
            prop_assert_eq!(ClientKey::from_ip(Ipv6Addr::from_bits(b2), config), ka);
        }
    }
}
