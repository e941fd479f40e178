//! Checking each distinct crash image once changes no verdict. One cache-model run of smoke
//! seed 3 under mutant m1 (stores through a MAP_SYNC mapping, then msync, fsync, msync; m1
//! skips `dax_flush` in writeback); its crash images are checked in one checker VM with
//! dedupe off and then on. Every crash state gets the same verdict and findings both ways,
//! repeated images reuse a read-back and are judged by their own promises, and m1 is still
//! caught.

mod common;

use std::time::Duration;

use powercut::test_support::{
    cache_root, check_image, crash_plan, prepare_kernel, run_trial, CampaignConfig, CheckEnv,
    Checker, CheckerSpec, SeenImages, TrialItem, TrialSetup,
};
use workloads::generator::{generate, Profile};
use workloads::oracle::{FsRules, Verdict};

/// One check as compared: crash point, model variant, verdict, findings, failure title.
type Seen = (String, String, Verdict, usize, Option<String>);

#[test]
fn dedupe_gives_the_same_verdicts_and_still_catches_m1() {
    common::fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg_path = dir.path().join("cache.yaml");
    std::fs::write(
        &cfg_path,
        "crash_model: cache\nfilesystem: ext4\npmem_mib: 256\nseeds: \"3\"\nmutant: m1\n",
    )
    .expect("write config");
    let cfg = CampaignConfig::load(&cfg_path).expect("config");
    let k = prepare_kernel(Default::default(), &cfg, &cache_root(), false, false)
        .expect("kernel setup");
    let setup = TrialSetup {
        image: k.image,
        golden: k.golden,
        accel: k.accel,
        mutant: Some("m1".into()),
        ext4_commit_secs: cfg.ext4_commit_secs,
        timeout: Duration::from_secs(cfg.run_timeout_secs),
        debug: false,
        model: k.model,
        start: k.start,
        coverage: k.coverage,
    };
    let workload = generate(3, Profile::Smoke);
    let plan = crash_plan(&workload, &cfg.crash_points, 3);
    let run = run_trial(
        &setup,
        &workload,
        &plan,
        &dir.path().join("run"),
        "dedupe-3",
    )
    .expect("the traced run");
    let mut checker = Checker::start(&CheckerSpec {
        image: &setup.image,
        golden: &setup.golden,
        accel: setup.accel,
        dir: &dir.path().join("checker"),
        name: "dedupe-checker",
        debug: false,
        check_timeout: Duration::from_secs(cfg.check_timeout_secs),
        state: setup.start.state(),
    })
    .expect("checker starts");
    // The checker VM is restored from the workload VMs' booted state like they are.
    assert_eq!(checker.restored(), setup.start.state().is_some());
    assert!(
        setup.start.state().is_some(),
        "no booted state to restore from"
    );
    let rules = FsRules::ext4();
    let env = CheckEnv {
        rules: &rules,
        mutant: Some("m1"),
        modules: &[],
    };
    let item = TrialItem::Seed(3);
    let check_all = |checker: &mut Checker| {
        let mut seen: Vec<Seen> = Vec::new();
        let mut reused = 0;
        // Repeated states whose verdict differs from the state whose read-back they reused
        // (counted where crash point and variant name that state alone).
        let mut judged_apart = 0;
        for image in &run.images {
            let j =
                check_image(checker, &item, &workload, &run.outcomes, image, &env).expect("check");
            if let Some(first) = &j.outcome.same_as {
                reused += 1;
                let origins: Vec<&Seen> = seen
                    .iter()
                    .filter(|s| s.0 == first.at.to_string() && s.1 == first.model)
                    .collect();
                assert!(
                    !origins.is_empty(),
                    "the state a repeated image stands on was checked before it"
                );
                if let [origin] = origins.as_slice() {
                    judged_apart += usize::from(origin.2 != j.outcome.verdict);
                }
            }
            seen.push((
                j.label.to_string(),
                image.model.clone(),
                j.outcome.verdict,
                j.outcome.findings.len(),
                j.failure.map(|f| f.title),
            ));
        }
        (seen, reused, judged_apart)
    };

    checker.set_dedupe(None);
    let (full, full_reused, _) = check_all(&mut checker);
    checker.set_dedupe(Some(SeenImages::shared()));
    let (deduped, reused, judged_apart) = check_all(&mut checker);
    checker.stop();

    assert!(run.images.len() > 1, "{} crash states", run.images.len());
    assert_eq!(full_reused, 0);
    assert_eq!(full, deduped);
    assert!(
        reused > 0,
        "no repeated image among {} states: {full:?}",
        run.images.len()
    );
    assert!(
        deduped.iter().any(|s| s.2 == Verdict::DataLoss),
        "m1 not caught: {deduped:?}"
    );
    eprintln!(
        "{} crash states, {reused} reused a read-back ({judged_apart} judged apart from the state they reused); verdicts {:?}",
        run.images.len(),
        deduped.iter().map(|s| s.2).collect::<Vec<_>>()
    );
}
