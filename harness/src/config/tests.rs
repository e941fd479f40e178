//! Tests of config loading, seed lists and value bounds.

use super::*;

#[test]
fn seeds_parse_ranges_and_lists() {
    assert_eq!(parse_seeds("1..4"), Ok(vec![1, 2, 3]));
    assert_eq!(parse_seeds("1..=3"), Ok(vec![1, 2, 3]));
    assert_eq!(parse_seeds("7, 9"), Ok(vec![7, 9]));
    assert!(parse_seeds("x..3").is_err());
    assert!(parse_seeds("5..5").is_err());
}

#[test]
fn unknown_keys_are_rejected_with_their_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("c.yaml");
    std::fs::write(&p, "filesystem: ext4\nseedz: 1..3\n").expect("write");
    let err = CampaignConfig::load(&p).expect_err("unknown key");
    let msg = err.to_string();
    assert!(msg.contains("seedz") && msg.contains("c.yaml"), "{msg}");
}

#[test]
fn wrong_types_name_the_field_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("c.yaml");
    std::fs::write(&p, "filesystem: ext4\npmem_mib: lots\n").expect("write");
    let msg = CampaignConfig::load(&p).expect_err("bad type").to_string();
    assert!(msg.contains("pmem_mib") && msg.contains("line 2"), "{msg}");
}

#[test]
fn bad_budgets_and_suppressions_name_the_field() {
    let cfg = CampaignConfig {
        time_budget: Some("8 hours".into()),
        ..CampaignConfig::default()
    };
    assert!(cfg
        .validate("n.yaml")
        .expect_err("budget")
        .to_string()
        .contains("`time_budget`"));
    let cfg = CampaignConfig {
        suppressions: vec!["(".into()],
        ..CampaignConfig::default()
    };
    assert!(cfg
        .validate("n.yaml")
        .expect_err("regex")
        .to_string()
        .contains("`suppressions`"));
}

#[test]
fn automatic_parallelism_is_at_least_one_each() {
    let (w, c) = CampaignConfig::default().parallelism();
    assert!(w >= 1 && c >= 1);
}

#[test]
fn auto_starts_with_one_vm_of_each_auto_kind_and_keeps_fixed_counts() {
    let cfg = CampaignConfig {
        workers: VmCount::Exactly(3),
        checkers: VmCount::Auto,
        ..CampaignConfig::default()
    };

    assert_eq!(cfg.parallelism(), (3, 1));
    assert!(cfg.auto_balance());
    assert!(!CampaignConfig::default().auto_balance());
}

#[test]
fn workers_auto_is_read_from_yaml() {
    let cfg: CampaignConfig = serde_yaml::from_str("workers: auto\ncheckers: 2\n").expect("parses");

    assert_eq!(
        (cfg.workers, cfg.checkers),
        (VmCount::Auto, VmCount::Exactly(2))
    );
    cfg.validate("c.yaml").expect("valid");
}

#[test]
fn cache_model_settings_parse_and_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("c.yaml");
    std::fs::write(&p, "crash_model: cache\ncache:\n  max_states_per_run: 5\n").expect("write");
    let cfg = CampaignConfig::load(&p).expect("loads");
    assert_eq!(cfg.crash_model, CrashModel::Cache);
    assert_eq!(cfg.cache.max_states_per_run, 5);
    assert_eq!(
        cfg.cache.sampled_cuts,
        CacheModelConfig::default().sampled_cuts
    );
    std::fs::write(&p, "cache:\n  max_states_per_run: 0\n").expect("write");
    let msg = CampaignConfig::load(&p).expect_err("zero").to_string();
    assert!(msg.contains("`cache.max_states_per_run`"), "{msg}");
}

#[test]
fn semantic_errors_name_the_field() {
    let cfg = CampaignConfig {
        mutant: Some("m10".into()),
        ..CampaignConfig::default()
    };
    let msg = cfg.validate("x.yaml").expect_err("m10").to_string();
    assert!(msg.contains("`mutant`") && msg.contains("m10"), "{msg}");
}

