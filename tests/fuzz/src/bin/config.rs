//! Fuzz target: a config file (TOML text), loaded as `chatd` loads `--config PATH`
//! (`chatd::config::Settings::load`: our own TOML check, the `config` crate's layers, then
//! every key's check). A file that loads prints (`check-config`) to one that loads the same.

use chatd::config::{Overrides, Settings};
use chatd::env::Env;

fn main() {
    let dir = std::env::temp_dir().join(format!("chatd-fuzz-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let path = dir.join("chatd.toml");
    let overrides = Overrides {
        config: Some(path.clone()),
        data_dir: Some(dir.join("data")),
        control: Some(dir.join("control.sock")),
        ..Overrides::default()
    };
    let env = Env::from_pairs([("HOME", dir.as_os_str())]);
    loop {
        honggfuzz::fuzz!(|data: &[u8]| {
            if data.len() > 64 * 1024 {
                return;
            }
            std::fs::write(&path, data).expect("write the config file");
            let Ok(settings) = Settings::load(&overrides, &env) else {
                return;
            };
            let printed = settings.to_toml();
            std::fs::write(&path, &printed).expect("write the config file");
            let again = Settings::load(&overrides, &env)
                .unwrap_or_else(|e| panic!("check-config's output does not load: {e}\n{printed}"));
            assert_eq!(again.values(), settings.values(), "{printed}");
        });
    }
}
