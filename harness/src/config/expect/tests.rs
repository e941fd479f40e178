//! Tests of `expect:` rules: version requirements, validation, judgement and exit status.

use super::*;

const FSYNC: &str = "data-loss of mmap_data promised by fsync (cache, ext4, stock)";
const SYNC: &str = "data-loss of mmap_data promised by sync (cache, ext4, stock)";

fn rules() -> Vec<ExpectRule> {
    serde_yaml::from_str(
        r#"
- release: "-daxfix$"
- versions: ">=6.15"
  fail:
    - workloads: [a, b]
      buckets: ["promised by fsync ", "promised by sync "]
- versions: "<6.15"
"#,
    )
    .expect("rules parse")
}

fn outcome(release: &str, failures: &[(&str, &[&str])], infra: usize) -> KernelOutcome {
    KernelOutcome {
        name: release.into(),
        release: release.into(),
        failures: failures
            .iter()
            .map(|(b, items)| {
                (
                    (*b).to_owned(),
                    items.iter().map(|s| (*s).to_owned()).collect(),
                )
            })
            .collect(),
        infra,
        ran: ["a", "b", "c"].map(str::to_owned).to_vec(),
    }
}

#[test]
fn releases_give_their_leading_version() {
    assert_eq!(release_version("7.2.13+deb14-amd64"), Some((7, 2, 13)));
    assert_eq!(release_version("7.3-amd64"), Some((7, 3, 0)));
    assert_eq!(release_version("6.12.95+deb12-amd64"), Some((6, 12, 95)));
    assert_eq!(release_version("linux"), None);
}

#[test]
fn the_first_rule_covering_the_release_applies() {
    let r = rules();
    let rule_of = |rel: &str| judge(&r, &outcome(rel, &[], 0)).rule.map(|(i, _)| i);

    assert_eq!(rule_of("7.3.4-daxfix"), Some(0));
    assert_eq!(rule_of("6.16.3+deb13-amd64"), Some(1));
    assert_eq!(rule_of("6.15"), Some(1));
    assert_eq!(rule_of("6.12.95+deb12-amd64"), Some(2));
    assert_eq!(rule_of("x-amd64"), None);
}

#[test]
fn version_ranges_combine_with_commas() {
    let r = ExpectRule {
        versions: Some(">=6.15, <7.4".into()),
        release: None,
        note: None,
        fail: Vec::new(),
    };
    assert!(r.covers("7.3.4+deb13-amd64"));
    assert!(!r.covers("7.4.0"));
    assert!(!r.covers("6.14.11"));
}

#[test]
fn a_kernel_expected_to_fail_meets_it_only_with_every_pair_and_nothing_else() {
    let r = rules();
    let all = outcome(
        "7.2.13+deb14-amd64",
        &[(FSYNC, &["a", "b"]), (SYNC, &["a", "b"])],
        0,
    );
    let one_short = outcome(
        "7.2.13+deb14-amd64",
        &[(FSYNC, &["a", "b"]), (SYNC, &["a"])],
        0,
    );
    let extra = outcome(
        "7.2.13+deb14-amd64",
        &[(FSYNC, &["a", "b", "c"]), (SYNC, &["a", "b"])],
        0,
    );

    let j = judge(&r, &all);
    assert!(j.met(), "{j}");
    assert_eq!(j.expected, 4);
    assert_eq!(exit_status(&[j], 1), 1);
    let j = judge(&r, &one_short);
    assert_eq!(
        j.missing,
        vec![("b".to_owned(), "promised by sync ".to_owned())]
    );
    assert!(j.to_string().contains("NOT MET"), "{j}");
    assert_eq!(exit_status(&[j], 1), UNMET);
    let j = judge(&r, &extra);
    assert_eq!(j.unexpected, vec![(FSYNC.to_owned(), vec!["c".to_owned()])]);
    assert_eq!(exit_status(&[j], 1), 1);
}