#[test]
fn huge_seed_ranges_are_counted_before_anything_is_allocated() {
    let cases = [
        ("0..99999999999", "names 99999999999 seeds"),
        (
            "0..18446744073709551615",
            "names 18446744073709551615 seeds",
        ),
        (
            "0..=18446744073709551615",
            "names 18446744073709551616 seeds",
        ),
        (
            "5..=18446744073709551615",
            "names 18446744073709551611 seeds",
        ),
        ("0..1000001", "names 1000001 seeds"),
    ];

    let results: Vec<_> = cases.iter().map(|(s, _)| parse_seeds(s)).collect();

    for ((input, expected), r) in cases.iter().zip(&results) {
        let msg = r.as_ref().expect_err(input);
        assert!(
            msg.contains(expected) && msg.contains("at most 1000000"),
            "{input}: {msg}"
        );
    }
}

#[test]
fn seed_ranges_reach_u64_max_without_overflow() {
    let top = parse_seeds("18446744073709551613..=18446744073709551615");
    let top_exclusive = parse_seeds("18446744073709551614..18446744073709551615");
    let one = parse_seeds("18446744073709551615..=18446744073709551615");

    assert_eq!(top, Ok(vec![u64::MAX - 2, u64::MAX - 1, u64::MAX]));
    assert_eq!(top_exclusive, Ok(vec![u64::MAX - 1]));
    assert_eq!(one, Ok(vec![u64::MAX]));
}

#[test]
fn a_million_seeds_is_the_limit() {
    let at_limit = parse_seeds("0..1000000").map(|v| v.len());
    let reversed = parse_seeds("9..=3");

    assert_eq!(at_limit, Ok(1_000_000));
    assert!(reversed.expect_err("empty").contains("names no seeds"));
}

#[test]
fn long_seed_lists_are_counted_before_parsing() {
    let list = vec!["1"; 1_000_001].join(",");

    let msg = parse_seeds(&list).expect_err("too many");

    assert!(
        msg.contains("names 1000001 seeds"),
        "{}",
        &msg[msg.len() - 60..]
    );
}

/// The field named in the error `cfg` gets, or None if it is valid.
fn rejected_field(cfg: &CampaignConfig) -> Option<&'static str> {
    match cfg.validate("t.yaml") {
        Ok(()) => None,
        Err(ConfigError::Invalid { field, .. }) => Some(field),
        Err(e) => panic!("unexpected {e}"),
    }
}

