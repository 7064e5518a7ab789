//! Configuration through the real binary: precedence of the layers (`chatd check-config`) and
//! the one-line message of every bad-config case, for `check-config` and for a normal start.

use crate::stderr;
use crate::support::Sandbox;

fn effective(out: &std::process::Output) -> toml::Table {
    assert!(out.status.success(), "check-config failed: {}", stderr(out));
    String::from_utf8_lossy(&out.stdout)
        .parse()
        .expect("check-config prints TOML")
}

#[test]
fn config_precedence_file_then_env_then_flags() {
    let sandbox = Sandbox::new();
    sandbox.write_config(
        "[node]\nlisten = \"127.0.0.1:1001\"\nnickname = \"fromfile\"\n[log]\nfilter = \"warn\"\n",
    );
    let check = || {
        let mut cmd = sandbox.chatd_bare();
        cmd.arg("--config").arg(sandbox.config());
        cmd
    };

    let t = effective(&sandbox.run({
        let mut c = check();
        c.arg("check-config");
        c
    }));
    assert_eq!(t["node"]["listen"].as_str(), Some("127.0.0.1:1001"));
    assert_eq!(t["node"]["nickname"].as_str(), Some("fromfile"));
    assert_eq!(
        t["log"]["filter"].as_str(),
        Some("info"),
        "CHATD_LOG (set by the harness) beats the file"
    );
    let home_data = sandbox.home().join(".local/share/chatd");
    assert_eq!(t["node"]["data_dir"].as_str(), home_data.to_str());
    assert_eq!(
        t["control"]["socket"].as_str(),
        sandbox.default_socket().to_str()
    );

    let t = effective(&sandbox.run({
        let mut c = check();
        c.env("CHATD_NODE__LISTEN", "127.0.0.1:1002")
            .env("CHATD_NODE__BOOTSTRAP", "10.0.0.1:7400,10.0.0.2:7400");
        c.arg("check-config");
        c
    }));
    assert_eq!(
        t["node"]["listen"].as_str(),
        Some("127.0.0.1:1002"),
        "env beats file"
    );
    assert_eq!(t["node"]["nickname"].as_str(), Some("fromfile"));
    assert_eq!(t["node"]["bootstrap"].as_array().map(Vec::len), Some(2));

    let t = effective(&sandbox.run({
        let mut c = check();
        c.env("CHATD_NODE__LISTEN", "127.0.0.1:1002");
        c.args([
            "--listen",
            "127.0.0.1:1003",
            "--nick",
            "fromflag",
            "--bootstrap",
            "10.0.0.9:1",
            "check-config",
        ]);
        c
    }));
    assert_eq!(
        t["node"]["listen"].as_str(),
        Some("127.0.0.1:1003"),
        "flag beats env"
    );
    assert_eq!(t["node"]["nickname"].as_str(), Some("fromflag"));
    assert_eq!(t["node"]["bootstrap"].as_array().map(Vec::len), Some(1));

    // Flags after the subcommand work too.
    let t = effective(&sandbox.run({
        let mut c = check();
        c.args(["check-config", "--listen", "127.0.0.1:1004"]);
        c
    }));
    assert_eq!(t["node"]["listen"].as_str(), Some("127.0.0.1:1004"));
}

/// A bad-config case: config file text, environment, flags, expected message.
type BadConfig<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str], String);

#[test]
fn every_bad_config_names_the_key() {
    let sandbox = Sandbox::new();
    let file = sandbox.config().display().to_string();
    let cases: &[BadConfig] = &[
        ("[node]\nlisten = \"x\"\n", &[], &[], format!("node.listen: invalid socket address \"x\" (expected IP:PORT) (in {file})")),
        ("[node]\nlisten = 7400\n", &[], &[], format!("node.listen: expected a string, got integer 7400 (in {file})")),
        ("[node]\nfoo = 1\n", &[], &[], format!("node.foo: unknown key (in {file})")),
        ("[nodes]\nlisten = \"127.0.0.1:1\"\n", &[], &[], format!("nodes: unknown key (in {file})")),
        ("[node]\nlisten = \n", &[], &[], format!("config file {file}, line 2:")),
        ("", &[("CHATD_NODE__LISTEN", "x")], &[], "node.listen: invalid socket address \"x\" (expected IP:PORT) (from $CHATD_NODE__LISTEN)".into()),
        ("", &[("CHATD_NODE__COLOUR", "red")], &[], "node.colour: unknown key (from $CHATD_NODE__COLOUR)".into()),
        ("", &[], &["--listen", "x"], "node.listen: invalid socket address \"x\" (expected IP:PORT) (from --listen)".into()),
        ("", &[], &["--bootstrap", "nowhere"], "node.bootstrap: invalid address \"nowhere\" (expected IP:PORT, [IPv6]:PORT or HOST:PORT) (from --bootstrap)".into()),
        ("", &[], &["--bootstrap", "bad_name:7400"], "node.bootstrap: invalid address \"bad_name:7400\"".into()),
        ("", &[], &["--nick", "*guest"], "node.nickname: invalid nickname \"*guest\": must not start with '*'".into()),
        ("", &[], &["--nick", &"n".repeat(33)], "node.nickname: invalid nickname".into()),
        ("[log]\nfilter = \"=x=\"\n", &[("CHATD_LOG", "")], &[], "log.filter: invalid filter".into()),
    ];
    for (text, env, args, want) in cases {
        sandbox.write_config(text);
        let mut cmd = sandbox.chatd_bare();
        cmd.arg("--config")
            .arg(sandbox.config())
            .args(*args)
            .arg("check-config");
        for (k, v) in *env {
            cmd.env(k, v);
        }
        let out = sandbox.run(cmd);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(78),
            "{text:?} {env:?} {args:?}: {err}"
        );
        assert!(
            err.starts_with(&format!("chatd: {want}")),
            "want {want:?}, got {err:?}"
        );
        assert_eq!(err.lines().count(), 1, "one line: {err:?}");
        assert!(out.stdout.is_empty());

        // Running the node fails the same way, before touching anything.
        let mut cmd = sandbox.chatd_bare();
        cmd.arg("--config").arg(sandbox.config()).args(*args);
        for (k, v) in *env {
            cmd.env(k, v);
        }
        let out = sandbox.run(cmd);
        assert_eq!(out.status.code(), Some(78), "{text:?}: {}", stderr(&out));
        assert!(
            !sandbox.home().join(".local").exists(),
            "nothing created on a config error"
        );
    }

    let mut cmd = sandbox.chatd_bare();
    cmd.args(["--config", "/nonexistent/chatd.toml", "check-config"]);
    let out = sandbox.run(cmd);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr(&out).starts_with("chatd: config file /nonexistent/chatd.toml: "),
        "{}",
        stderr(&out)
    );
}