#[test]
fn a_kernel_expected_to_pass_keeps_the_natural_status() {
    let r = rules();
    let pass = judge(&r, &outcome("6.12.95+deb12-amd64", &[], 0));
    let fail = judge(&r, &outcome("6.12.95+deb12-amd64", &[(FSYNC, &["a"])], 0));

    assert!(pass.met() && pass.to_string().contains("passed, as expected"));
    assert_eq!(exit_status(&[pass], 0), 0);
    assert!(!fail.met());
    assert_eq!(exit_status(&[fail], 1), 1);
}

#[test]
fn a_missing_failure_with_infrastructure_problems_proves_nothing() {
    let r = rules();
    let j = judge(&r, &outcome("7.2.13+deb14-amd64", &[], 2));

    assert!(j.to_string().contains("NOT PROVEN"), "{j}");
    assert_eq!(exit_status(std::slice::from_ref(&j), 69), 69);
    let pass = judge(&r, &outcome("6.12.95+deb12-amd64", &[], 1));
    assert!(
        !pass.met() && pass.to_string().contains("NOT PROVEN"),
        "{pass}"
    );
    assert_eq!(exit_status(&[pass], 69), 69);
    assert_eq!(exit_status(&[j], 130), 130);
}

#[test]
fn in_a_matrix_one_unmet_kernel_decides() {
    let r = rules();
    let new = judge(
        &r,
        &outcome(
            "7.2.13+deb14-amd64",
            &[(FSYNC, &["a", "b"]), (SYNC, &["a", "b"])],
            0,
        ),
    );
    let old = judge(&r, &outcome("6.12.95+deb12-amd64", &[], 0));
    let fixed = judge(&r, &outcome("7.3.4+deb13-amd64", &[], 0));

    assert_eq!(exit_status(&[new.clone(), old.clone()], 1), 1);
    assert_eq!(exit_status(&[new, old, fixed], 1), UNMET);
}

#[test]
fn bad_rules_are_refused_naming_the_field() {
    let bad = |yaml: &str| {
        let r: Vec<ExpectRule> = serde_yaml::from_str(yaml).expect("parses");
        validate(&r).expect_err("invalid")
    };

    assert!(bad("- fail: []").contains("expect[0]: give `versions`"));
    assert!(bad("- versions: \"~6.15\"").contains("expect[0].versions"));
    assert!(bad("- versions: \">=six\"").contains("not a version"));
    assert!(bad("- release: \"(\"").contains("expect[0].release: bad regex"));
    let e = bad("- versions: \">=6.15\"\n  fail: [{workloads: [a], buckets: [\"(\"]}]");
    assert!(e.contains("expect[0].fail[0].buckets"), "{e}");
    let e = bad("- versions: \">=6.15\"\n  fail: [{workloads: [], buckets: [x]}]");
    assert!(e.contains("fail[0].workloads: empty"), "{e}");
    assert!(validate(&rules()).is_ok());
}

#[test]
fn unknown_fields_in_a_rule_are_refused() {
    let r: Result<Vec<ExpectRule>, _> = serde_yaml::from_str("- versions: \">=6.15\"\n  fial: []");
    assert!(r.expect_err("unknown").to_string().contains("fial"));
}

#[test]
fn items_the_campaign_does_not_run_are_named() {
    let unknown = unknown_items(&rules(), &["a".to_owned()]);
    assert_eq!(unknown, vec!["expect[1].fail[0].workloads: b".to_owned()]);
}

#[test]
fn expectations_of_items_that_did_not_run_do_not_apply() {
    let mut only_a = outcome("7.2.13+deb14-amd64", &[(FSYNC, &["a"]), (SYNC, &["a"])], 0);
    only_a.ran = vec!["a".to_owned()];

    let j = judge(&rules(), &only_a);

    assert!(j.met(), "{j}");
    assert_eq!(j.expected, 2);
}