#[test]
fn every_number_has_a_maximum() {
    let d = CampaignConfig::default;
    let over: Vec<(CampaignConfig, &str)> = vec![
        (
            CampaignConfig {
                pmem_mib: MAX_PMEM_MIB + 2,
                ..d()
            },
            "pmem_mib",
        ),
        (
            CampaignConfig {
                pmem_mib: 99_999_999_999_999,
                ..d()
            },
            "pmem_mib",
        ),
        (
            CampaignConfig {
                pmem_mib: u64::MAX - 1,
                ..d()
            },
            "pmem_mib",
        ),
        (
            CampaignConfig {
                run_timeout_secs: MAX_RUN_TIMEOUT_SECS + 1,
                ..d()
            },
            "run_timeout_secs",
        ),
        (
            CampaignConfig {
                check_timeout_secs: MAX_CHECK_TIMEOUT_SECS + 1,
                ..d()
            },
            "check_timeout_secs",
        ),
        (
            CampaignConfig {
                ext4_commit_secs: MAX_EXT4_COMMIT_SECS + 1,
                ..d()
            },
            "ext4_commit_secs",
        ),
        (
            CampaignConfig {
                time_budget: Some("31d".into()),
                ..d()
            },
            "time_budget",
        ),
        (
            CampaignConfig {
                keep_failure_images: MAX_KEEP_FAILURE_IMAGES + 1,
                ..d()
            },
            "keep_failure_images",
        ),
        (
            CampaignConfig {
                workers: VmCount::Exactly(MAX_VMS + 1),
                ..d()
            },
            "workers",
        ),
        (
            CampaignConfig {
                checkers: VmCount::Exactly(MAX_VMS + 1),
                ..d()
            },
            "checkers",
        ),
        (
            CampaignConfig {
                min_free_mib: MAX_MIN_FREE_MIB + 1,
                ..d()
            },
            "min_free_mib",
        ),
        (
            CampaignConfig {
                cache: CacheModelConfig {
                    sampled_cuts: MAX_CACHE_SAMPLES + 1,
                    ..Default::default()
                },
                ..d()
            },
            "cache.sampled_cuts",
        ),
        (
            CampaignConfig {
                cache: CacheModelConfig {
                    subsets_per_cut: MAX_CACHE_SAMPLES + 1,
                    ..Default::default()
                },
                ..d()
            },
            "cache.subsets_per_cut",
        ),
        (
            CampaignConfig {
                cache: CacheModelConfig {
                    max_states_per_run: MAX_STATES_PER_RUN + 1,
                    ..Default::default()
                },
                ..d()
            },
            "cache.max_states_per_run",
        ),
        (
            CampaignConfig {
                crash_points: CrashPointConfig {
                    random_after: MAX_CRASH_POINTS + 1,
                    ..Default::default()
                },
                ..d()
            },
            "crash_points.random_after",
        ),
        (
            CampaignConfig {
                crash_points: CrashPointConfig {
                    inside: MAX_CRASH_POINTS + 1,
                    ..Default::default()
                },
                ..d()
            },
            "crash_points.inside",
        ),
    ];

    let rejected: Vec<_> = over.iter().map(|(cfg, _)| rejected_field(cfg)).collect();

    let expected: Vec<_> = over.iter().map(|(_, field)| Some(*field)).collect();
    assert_eq!(rejected, expected);
}

#[test]
fn the_maxima_themselves_are_accepted() {
    let cfg = CampaignConfig {
        pmem_mib: MAX_PMEM_MIB,
        run_timeout_secs: MAX_RUN_TIMEOUT_SECS,
        check_timeout_secs: MAX_CHECK_TIMEOUT_SECS,
        ext4_commit_secs: MAX_EXT4_COMMIT_SECS,
        time_budget: Some("30d".into()),
        keep_failure_images: MAX_KEEP_FAILURE_IMAGES,
        workers: VmCount::Exactly(MAX_VMS),
        checkers: VmCount::Exactly(MAX_VMS),
        min_free_mib: MAX_MIN_FREE_MIB,
        cache: CacheModelConfig {
            sampled_cuts: MAX_CACHE_SAMPLES,
            subsets_per_cut: MAX_CACHE_SAMPLES,
            max_states_per_run: MAX_STATES_PER_RUN,
        },
        crash_points: CrashPointConfig {
            after_durability_ops: true,
            random_after: MAX_CRASH_POINTS,
            inside: MAX_CRASH_POINTS,
        },
        ..CampaignConfig::default()
    };

    let result = cfg.validate("t.yaml");

    assert!(result.is_ok(), "{result:?}");
    assert_eq!(cfg.pmem_bytes(), Some(16 << 30));
}

#[test]
fn zero_is_refused_where_it_means_nothing() {
    let d = CampaignConfig::default;
    let zero: Vec<(CampaignConfig, &str)> = vec![
        (
            CampaignConfig {
                run_timeout_secs: 0,
                ..d()
            },
            "run_timeout_secs",
        ),
        (
            CampaignConfig {
                check_timeout_secs: 0,
                ..d()
            },
            "check_timeout_secs",
        ),
        (
            CampaignConfig {
                ext4_commit_secs: 0,
                ..d()
            },
            "ext4_commit_secs",
        ),
        (CampaignConfig { pmem_mib: 0, ..d() }, "pmem_mib"),
    ];

    let rejected: Vec<_> = zero.iter().map(|(cfg, _)| rejected_field(cfg)).collect();

    let expected: Vec<_> = zero.iter().map(|(_, field)| Some(*field)).collect();
    assert_eq!(rejected, expected);
}

