use super::*;

fn flags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn file_with(text: &str) -> (tempdir::Dir, PathBuf) {
    let dir = tempdir::Dir::new();
    let path = dir.0.join("synqc.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// A scratch directory removed on drop (std only; no tempfile crate).
mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Dir {
            let p = std::env::temp_dir().join(format!(
                "synqc-cfg-{}-{}",
                std::process::id(),
                rand::random::<u64>()
            ));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn keys_table_matches_the_struct() {
    let json = serde_json::to_value(Config::default()).unwrap();
    let mut fields: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    fields.retain(|f| *f != "noise" && *f != "executors");
    fields.sort();
    let mut keys: Vec<&str> = KEYS.iter().map(|(k, _, _)| *k).collect();
    keys.sort();
    assert_eq!(fields, keys);
}

#[test]
fn flags_beat_env_beat_file_beat_defaults() {
    let (_d, path) = file_with("workers = 3\nlisten = \"127.0.0.1:9100\"\nmax_pending = 7\n");
    let sources = Sources {
        file: Some(path),
        env: flags(&[("SYNQC_WORKERS", "5"), ("SYNQC_LISTEN", "127.0.0.1:9200")]),
        flags: flags(&[("listen", "127.0.0.1:9300")]),
    };
    let c = Config::load(&sources).unwrap().config;
    assert_eq!(c.listen.to_string(), "127.0.0.1:9300");
    assert_eq!(c.workers, 5);
    assert_eq!(c.max_pending, 7);
    assert_eq!(c.lease_seconds, Duration::from_secs(30));
}

#[test]
fn unknown_keys_are_refused_by_name() {
    let (_d, path) = file_with("wokers = 3\n");
    let err = Config::load(&Sources {
        file: Some(path),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.contains("wokers"), "{err}");
    let err = Config::load(&Sources {
        flags: flags(&[("lisen", "x")]),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.contains("--lisen"), "{err}");
    let loaded = Config::load(&Sources {
        env: flags(&[("SYNQC_BIN", "/x")]),
        ..Default::default()
    })
    .unwrap();
    assert!(loaded.warnings[0].contains("SYNQC_BIN"));
}

#[test]
fn bad_values_are_refused_with_the_key() {
    for (k, v, expect) in [
        ("workers", "many", "--workers"),
        ("session-budget-ttl-seconds", "59", "at least 60"),
        ("listen", "nowhere", "listen"),
        ("log-format", "xml", "log_format"),
        ("allow-provider-simulation", "maybe", "true or false"),
        ("env", " ", "env: "),
    ] {
        let err = Config::load(&Sources {
            flags: flags(&[(k, v)]),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.contains(expect), "{k}={v}: {err}");
    }
}

#[test]
fn noise_overrides_apply_and_are_checked() {
    let (_d, path) = file_with("[noise.ibm_quantum]\nt1_us = 300.0\n");
    let c = Config::load(&Sources {
        file: Some(path),
        ..Default::default()
    })
    .unwrap()
    .config;
    let base = NoiseProfile::builtin("ibm_quantum").unwrap();
    assert_eq!(c.noise["ibm_quantum"].apply(&base).t1_us, 300.0);
    let (_d, path) = file_with("[noise.nowhere]\nt1_us = 3.0\n");
    assert!(Config::load(&Sources {
        file: Some(path),
        ..Default::default()
    })
    .unwrap_err()
    .contains("nowhere"));
    let (_d, path) = file_with("[noise.sim_local]\np1q = 2.0\n");
    assert!(Config::load(&Sources {
        file: Some(path),
        ..Default::default()
    })
    .unwrap_err()
    .contains("p1q"));
}

#[test]
fn list_settings_split_on_commas() {
    let sources = Sources {
        env: flags(&[("SYNQC_CORS_ALLOW_ORIGINS", "http://a, http://b")]),
        ..Default::default()
    };
    assert_eq!(
        Config::load(&sources).unwrap().config.cors_allow_origins,
        ["http://a", "http://b"]
    );
}

#[test]
fn credentials_need_explicit_origins() {
    let load = |origins: &str, credentials: &str| {
        Config::load(&Sources {
            flags: flags(&[
                ("cors-allow-origins", origins),
                ("cors-allow-credentials", credentials),
            ]),
            ..Default::default()
        })
    };
    let err = load("http://a,*", "true").unwrap_err();
    assert!(
        err.contains("cors_allow_credentials") && err.contains("instead of *"),
        "{err}"
    );
    assert!(load("http://a,*", "false").is_ok());
    let c = load("http://a", "true").unwrap().config;
    assert!(c.cors_allow_credentials);
    assert_eq!(c.env, "production");
}
