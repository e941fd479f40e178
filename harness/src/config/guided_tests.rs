//! Tests of the guided keys (`guided`, `corpus`, `guided_items`) and their bounds.

use super::*;

fn guided(f: impl FnOnce(&mut CampaignConfig)) -> Result<(), String> {
    let mut cfg = CampaignConfig {
        guided: true,
        guided_items: Some(5),
        ..CampaignConfig::default()
    };
    f(&mut cfg);
    cfg.validate("g.yaml").map_err(|e| e.to_string())
}

#[test]
fn a_guided_campaign_with_an_end_and_coverage_is_valid() {
    assert_eq!(guided(|_| {}), Ok(()));
    assert_eq!(
        guided(|c| {
            c.guided_items = None;
            c.time_budget = Some("10m".into());
        }),
        Ok(())
    );
    assert_eq!(
        guided(|c| c.seeds = String::new()),
        Ok(()),
        "no seeds: the corpus starts from fresh seeds"
    );
}

#[test]
fn a_guided_campaign_needs_coverage_tcg_one_kernel_and_an_end() {
    type Change = Box<dyn FnOnce(&mut CampaignConfig)>;
    let cases: [(&str, Change); 5] = [
        ("coverage: true", Box::new(|c| c.coverage = false)),
        ("TCG", Box::new(|c| c.accel = AccelChoice::Kvm)),
        (
            "one kernel",
            Box::new(|c| c.kernels = vec!["a".into(), "b".into()]),
        ),
        ("--guided-items", Box::new(|c| c.guided_items = None)),
        ("out of range", Box::new(|c| c.guided_items = Some(0))),
    ];
    for (want, f) in cases {
        let err = guided(f).expect_err(want);

        assert!(
            err.contains("guided") && err.contains(want),
            "{want}: {err}"
        );
    }
}

#[test]
fn corpus_and_guided_items_need_guided() {
    let cfg = CampaignConfig {
        corpus: Some("c".into()),
        ..CampaignConfig::default()
    };

    let err = cfg.validate("g.yaml").expect_err("not guided").to_string();

    assert!(err.contains("guided: true"), "{err}");
}

#[test]
fn an_unguided_config_serializes_without_the_guided_keys() {
    let yaml = serde_yaml::to_string(&CampaignConfig::default()).expect("yaml");

    assert!(
        !yaml.contains("guided") && !yaml.contains("corpus"),
        "{yaml}"
    );
}