#[test]
fn min_free_mib_defaults_to_a_gibibyte_and_parses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("c.yaml");
    std::fs::write(&p, "min_free_mib: 4096\n").expect("write");

    let cfg = CampaignConfig::load(&p).expect("loads");

    assert_eq!(CampaignConfig::default().min_free_mib, 1024);
    assert_eq!(cfg.min_free_bytes(), Some(4096 << 20));
}

#[test]
fn none_is_not_a_config_mutant() {
    let cfg = CampaignConfig {
        mutant: Some("none".into()),
        ..CampaignConfig::default()
    };

    let msg = cfg.validate("x.yaml").expect_err("none").to_string();

    assert!(
        msg.contains("`mutant`") && msg.contains("leave `mutant` out"),
        "{msg}"
    );
}

#[test]
fn oversized_config_files_are_refused_unread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big.yaml");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(MAX_CONFIG_BYTES + 1).expect("sparse file");

    let msg = CampaignConfig::load(&big).expect_err("too big").to_string();

    assert!(
        msg.contains("big.yaml") && msg.contains("larger than the limit"),
        "{msg}"
    );
}

#[test]
fn deeply_nested_config_files_are_refused_before_parsing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flow = dir.path().join("flow.yaml");
    let block = dir.path().join("block.yaml");
    std::fs::write(&flow, format!("seeds: {}", "[".repeat(1 << 19))).expect("write");
    let nested: String = (0..1000)
        .map(|i| format!("{}k:\n", " ".repeat(i)))
        .collect();
    std::fs::write(&block, nested).expect("write");

    let start = std::time::Instant::now();
    let flow_msg = CampaignConfig::load(&flow)
        .expect_err("too deep")
        .to_string();
    let block_msg = CampaignConfig::load(&block)
        .expect_err("too deep")
        .to_string();
    let took = start.elapsed();

    assert!(
        flow_msg.contains("flow.yaml: line 1: YAML nested deeper"),
        "{flow_msg}"
    );
    assert!(
        block_msg.contains("block.yaml: line 33: YAML nested deeper"),
        "{block_msg}"
    );
    assert!(took < std::time::Duration::from_secs(1), "{took:?}");
}

#[test]
fn an_ext4_mutant_on_an_xfs_campaign_is_refused() {
    let cfg = CampaignConfig {
        filesystem: Filesystem::Xfs,
        pmem_mib: 512,
        mutant: Some("m5".into()),
        ..CampaignConfig::default()
    };

    let msg = cfg.validate("x.yaml").expect_err("m5 on xfs").to_string();

    assert!(
        msg.contains("`mutant`") && msg.contains("never fires on xfs") && msg.contains("m6"),
        "{msg}"
    );
}

#[test]
fn every_shipped_campaign_config_loads() {
    let ci = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci");
    let mut loaded = Vec::new();

    for entry in std::fs::read_dir(&ci).expect("ci/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            CampaignConfig::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            loaded.push(path);
        }
    }

    assert!(loaded.len() >= 4, "{loaded:?}");
}

