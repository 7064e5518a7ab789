//! Unit tests for [`super`]: layering, every error message, and the sample config.

use super::*;
use std::io::Write;

pub(super) fn home_env(extra: &[(&str, &str)]) -> Env {
    let mut pairs = vec![("HOME", "/home/test"), ("XDG_RUNTIME_DIR", "/run/user/1")];
    pairs.extend_from_slice(extra);
    Env::from_pairs(pairs)
}

pub(super) fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

pub(super) fn with_file(f: &tempfile::NamedTempFile) -> Overrides {
    Overrides {
        config: Some(f.path().to_owned()),
        ..Overrides::default()
    }
}

pub(super) fn err(overrides: &Overrides, env: &Env) -> String {
    match Settings::load(overrides, env) {
        Ok(s) => panic!("expected an error, got {s:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults_need_no_file_and_no_root() {
    let f = file("");
    let s = Settings::load(&with_file(&f), &home_env(&[])).expect("loads");
    assert_eq!(s.listen, DEFAULT_LISTEN);
    assert!(s.bootstrap.is_empty());
    assert_eq!(s.data_dir, Path::new("/home/test/.local/share/chatd"));
    assert_eq!(
        s.control_socket,
        Path::new("/run/user/1/chatd/control.sock")
    );
    assert_eq!(s.nickname, None);
    assert_eq!(s.log_filter, "info");
}

#[test]
fn file_then_env_then_flags() {
    let f =
        file("[node]\nlisten = \"127.0.0.1:1\"\nnickname = \"file\"\n[log]\nfilter = \"warn\"\n");
    let mut ov = with_file(&f);
    let s = Settings::load(&ov, &home_env(&[])).expect("file");
    assert_eq!(
        (s.listen.port(), s.nickname.as_ref().map(|n| n.to_string())),
        (1, Some("file".into()))
    );

    let env = home_env(&[
        ("CHATD_NODE__LISTEN", "127.0.0.1:2"),
        ("CHATD_LOG", "debug"),
    ]);
    let s = Settings::load(&ov, &env).expect("env");
    assert_eq!(s.listen.port(), 2);
    assert_eq!(
        s.nickname.as_ref().map(|n| n.as_str()),
        Some("file"),
        "untouched keys keep the file's value"
    );
    assert_eq!(s.log_filter, "debug", "CHATD_LOG is CHATD_LOG__FILTER");

    ov.listen = Some("127.0.0.1:3".into());
    ov.nick = Some("flag".into());
    let s = Settings::load(&ov, &env).expect("flags");
    assert_eq!(s.listen.port(), 3);
    assert_eq!(s.nickname.map(|n| n.to_string()), Some("flag".into()));
}

#[test]
fn bootstrap_from_file_env_and_flags() {
    let f = file("[node]\nbootstrap = [\"10.0.0.1:7400\", \"[::1]:7401\"]\n");
    let s = Settings::load(&with_file(&f), &home_env(&[])).expect("file");
    assert_eq!(s.bootstrap.len(), 2);
    let env = home_env(&[("CHATD_NODE__BOOTSTRAP", "10.0.0.2:1, 10.0.0.3:2")]);
    let s = Settings::load(&with_file(&f), &env).expect("env");
    assert_eq!(
        s.bootstrap,
        vec!["10.0.0.2:1".parse().unwrap(), "10.0.0.3:2".parse().unwrap()]
    );
    let ov = Overrides {
        bootstrap: vec!["10.0.0.4:4".into()],
        ..with_file(&f)
    };
    let s = Settings::load(&ov, &env).expect("flags");
    assert_eq!(s.bootstrap, vec!["10.0.0.4:4".parse().unwrap()]);
}

#[test]
fn every_bad_input_names_key_and_origin() {
    let path = |f: &tempfile::NamedTempFile| f.path().display().to_string();
    let unknown = file("[node]\nlisten = \"0.0.0.0:1\"\nlsten = \"x\"\n");
    assert_eq!(
        err(&with_file(&unknown), &home_env(&[])),
        format!("node.lsten: unknown key (in {})", path(&unknown))
    );
    let section = file("[nodes]\n");
    assert_eq!(
        err(&with_file(&section), &home_env(&[])),
        format!("nodes: unknown key (in {})", path(&section))
    );
    let bad = file("[node]\nlisten = \"x\"\n");
    assert_eq!(
        err(&with_file(&bad), &home_env(&[])),
        format!(
            "node.listen: invalid socket address \"x\" (expected IP:PORT) (in {})",
            path(&bad)
        )
    );
    let typed = file("[node]\nlisten = 7400\n");
    assert_eq!(
        err(&with_file(&typed), &home_env(&[])),
        format!(
            "node.listen: expected a string, got integer 7400 (in {})",
            path(&typed)
        )
    );
    let syntax = file("[node]\nlisten = \n");
    let e = err(&with_file(&syntax), &home_env(&[]));
    assert!(
        e.starts_with(&format!("config file {}, line 2: ", path(&syntax))),
        "{e}"
    );
    assert!(!e.contains('\n'));

    let empty = file("");
    let ov = with_file(&empty);
    let cases = [
        (
            ("CHATD_NODE__LISTEN", "nope"),
            "node.listen: invalid socket address \"nope\" (expected IP:PORT) (from $CHATD_NODE__LISTEN)",
        ),
        (
            ("CHATD_NODE_LISTEN", "1.2.3.4:5"),
            "node_listen: unknown key (from $CHATD_NODE_LISTEN)",
        ),
        (
            ("CHATD_NODE__BOOTSTRAP", "1.2.3.4:5,bad"),
            "node.bootstrap: invalid address \"bad\" (expected IP:PORT, [IPv6]:PORT or HOST:PORT) (from $CHATD_NODE__BOOTSTRAP)",
        ),
        (
            ("CHATD_NODE__NICKNAME", "*guest"),
            "node.nickname: invalid nickname \"*guest\": must not start with '*' (reserved for guests of other nodes) (from $CHATD_NODE__NICKNAME)",
        ),
        (("CHATD_LOG", "info,=x=y"), "log.filter: invalid filter"),
    ];
    for ((name, value), want) in cases {
        let e = err(&ov, &home_env(&[(name, value)]));
        assert!(
            e.starts_with(want),
            "{name}={value}: got {e:?}, want {want:?}"
        );
    }

    let flag = |ov: Overrides| err(&ov, &home_env(&[]));
    assert_eq!(
        flag(Overrides {
            listen: Some("x".into()),
            ..with_file(&empty)
        }),
        "node.listen: invalid socket address \"x\" (expected IP:PORT) (from --listen)"
    );
    assert_eq!(
        flag(Overrides {
            nick: Some("a b".into()),
            ..with_file(&empty)
        }),
        "node.nickname: invalid nickname \"a b\": contains ' '; allowed are letters, digits, '_', '-' and '.' (from --nick)"
    );
    assert_eq!(
        flag(Overrides {
            bootstrap: vec!["1.2.3.4".into()],
            ..with_file(&empty)
        }),
        "node.bootstrap: invalid address \"1.2.3.4\" (expected IP:PORT, [IPv6]:PORT or HOST:PORT) (from --bootstrap)"
    );
    let missing = Overrides {
        config: Some("/nonexistent/chatd.toml".into()),
        ..Overrides::default()
    };
    assert!(err(&missing, &home_env(&[])).starts_with("config file /nonexistent/chatd.toml: "));
    assert_eq!(
        err(&with_file(&empty), &Env::default()),
        paths::PathError::NoDataDir.to_string(),
        "no HOME and no --data-dir"
    );
}

#[test]
fn effective_config_round_trips() {
    let f = file(
        "[node]\nlisten = \"127.0.0.1:9\"\nbootstrap = [\"10.0.0.1:1\"]\nnickname = \"zed\"\n",
    );
    let s = Settings::load(&with_file(&f), &home_env(&[])).expect("loads");
    let printed = file(&s.to_toml());
    let again =
        Settings::load(&with_file(&printed), &Env::default()).expect("printed config loads");
    assert_eq!(again.to_toml(), s.to_toml());
    let table: toml::Table = s.to_toml().parse().expect("valid TOML");
    for key in KEYS.iter().map(|k| k.name) {
        let (section, name) = key.split_once('.').expect("section.name");
        assert!(
            table[section].get(name).is_some(),
            "check-config prints {key}"
        );
    }
}

/// The sample config; `config::generate`'s test keeps `deploy/chatd.toml` equal to it.
fn sample_text() -> String {
    super::sample()
}

#[test]
fn sample_config_loads_and_lists_every_key() {
    let sample = sample_text();
    let f = file(&sample);
    let s = Settings::load(&with_file(&f), &home_env(&[])).expect("sample loads as is");
    assert_eq!(s.listen, DEFAULT_LISTEN, "sample shows the defaults");
    assert_eq!(s.log_filter, DEFAULT_LOG_FILTER);
    // Uncomment `# key = value` lines: the result must still load and set every key.
    let uncommented: String = sample
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest
                    .split_once(" = ")
                    .is_some_and(|(k, _)| !k.contains(' ')) =>
            {
                rest
            }
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let table: toml::Table = uncommented.parse().expect("uncommented sample is TOML");
    for key in KEYS.iter().map(|k| k.name) {
        let (section, name) = key.split_once('.').expect("section.name");
        assert!(
            table.get(section).and_then(|t| t.get(name)).is_some(),
            "deploy/chatd.toml lists {key}"
        );
    }
    Settings::load(&with_file(&file(&uncommented)), &home_env(&[]))
        .expect("uncommented sample loads");
}

#[test]
fn ring_and_transport_keys_are_checked() {
    let f = file(
        "[ring]\nstabilize_ms = 150\nrpc_timeout_ms = 300\norigin_rate = 500\n[transport]\nmax_connections = 64\n",
    );
    let s = Settings::load(&with_file(&f), &home_env(&[])).expect("loads");
    assert_eq!(s.ring.stabilize_ms, 150);
    assert_eq!(s.ring.rpc_timeout_ms, 300);
    assert_eq!(
        s.ring.check_predecessor_ms,
        RingSettings::default().check_predecessor_ms
    );
    assert_eq!(s.max_connections, 64);
    assert_eq!(s.ring.origin_rate, 500);
    let env = home_env(&[("CHATD_RING__FIX_FINGERS_MS", "250")]);
    let s = Settings::load(&with_file(&file("")), &env).expect("env");
    assert_eq!(s.ring.fix_fingers_ms, 250);
    let env = home_env(&[("CHATD_RING__REPLY_DELAY_MS", "0")]);
    let s = Settings::load(&with_file(&file("")), &env).expect("env");
    assert_eq!(s.ring.reply_delay_ms, 0);
    for (text, want) in [
        (
            "[ring]\nstabilize_ms = 0\n",
            "ring.stabilize_ms: integer 0 is out of range (expected 10..=600000)",
        ),
        (
            "[ring]\nrpc_timeout_ms = \"x\"\n",
            "ring.rpc_timeout_ms: string \"x\" is out of range",
        ),
        ("[ring]\nstabilize = 5\n", "ring.stabilize: unknown key"),
        (
            "[ring]\norigin_rate = 0\n",
            "ring.origin_rate: integer 0 is out of range",
        ),
        (
            "[ring]\norigin_burst = 2000000\n",
            "ring.origin_burst: integer 2000000 is out of range",
        ),
        (
            "[ring]\nreply_delay_ms = 101\n",
            "ring.reply_delay_ms: integer 101 is out of range (expected 0..=100)",
        ),
        (
            "[ring]\nreply_delay_ms = -1\n",
            "ring.reply_delay_ms: integer -1 is out of range",
        ),
        (
            "[transport]\nmax_connections = 1\n",
            "transport.max_connections: integer 1 is out of range",
        ),
        (
            "[transport]\nmax_connections = -3\n",
            "transport.max_connections: integer -3 is out of range",
        ),
        (
            "[transport]\nmax_connections = 1.5\n",
            "transport.max_connections: expected a whole number",
        ),
    ] {
        let got = err(&with_file(&file(text)), &home_env(&[]));
        assert!(got.starts_with(want), "{text:?}: {got}");
    }
}

#[test]
fn control_and_chat_keys_are_checked_by_name() {
    let cases = [
        (
            "[control]\nsend_rate = -1\n",
            "control.send_rate: expected a number",
        ),
        (
            "[control]\nsend_burst = 0\n",
            "control.send_burst: expected a whole number",
        ),
        (
            "[control]\ngroup = \"no-such-group-x\"\n",
            "control.group: no such group",
        ),
        (
            "[control]\ntcp_listen = \"nope\"\n",
            "control.tcp_listen: invalid socket address",
        ),
        (
            "[control]\ntcp_listen = \"127.0.0.1:1\"\n",
            "control.token_file: must be set",
        ),
        (
            "[control]\ntoken_file = \"/nonexistent/token\"\n",
            "control.token_file: cannot read",
        ),
        (
            "[chat]\nretention_messages = 0\n",
            "chat.retention_messages: expected a whole number",
        ),
        (
            "[chat]\nsubscriber_queue = \"x\"\n",
            "chat.subscriber_queue: expected a whole number",
        ),
        (
            "[chat]\ncommit_delay_ms = 10001\n",
            "chat.commit_delay_ms: expected a whole number",
        ),
        ("[chat]\ncolour = 1\n", "chat.colour: unknown key"),
    ];
    for (text, want) in cases {
        let f = file(text);
        let got = err(&with_file(&f), &home_env(&[]));
        assert!(
            got.starts_with(want),
            "{text:?}: want {want:?}, got {got:?}"
        );
    }
    let env = home_env(&[
        ("CHATD_CHAT__SUBSCRIBER_QUEUE", "16"),
        ("CHATD_CONTROL__GROUP", "0"),
    ]);
    let s = Settings::load(&with_file(&file("")), &env).expect("env values");
    assert_eq!(s.chat.subscriber_queue, 16);
    assert_eq!(s.access.group, Some(("0".to_owned(), 0)));
    assert_eq!(s.chat.commit_delay, super::DEFAULT_COMMIT_DELAY);
    let env = home_env(&[("CHATD_CHAT__COMMIT_DELAY_MS", "0")]);
    let s = Settings::load(&with_file(&file("")), &env).expect("zero commits each message");
    assert!(s.chat.commit_delay.is_zero());
}

#[test]
fn the_sample_config_shows_every_default() {
    let sample = Settings::load(&with_file(&file(&sample_text())), &home_env(&[])).expect("loads");
    let defaults = Settings::load(&with_file(&file("")), &home_env(&[])).expect("loads");
    assert_eq!(sample.values(), defaults.values());
    assert_eq!(sample.values().len(), KEYS.len());
}

#[test]
fn web_listen_defaults_to_loopback_can_be_turned_off_and_is_checked() {
    let f = file("");
    let s = Settings::load(&with_file(&f), &home_env(&[])).expect("loads");
    assert_eq!(s.web, Web::default());
    assert_eq!(s.web.listen, Some(DEFAULT_WEB_LISTEN));
    assert!(!s.web.explicit);

    // `--web ""` (or `listen = ""`) turns it off; a given address is explicit.
    let mut ov = with_file(&f);
    ov.web = Some(String::new());
    let s = Settings::load(&ov, &home_env(&[])).expect("off");
    assert_eq!(s.web.listen, None);
    let f2 = file("[web]\nlisten = \"127.0.0.1:9999\"\n");
    let s = Settings::load(&with_file(&f2), &home_env(&[])).expect("given");
    assert_eq!(s.web.listen, Some("127.0.0.1:9999".parse().expect("addr")));
    assert!(s.web.explicit);

    ov.web = Some("nonsense".into());
    let e = err(&ov, &home_env(&[]));
    assert!(
        e.contains("web.listen") && e.contains("(from --web)"),
        "{e}"
    );
    // Off loopback only with the bearer token.
    ov.web = Some("0.0.0.0:7480".into());
    let e = err(&ov, &home_env(&[]));
    assert!(
        e.contains("web.listen") && e.contains("control.token_file"),
        "{e}"
    );
    let f3 = file("[web]\nlisten = \"127.0.0.1:1\"\ncolour = 1\n");
    assert!(err(&with_file(&f3), &home_env(&[])).contains("web.colour"));
}

#[test]
fn retention_days_is_off_by_default_and_bounded() {
    let f = file("");
    let s = Settings::load(&with_file(&f), &home_env(&[])).expect("loads");
    assert!(s.chat.retention_age.is_zero());
    let f = file("[chat]\nretention_days = 30\n");
    let s = Settings::load(&with_file(&f), &home_env(&[])).expect("loads");
    assert_eq!(
        s.chat.retention_age,
        std::time::Duration::from_secs(30 * 86_400)
    );
    let f = file("[chat]\nretention_days = 0.5\n");
    let s = Settings::load(&with_file(&f), &home_env(&[])).expect("loads");
    assert_eq!(s.chat.retention_age, std::time::Duration::from_secs(43_200));
    let f = file("[chat]\nretention_days = 36501\n");
    assert!(err(&with_file(&f), &home_env(&[])).contains("chat.retention_days"));
}

#[test]
fn irc_listen_defaults_to_loopback_can_be_turned_off_and_refuses_other_addresses() {
    let f = file("");
    let s = Settings::load(&with_file(&f), &home_env(&[])).expect("loads");
    assert_eq!(s.irc, Irc::default());
    assert_eq!(s.irc.listen, Some(DEFAULT_IRC_LISTEN));
    assert!(!s.irc.explicit);
    let off = file("[irc]\nlisten = \"\"\n");
    let s = Settings::load(&with_file(&off), &home_env(&[])).expect("off");
    assert_eq!(s.irc.listen, None);
    let given = file("[irc]\nlisten = \"127.0.0.1:7000\"\n");
    let s = Settings::load(&with_file(&given), &home_env(&[])).expect("given");
    assert_eq!(s.irc.listen, Some("127.0.0.1:7000".parse().expect("addr")));
    assert!(s.irc.explicit);
    let open = file("[irc]\nlisten = \"0.0.0.0:6667\"\n");
    let e = err(&with_file(&open), &home_env(&[]));
    assert!(
        e.contains("irc.listen") && e.contains("irc.tls_cert"),
        "{e}"
    );
    // With TLS a non-loopback address is allowed; the two files go together.
    let tls = file(
        "[irc]\nlisten = \"0.0.0.0:6697\"\ntls_cert = \"/etc/c.pem\"\ntls_key = \"/etc/k.pem\"\n",
    );
    let s = Settings::load(&with_file(&tls), &home_env(&[])).expect("tls");
    assert_eq!(
        s.irc.tls(),
        Some((Path::new("/etc/c.pem"), Path::new("/etc/k.pem")))
    );
    let half = file("[irc]\ntls_cert = \"/etc/c.pem\"\n");
    let e = err(&with_file(&half), &home_env(&[]));
    assert!(e.contains("go together"), "{e}");
}

#[test]
fn irc_guests_are_off_by_default_and_the_server_name_is_checked() {
    let s = Settings::load(&with_file(&file("")), &home_env(&[])).expect("loads");
    assert!(!s.irc.guests);
    assert_eq!(s.irc.server_name, "chatd");
    let on = file("[irc]\nguests = true\nserver_name = \"My.Little.Server\"\n");
    let s = Settings::load(&with_file(&on), &home_env(&[])).expect("on");
    assert!(s.irc.guests);
    assert_eq!(s.irc.server_name, "My.Little.Server");
    for bad in ["", "a b", "-x", "x:y"] {
        let f = file(&format!("[irc]\nserver_name = \"{bad}\"\n"));
        assert!(
            err(&with_file(&f), &home_env(&[])).contains("irc.server_name"),
            "{bad:?}"
        );
    }
}

#[test]
fn files_keys_default_and_bound() {
    let s = Settings::load(&Overrides::default(), &home_env(&[])).expect("loads");
    assert_eq!(s.files.store().max_file_bytes, 100 << 20);
    assert_eq!(s.files.store().quota_bytes, 2048 << 20);
    assert_eq!((s.files.auto_fetch_kb, s.files.offline_max_mb), (1024, 25));
    let f = file("[files]\nmax_file_mb = 500\nstore_mb = 100\n");
    let err = Settings::load(&with_file(&f), &home_env(&[])).expect_err("store too small");
    assert!(err.to_string().contains("files.store_mb"), "{err}");
    let f = file("[files]\nmax_file_mb = 0\n");
    let err = Settings::load(&with_file(&f), &home_env(&[])).expect_err("out of range");
    assert!(err.to_string().contains("files.max_file_mb"), "{err}");
}