#[test]
fn the_kernel_key_takes_a_spec_and_kernel_deb_is_its_old_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    let new = write("new.yaml", "kernel: 6.1.0-50-amd64\n");
    let old = write("old.yaml", "kernel_deb: /k/linux-image-6.12_1_amd64.deb\n");
    let bad = write("bad.yaml", "filesystem: ext4\nkernel: a.deb,tree\n");

    let new = CampaignConfig::load(&new).expect("loads");
    let old = CampaignConfig::load(&old).expect("loads");
    let msg = CampaignConfig::load(&bad)
        .expect_err("bad spec")
        .to_string();

    assert_eq!(
        new.kernel,
        Some(KernelSpec::parse("6.1.0-50-amd64").expect("spec"))
    );
    assert_eq!(
        old.kernel.map(|k| k.to_string()).as_deref(),
        Some("/k/linux-image-6.12_1_amd64.deb")
    );
    assert!(
        msg.contains("kernel") && msg.contains("only .deb files"),
        "{msg}"
    );
}

#[test]
fn a_shard_is_k_of_n_and_a_bad_one_names_the_field_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.yaml");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&good, "seeds: \"1..9\"\nshard: \"2/3\"\n").expect("write");
    std::fs::write(&bad, "seeds: \"1..9\"\nshard: \"4/3\"\n").expect("write");

    let cfg = CampaignConfig::load(&good).expect("valid shard");
    let msg = CampaignConfig::load(&bad)
        .expect_err("bad shard")
        .to_string();
    let yaml = serde_yaml::to_string(&CampaignConfig::default()).expect("yaml");

    assert_eq!(cfg.shard.map(|s| s.to_string()).as_deref(), Some("2/3"));
    assert!(
        msg.contains("shard") && msg.contains("4/3") && msg.contains("line 2"),
        "{msg}"
    );
    assert!(
        !yaml.contains("shard"),
        "no shard key unless sharded: {yaml}"
    );
}

#[test]
fn the_findings_configs_expect_the_bug_from_6_15_on_and_a_pass_before() {
    let ci = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci");
    // (file, pairs on 6.15+, on 6.12, with patch 1 only, with patch 2 only)
    for (file, pairs_new, pairs_old, pairs_p1, pairs_p2) in [
        ("findings.yaml", 24, 0, 0, 24),
        ("findings-xfs.yaml", 29, 1, 1, 28),
    ] {
        let cfg = CampaignConfig::load(&ci.join(file)).expect("loads");
        let judge = |release: &str| {
            let k = crate::config::expect::KernelOutcome {
                name: release.into(),
                release: release.into(),
                failures: Vec::new(),
                infra: 0,
                ran: cfg
                    .expect
                    .iter()
                    .flat_map(|r| r.fail.iter().flat_map(|f| f.workloads.clone()))
                    .collect(),
            };
            crate::config::expect::judge(&cfg.expect, &k)
        };

        assert_eq!(judge("7.2.13+deb14-amd64").expected, pairs_new, "{file}");
        assert_eq!(judge("7.3.4-stock-debug").expected, pairs_new, "{file}");
        assert_eq!(judge("6.12.95+deb12-amd64").expected, pairs_old, "{file}");
        assert_eq!(judge("7.3.4-daxfix").expected, 0, "{file}");
        assert_eq!(judge("7.3.4-daxfix-debug").expected, 0, "{file}");
        assert_eq!(judge("7.3.4-daxfix1-debug").expected, pairs_p1, "{file}");
        assert_eq!(judge("7.3.4-daxfix2-debug").expected, pairs_p2, "{file}");
        assert_eq!(judge("7.3.4-daxfix2").expected, pairs_p2, "{file}");
        assert_eq!(cfg.crash_model, CrashModel::Cache, "{file}");
    }
}

#[test]
fn a_bad_expect_rule_names_the_file_and_the_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("c.yaml");
    std::fs::write(&p, "seeds: \"1\"\nexpect:\n  - versions: \">=6.15\"\n    fail: [{workloads: [a], buckets: [\"(\"]}]\n").expect("write");

    let msg = CampaignConfig::load(&p).expect_err("bad regex").to_string();

    assert!(
        msg.contains("c.yaml") && msg.contains("expect[0].fail[0].buckets"),
        "{msg}"
    );
}
